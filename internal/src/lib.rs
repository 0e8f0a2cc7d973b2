//! Gatehouse internal gateway: routing, discovery, balancing and orchestration inside the cluster.
//!
//! The binary is this library plus a thin `main.rs`; tests start [`run`] in-process on port 0.
//! It runs the shared proxy core of `gatehouse-common` with its own [`InternalExtension`]: the
//! `internal:` config section and the route handlers the orchestration features plug in as
//! (`envelope` today; aggregation, transcoding and publishing build on the same seam).

pub mod aggregate;
pub mod cache;
pub mod envelope;
pub mod fetch;
pub mod settings;
pub mod shape;
pub mod xml;

use std::path::PathBuf;
use std::sync::Arc;

use gatehouse_common::config::{ConfigError, Loaded};
use gatehouse_common::handler::{HandlerKind, Handlers};
use gatehouse_common::runtime::{Extension, Running, StartError};
use gatehouse_common::settings::ProxySettings;
use gatehouse_common::tier::{Tier, TierBuild, TierPlan};

/// The binary's name, used in logs and `/config`.
pub const BINARY: &str = "gatehouse-internal";

const ABOUT: &str = "Gatehouse internal gateway: routing, discovery, balancing and orchestration inside the cluster.";

/// The internal gateway's part of the proxy core: its section and its route handlers.
#[derive(Debug, Default)]
pub struct InternalExtension;

impl Tier for InternalExtension {
    fn section(&self) -> Option<&'static str> {
        Some("internal")
    }

    fn build(&self, cx: &TierBuild<'_>) -> Result<TierPlan, ConfigError> {
        let section =
            gatehouse_common::config::section::<settings::InternalSettings>(cx.source, "internal")?
                .unwrap_or_default();
        if section.max_handler_body_bytes.get() == 0 {
            return Err(cx.source.error_at(
                "internal.max_handler_body_bytes",
                "must be at least 1 byte (every answer a handler reads would be refused)",
            ));
        }
        let max_body_bytes = section.max_handler_body_bytes.get();
        let kinds: [Arc<dyn HandlerKind>; 2] = [
            Arc::new(envelope::Envelope { max_body_bytes }),
            Arc::new(aggregate::Aggregate { max_body_bytes }),
        ];
        Ok(TierPlan {
            filter: None,
            handlers: Handlers::new(kinds),
            section: serde_json::to_value(&section).ok().map(|v| ("internal", v)),
        })
    }
}

impl Extension for InternalExtension {}

/// Starts serving `config`; returns once every listener is bound.
pub async fn run(
    config: Loaded<ProxySettings>,
    path: Option<PathBuf>,
) -> Result<Running, StartError> {
    gatehouse_common::runtime::run_with(BINARY, config, path, Arc::new(InternalExtension)).await
}

/// The process entry point: command line, config, signals, exit code.
pub fn main() -> std::process::ExitCode {
    gatehouse_common::cli::main_with(BINARY, ABOUT, Arc::new(InternalExtension))
}
