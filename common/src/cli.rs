//! The command line shared by the three binaries: `--config`, `validate`, `--version`,
//! `--log-format`, and the process main loop (signals, reload, drain, exit codes).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config;
use crate::plan::Plan;
use crate::settings::ProxySettings;
use crate::telemetry::{self, LogFormat};

/// Exit code for a bad config or command line (EX_USAGE in sysexits.h), as `nginx -t` users expect
/// a non-zero code they can test for.
pub const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    /// Configuration file (YAML).
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Log output: one JSON object per line, or human-readable.
    #[arg(long, value_enum, default_value = "json", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the configuration and the files it names, without starting (like `nginx -t`).
    Validate,
}

/// Runs a binary: parses the command line, loads and validates the config before binding
/// anything, serves until SIGTERM/SIGINT, drains, exits 0.
pub fn main(binary: &'static str, about: &'static str) -> ExitCode {
    let cmd = Cli::command().name(binary).bin_name(binary).about(about);
    let cli = match Cli::from_arg_matches(&cmd.get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let Some(path) = cli.config else {
        eprintln!("{binary}: --config FILE is required");
        return ExitCode::from(EXIT_CONFIG);
    };
    match cli.command {
        Some(Command::Validate) => validate(binary, &path),
        None => serve(binary, path, cli.log_format),
    }
}

fn build_plan(path: &Path) -> Result<Plan, config::ConfigError> {
    let loaded = config::load::<ProxySettings>(path)?;
    Plan::build(loaded.value, &loaded.source, None)
}

fn validate(binary: &str, path: &Path) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{binary}: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Built inside a runtime: clients and timers may expect one.
    match rt.block_on(async { build_plan(path) }) {
        Ok(plan) => {
            println!(
                "{binary}: {} is valid ({} listeners, {} routes, {} services)",
                path.display(),
                plan.listeners.len(),
                plan.routes().len(),
                plan.services.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{binary}: {}", crate::plan::chain(&e));
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn serve(binary: &'static str, path: PathBuf, format: LogFormat) -> ExitCode {
    // Load before anything else: a bad file must stop us before a port is taken.
    let loaded = match config::load::<ProxySettings>(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{binary}: {}", crate::plan::chain(&e));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(format, &loaded.value.telemetry.log_level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{binary}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let running = match crate::runtime::run(binary, loaded, Some(path.clone())).await {
            Ok(r) => r,
            Err(crate::runtime::StartError::Config(e)) => {
                eprintln!("{binary}: {}", crate::plan::chain(&e));
                return ExitCode::from(EXIT_CONFIG);
            }
            Err(e) => {
                eprintln!("{binary}: {}", crate::plan::chain(&e));
                tracing::error!(error = %crate::plan::chain(&e), "cannot start");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = crate::lifecycle::handle_signals(running.clone()) {
            eprintln!("{binary}: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
        crate::lifecycle::watch_config(running.clone(), path);
        running.wait().await;
        ExitCode::SUCCESS
    })
}
