//! What a binary adds to the shared proxy core: its own config section, its request phases
//! (a [`Filter`]) and the route handlers it offers. `common` knows none of them by schema; each
//! tier's crate implements [`Tier`] and the plan asks it.
//!
//! On start and on every reload the plan calls [`Tier::build`] with the new settings; what it
//! returns is stored in the plan beside the routes, so a reload swaps both atomically.

use std::fmt::Debug;
use std::sync::Arc;

use crate::config::{ConfigError, Source};
use crate::filter::Filter;
use crate::handler::Handlers;
use crate::settings::ProxySettings;

/// A binary's own part of a plan.
pub trait Tier: Send + Sync + Debug + 'static {
    /// The top-level key of this binary's own section (`edge`, `internal`, `sidecar`), read by
    /// the tier with [`crate::config::section`]. The other binaries refuse a config that sets
    /// it rather than silently ignore it. Default: none.
    fn section(&self) -> Option<&'static str> {
        None
    }

    /// Validates the binary's section and builds its part of the plan. Errors point into the
    /// config file like every other validation error (use `source.error_at`).
    fn build(&self, cx: &TierBuild<'_>) -> Result<TierPlan, ConfigError>;
}

/// What [`Tier::build`] is given.
#[derive(Debug, Clone, Copy)]
pub struct TierBuild<'a> {
    pub settings: &'a ProxySettings,
    pub source: &'a Source,
    /// The running plan's tier part, on a reload (to keep state that did not change).
    pub previous: Option<&'a TierPlan>,
}

/// A binary's part of one plan.
#[derive(Default)]
pub struct TierPlan {
    /// The binary's own request phases, if it has any.
    pub filter: Option<Arc<dyn Filter>>,
    /// The route handlers this binary offers (`handler: {<kind>: <args>}` on a route), built
    /// with the tier's section at hand. A kind the binary does not offer is refused at load
    /// with a "did you mean".
    pub handlers: Handlers,
    /// The tier's section as `/config` shows it: serialized from the tier's own types, so
    /// secrets come out redacted by their type.
    pub section: Option<(&'static str, serde_json::Value)>,
    /// What else `/readyz` waits for (the internal gateway's event broker); `None`: nothing.
    pub ready: Option<ReadyCheck>,
}

/// A readiness condition of a tier, polled by the readiness loop; must be cheap (an atomic).
pub type ReadyCheck = Arc<dyn Fn() -> bool + Send + Sync>;

impl Debug for TierPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierPlan")
            .field("filter", &self.filter)
            .field("handlers", &self.handlers)
            .field("section", &self.section)
            .field("ready", &self.ready.is_some())
            .finish()
    }
}

/// The proxy core alone: no section, no phases, no handlers.
#[derive(Debug, Default)]
pub struct NoTier;

impl Tier for NoTier {
    fn build(&self, _cx: &TierBuild<'_>) -> Result<TierPlan, ConfigError> {
        Ok(TierPlan::default())
    }
}

/// Refuses a tier section this binary does not read, naming the key.
pub(crate) fn check_sections(
    tier: &dyn Tier,
    settings: &ProxySettings,
    source: &Source,
) -> Result<(), ConfigError> {
    let own = tier.section();
    for key in settings.tier_sections() {
        if Some(key) != own {
            let reads = match own {
                Some(own) => format!("this binary reads `{own}`"),
                None => "this binary reads no section of its own".to_owned(),
            };
            return Err(source.error_at(
                key,
                format!(
                    "the `{key}` section belongs to another Gatehouse binary \
                     (gatehouse-{key}); {reads} and would ignore it"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
