//! What a service's main and admin listeners share: its name, instance, chaos and metrics.

use crate::chaos::Chaos;
use crate::metrics::Metrics;

/// Shared by the main listener (which applies chaos and counts) and the admin listener (which
/// sets chaos and reports).
#[derive(Debug)]
pub(crate) struct State {
    /// The service name, e.g. `catalog`.
    pub(crate) service: &'static str,
    /// The instance number (`--instance`), reported in `x-instance`.
    pub(crate) instance: u32,
    pub(crate) chaos: Chaos,
    pub(crate) metrics: Metrics,
}

impl State {
    pub(crate) fn new(service: &'static str, instance: u32) -> Self {
        State {
            service,
            instance,
            chaos: Chaos::default(),
            metrics: Metrics::new(service, instance),
        }
    }
}
