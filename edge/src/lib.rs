//! Gatehouse edge gateway: public TLS, HTTP/1.1, HTTP/2 (HTTP/3 to come), authentication and limits in front of the internal gateway.
//!
//! The binary is this library plus a thin `main.rs`; tests start [`run`] in-process on port 0.
//! Until this tier's own features land it runs the shared proxy core of `gatehouse-common`.

use std::path::PathBuf;

use gatehouse_common::config::Loaded;
use gatehouse_common::runtime::{Running, StartError};
use gatehouse_common::settings::ProxySettings;

/// The binary's name, used in logs and `/config`.
pub const BINARY: &str = "gatehouse-edge";

/// Starts serving `config`; returns once every listener is bound.
pub async fn run(
    config: Loaded<ProxySettings>,
    path: Option<PathBuf>,
) -> Result<Running, StartError> {
    gatehouse_common::runtime::run(BINARY, config, path).await
}

/// The process entry point: command line, config, signals, exit code.
pub fn main() -> std::process::ExitCode {
    gatehouse_common::cli::main(
        BINARY,
        "Gatehouse edge gateway: public TLS, HTTP/1.1, HTTP/2 (HTTP/3 to come), authentication and limits in front of the internal gateway.",
    )
}
