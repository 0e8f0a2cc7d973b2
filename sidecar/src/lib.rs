//! Gatehouse sidecar: the east-west mTLS proxy beside each service.
//!
//! Inbound (mesh → app): an mTLS listener; the caller's SPIFFE ID is authorized by the
//! `sidecar.allow` rules (default deny) and passed to the app as `x-gatehouse-peer`.
//! Outbound (app → mesh): a loopback listener; the app names the service in `Host`, the route
//! table sends it through the resilient upstream client over mTLS, checking the callee's
//! SPIFFE ID. The binary is this library plus a thin `main.rs`; tests start [`run`] in-process.

pub mod policy;
pub mod settings;

use std::path::PathBuf;
use std::sync::Arc;

use gatehouse_common::config::{ConfigError, Loaded};
use gatehouse_common::filter::Filter;
use gatehouse_common::runtime::{Extension, Running, StartError};
use gatehouse_common::settings::ProxySettings;
use gatehouse_common::tier::{Tier, TierBuild, TierPlan};

/// The binary's name, used in logs and `/config`.
pub const BINARY: &str = "gatehouse-sidecar";

const ABOUT: &str = "Gatehouse sidecar: the east-west mTLS proxy beside each service.";

/// The sidecar's phases plugged into the proxy core.
#[derive(Debug, Default)]
pub struct SidecarExtension;

impl Tier for SidecarExtension {
    fn section(&self) -> Option<&'static str> {
        Some("sidecar")
    }

    fn build(&self, cx: &TierBuild<'_>) -> Result<TierPlan, ConfigError> {
        let Some(section) =
            gatehouse_common::config::section::<settings::SidecarSettings>(cx.source, "sidecar")?
        else {
            return Ok(TierPlan::default());
        };
        let policy = policy::SidecarPolicy::build(cx.settings, &section, cx.source)?;
        Ok(TierPlan {
            filter: Some(Arc::new(policy) as Arc<dyn Filter>),
            section: serde_json::to_value(&section).ok().map(|v| ("sidecar", v)),
            ..TierPlan::default()
        })
    }
}

impl Extension for SidecarExtension {}

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
