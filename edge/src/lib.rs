//! Gatehouse edge gateway: public TLS, HTTP/1.1 and HTTP/2, authentication (JWT, API keys),
//! authorization, rate limiting and request validation in front of the internal gateway;
//! gRPC-Web calls from browsers become gRPC on their way in ([`grpc_web`]).
//!
//! The binary is this library plus a thin `main.rs`; tests start [`run`] in-process on port 0.
//! The proxy core is `gatehouse-common`'s; the edge's own phases are the [`filter`] built by
//! [`extension`] from the config's `edge` section (documented in `docs/edge.md`).

pub mod api_key;
pub mod authz;
pub mod cors;
pub mod extension;
pub mod filter;
pub mod grpc_web;
pub mod h3;
pub mod identity;
pub mod jwt;
pub mod normalize;
pub mod policy;
pub mod ratelimit;
pub mod redirect;
pub mod reply;
pub mod schema;
pub mod settings;

use std::path::PathBuf;
use std::sync::Arc;

use gatehouse_common::config::Loaded;
use gatehouse_common::runtime::{Running, StartError};
use gatehouse_common::settings::ProxySettings;

pub use extension::EdgeExtension;

/// The binary's name, used in logs and `/config`.
pub const BINARY: &str = "gatehouse-edge";

/// Starts serving `config`; returns once every listener is bound, HTTP/3 endpoints included
/// (one per TLS listener, on the same address over UDP).
pub async fn run(
    config: Loaded<ProxySettings>,
    path: Option<PathBuf>,
) -> Result<Running, StartError> {
    // The extension starts the HTTP/3 endpoint once the TCP listeners are bound.
    let ext = Arc::new(EdgeExtension::default());
    gatehouse_common::runtime::run_with(BINARY, config, path, ext).await
}

/// The process entry point: command line, config, signals, exit code.
pub fn main() -> std::process::ExitCode {
    gatehouse_common::cli::main_with(
        BINARY,
        "Gatehouse edge gateway: public TLS, HTTP/1.1, HTTP/2, authentication, authorization and rate limits in front of the internal gateway.",
        Arc::new(EdgeExtension::default()),
    )
}
