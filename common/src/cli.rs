//! The command line shared by the three binaries: `--config`, `validate`, `--version`,
//! `--log-format`, and the process main loop (signals, reload, drain, exit codes).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::runtime::Extension;
use crate::tier::NoTier;

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
    /// Wait until a running instance is ready (its `/readyz` answers 200): exit 0 then, or 1
    /// at the timeout. For entrypoint gates and compose health checks.
    WaitReady {
        /// The instance's admin address, `IP:PORT`.
        #[arg(long, value_name = "ADDR")]
        admin: std::net::SocketAddr,
        /// How long to wait, e.g. `30s`.
        #[arg(long, default_value = "30s")]
        timeout: config::Duration,
        /// The path that answers 200 when ready: ours is `/readyz`; another program's may
        /// differ (nats-server's monitoring port: `/healthz`).
        #[arg(long, default_value = "/readyz", value_name = "PATH")]
        path: String,
    },
}

/// Runs a binary: parses the command line, loads and validates the config before binding
/// anything, serves until SIGTERM/SIGINT, drains, exits 0.
pub fn main(binary: &'static str, about: &'static str) -> ExitCode {
    main_with(binary, about, Arc::new(NoTier))
}

/// [`main`] for a binary with its own request phases (see [`crate::filter`]).
pub fn main_with(binary: &'static str, about: &'static str, ext: Arc<dyn Extension>) -> ExitCode {
    let cmd = Cli::command().name(binary).bin_name(binary).about(about);
    let cli = match Cli::from_arg_matches(&cmd.get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if let Some(Command::WaitReady {
        admin,
        timeout,
        path,
    }) = cli.command
    {
        return wait_ready(binary, admin, &path, timeout.get());
    }
    let Some(path) = cli.config else {
        eprintln!("{binary}: --config FILE is required");
        return ExitCode::from(EXIT_CONFIG);
    };
    match cli.command {
        Some(Command::Validate) => validate(binary, &path, &*ext),
        Some(Command::WaitReady { .. }) => ExitCode::SUCCESS,
        None => serve(binary, path, cli.log_format, ext),
    }
}

/// A single-threaded runtime for the short commands (`validate`, `wait-ready`).
fn small_runtime(binary: &str) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("{binary}: cannot start: {e}");
            None
        }
    }
}

/// Polls `http://ADMIN/readyz` (or `path`) every 200ms until it answers 200 or `timeout` passes.
fn wait_ready(
    binary: &str,
    admin: std::net::SocketAddr,
    path: &str,
    timeout: std::time::Duration,
) -> ExitCode {
    let Some(rt) = small_runtime(binary) else {
        return ExitCode::FAILURE;
    };
    rt.block_on(async move {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<crate::body::ProxyBody>();
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let url = format!("http://{admin}{path}");
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = String::from("no answer");
        while tokio::time::Instant::now() < deadline {
            if let Ok(req) = http::Request::get(url.as_str()).body(crate::body::empty()) {
                match tokio::time::timeout(std::time::Duration::from_secs(1), client.request(req))
                    .await
                {
                    Ok(Ok(res)) if res.status() == http::StatusCode::OK => {
                        println!("{binary}: {admin} is ready");
                        return ExitCode::SUCCESS;
                    }
                    Ok(Ok(res)) => {
                        use http_body_util::BodyExt;
                        let body = res.into_body().collect().await.map(|b| b.to_bytes());
                        last = body
                            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
                            .unwrap_or_else(|_| "not ready".into());
                    }
                    Ok(Err(e)) => last = format!("cannot connect: {e}"),
                    Err(_) => last = "no answer within 1s".into(),
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        eprintln!("{binary}: {admin} not ready after {timeout:?}: {last}");
        ExitCode::FAILURE
    })
}

fn build_plan(path: &Path, ext: &dyn Extension) -> Result<Plan, config::ConfigError> {
    let loaded = config::load::<ProxySettings>(path)?;
    Plan::build_with(loaded.value, &loaded.source, None, ext)
}

fn validate(binary: &str, path: &Path, ext: &dyn Extension) -> ExitCode {
    let Some(rt) = small_runtime(binary) else {
        return ExitCode::FAILURE;
    };
    // Built inside a runtime: clients and timers may expect one.
    match rt.block_on(async { build_plan(path, ext) }) {
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
            eprintln!("{binary}: {}", crate::error::chain(&e));
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// The runtime that serves traffic: one worker per core, as tokio counts them
/// (`TOKIO_WORKER_THREADS`, else the cores this process may run on).
///
/// With one worker the current-thread scheduler is used: there is nothing to steal work from,
/// and its wake-ups skip the multi-thread scheduler's atomics and hand-offs, which a proxied
/// request pays several times (the server connection, the pooled client connection, their
/// channels).
fn serving_runtime() -> std::io::Result<(tokio::runtime::Runtime, usize, &'static str)> {
    let asked = std::env::var("TOKIO_WORKER_THREADS").ok();
    let valid = asked
        .as_deref()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    if let (Some(v), None) = (&asked, valid) {
        tracing::warn!(value = %v, "TOKIO_WORKER_THREADS is not a positive integer; ignored");
    }
    let workers = valid
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    let (scheduler, rt) = match workers {
        1 => (
            "current_thread",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        ),
        _ => (
            "multi_thread",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()?,
        ),
    };
    Ok((rt, workers, scheduler))
}

fn serve(
    binary: &'static str,
    path: PathBuf,
    format: LogFormat,
    ext: Arc<dyn Extension>,
) -> ExitCode {
    // Load before anything else: a bad file must stop us before a port is taken.
    let loaded = match config::load::<ProxySettings>(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{binary}: {}", crate::error::chain(&e));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(format, &loaded.value.telemetry.log_level);
    let (rt, workers, scheduler) = match serving_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{binary}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async move {
        let running = match crate::runtime::run_with(binary, loaded, Some(path.clone()), ext).await
        {
            Ok(r) => {
                // Logged once serving: a config refused at start-up prints its error alone.
                tracing::info!(workers, scheduler, "runtime started");
                r
            }
            Err(crate::runtime::StartError::Config(e)) => {
                eprintln!("{binary}: {}", crate::error::chain(&e));
                return ExitCode::from(EXIT_CONFIG);
            }
            Err(e) => {
                eprintln!("{binary}: {}", crate::error::chain(&e));
                tracing::error!(error = %crate::error::chain(&e), "cannot start");
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
    });
    // Tasks the drain cut off log their lines as the runtime drops them: stop it first, then
    // write out what is still queued (see `telemetry::writer`).
    rt.shutdown_timeout(Duration::from_secs(1));
    telemetry::writer::flush(Duration::from_secs(2));
    code
}
