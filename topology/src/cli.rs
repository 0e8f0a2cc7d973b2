//! The `gatehouse-topology` command line. `service NAME` runs one demo service; the `up` command
//! (the whole topology) will sit beside it as another subcommand.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use gatehouse_common::error::chain;

use crate::{Error, ServeOptions, ServiceName, serve};

/// Exit code for a bad command line or config (EX_USAGE in sysexits.h).
pub const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(name = "gatehouse-topology", version, propagate_version = true)]
#[command(about = "The Gatehouse demo shop: its services, and the whole topology")]
struct Cli {
    /// Log output: one JSON object per line, or human-readable.
    #[arg(long, value_enum, default_value = "json", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one demo service until SIGINT or SIGTERM. Prints one JSON line with the bound
    /// addresses once it serves.
    Service(ServiceArgs),
    /// Runs the whole topology (PKI, services, sidecars, internal gateway, edge) until SIGINT or
    /// SIGTERM; writes STATE_DIR/topology.json once ready.
    Up(UpArgs),
}

#[derive(Debug, Args)]
struct UpArgs {
    /// State directory: certificates, logs, topology.json.
    #[arg(long, value_name = "DIR", default_value = ".gatehouse")]
    state_dir: PathBuf,
    /// Port layout: the edge on BASE, the internal gateway on BASE+1, the rest on BASE+2..BASE+103.
    /// Default: edge 8443, internal 9443, the rest 19000..19101.
    #[arg(long, value_name = "BASE")]
    port_base: Option<u16>,
    /// The config templates (default: topology/config).
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Do not run `cargo build --workspace` first (it runs only under `cargo run`).
    #[arg(long)]
    no_build: bool,
}

#[derive(Debug, Args)]
struct ServiceArgs {
    /// Which service.
    #[arg(value_enum)]
    name: ServiceName,
    /// Main listener (REST, or gRPC for `orders`); port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Admin listener: /healthz, /readyz, /metrics, POST /_chaos; port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    admin: SocketAddr,
    /// The sidecar's outbound listener, for east-west calls (`orders` → inventory, pricing).
    #[arg(long, value_name = "ADDR")]
    upstream_proxy: Option<SocketAddr>,
    /// The JWT signing key (PKCS#8 PEM from `gatehouse-certs jwt-keys`); required by `idp`.
    #[arg(long, value_name = "FILE")]
    jwt_key: Option<PathBuf>,
    /// Instance number, reported in `x-instance` (and in catalog bodies).
    #[arg(long, value_name = "N", default_value_t = 1)]
    instance: u32,
    /// The idp's public base URL for its discovery document; default: from the request headers.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// `orders`: the NATS JetStream broker of async orders (`tls://host:port`); its password
    /// comes from `GH_NATS_PASSWORD`, never the command line.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// The CA the broker's certificate chains to.
    #[arg(long, value_name = "FILE", requires = "nats")]
    nats_ca: Option<PathBuf>,
    /// The broker user.
    #[arg(long, value_name = "NAME", requires = "nats")]
    nats_user: Option<String>,
    #[arg(long, env = "GH_NATS_PASSWORD", hide_env_values = true, hide = true)]
    nats_password: Option<String>,
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logs(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse-topology: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Service(args) => runtime.block_on(run_service(args)),
        Command::Up(args) => runtime.block_on(run_up(args)),
    }
}

async fn run_service(args: ServiceArgs) -> ExitCode {
    let opts = ServeOptions {
        upstream_proxy: args.upstream_proxy,
        jwt_key: args.jwt_key,
        instance: args.instance,
        public_url: args.public_url,
        broker: args
            .nats
            .filter(|u| !u.is_empty())
            .map(|url| crate::BrokerOptions {
                url,
                ca: args.nats_ca,
                user: args.nats_user,
                password: args.nats_password,
            }),
    };
    let running = match serve(args.name, args.listen, args.admin, opts).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("gatehouse-topology: {}", chain(&e));
            return match e {
                Error::Bind { .. } => ExitCode::FAILURE,
                _ => ExitCode::from(EXIT_CONFIG),
            };
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "service": running.name().as_str(),
            "instance": running.instance(),
            "listen": running.listen().to_string(),
            "admin": running.admin().to_string(),
        })
    );
    shutdown_signal().await;
    tracing::info!("stopping");
    running.shutdown().await;
    ExitCode::SUCCESS
}

async fn run_up(args: UpArgs) -> ExitCode {
    let opts = crate::up::UpOptions {
        state_dir: args.state_dir,
        port_base: args.port_base,
        config_dir: args.config_dir,
        build: !args.no_build,
        ..crate::up::UpOptions::default()
    };
    let topo = tokio::select! {
        topo = crate::up::up(opts) => topo,
        () = shutdown_signal() => return ExitCode::SUCCESS,
    };
    let topo = match topo {
        Ok(topo) => topo,
        Err(e) => {
            eprintln!("gatehouse-topology: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", crate::up::summary(&topo));
    shutdown_signal().await;
    eprintln!("gatehouse-topology: stopping");
    topo.shutdown().await;
    ExitCode::SUCCESS
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
