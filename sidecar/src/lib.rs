//! Gatehouse sidecar: the east-west mTLS proxy beside each service.
//!
//! Inbound (mesh → app): an mTLS listener; the caller's SPIFFE ID is authorized by the
//! `sidecar.allow` rules (default deny) and passed to the app as `x-gatehouse-peer`.
//! Outbound (app → mesh): a loopback listener; the app names the service in `Host`, the route
//! table sends it through the resilient upstream client over mTLS, checking the callee's
//! SPIFFE ID. The binary is this library plus a thin `main.rs`; tests start [`run`] in-process.

pub mod policy;

use std::path::PathBuf;
use std::sync::Arc;

use gatehouse_common::config::{ConfigError, Loaded, Source};
use gatehouse_common::filter::{Extension, Filter};
use gatehouse_common::runtime::{Running, StartError};
use gatehouse_common::settings::ProxySettings;

/// The binary's name, used in logs and `/config`.
pub const BINARY: &str = "gatehouse-sidecar";

const ABOUT: &str = "Gatehouse sidecar: the east-west mTLS proxy beside each service.";

/// The sidecar's phases plugged into the proxy core.
#[derive(Debug, Default)]
pub struct SidecarExtension;

impl Extension for SidecarExtension {
    fn reads_sidecar_section(&self) -> bool {
        true
    }

    fn build(
        &self,
        settings: &ProxySettings,
        source: &Source,
        _previous: Option<&Arc<dyn Filter>>,
    ) -> Result<Option<Arc<dyn Filter>>, ConfigError> {
        Ok(policy::SidecarPolicy::build(settings, source)?.map(|p| Arc::new(p) as Arc<dyn Filter>))
    }
}

/// Starts serving `config`; returns once every listener is bound.
pub async fn run(
    config: Loaded<ProxySettings>,
    path: Option<PathBuf>,
) -> Result<Running, StartError> {
    gatehouse_common::runtime::run_with(BINARY, config, path, Arc::new(SidecarExtension)).await
}

/// The process entry point: command line, config, signals, exit code.
pub fn main() -> std::process::ExitCode {
    gatehouse_common::cli::main_with(BINARY, ABOUT, Arc::new(SidecarExtension))
}
