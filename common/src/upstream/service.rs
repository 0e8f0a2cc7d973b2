//! One upstream service at run time: its endpoints (kept current by discovery), balancer,
//! breakers, retry budget and pooled client; [`Upstream::call`] sends a request through all of
//! them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::balance::{Balancer, BalancerSettings};
use super::breaker::{Breaker, BreakerState};
use super::discovery::{Discovered, Discovery, DiscoverySettings, DnsResolver};
use super::endpoint::Endpoint;
use super::health;
use super::retry::RetryBudget;
use crate::client::UpstreamClient;
use crate::settings::ServiceSettings;

/// A service with everything needed to call it resiliently.
#[derive(Debug)]
pub struct Upstream {
    pub name: Arc<str>,
    pub settings: ServiceSettings,
    pub(crate) endpoints: Arc<ArcSwap<Vec<Arc<Endpoint>>>>,
    pub(crate) balancer: Balancer,
    pub(crate) breaker: Breaker,
    pub(crate) budget: RetryBudget,
    pub client: UpstreamClient,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    discovery: Discovery,
    /// Stops discovery and health-check tasks when the service leaves the plan.
    _tasks: DropGuard,
}

impl Upstream {
    /// Builds the service and starts its discovery and health-check tasks.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        settings: ServiceSettings,
        balancer: BalancerSettings,
        discovery: &DiscoverySettings,
        resolver: &DnsResolver,
        client: UpstreamClient,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Arc<Upstream> {
        let stop = CancellationToken::new();
        let discovery = Discovery::start(discovery, resolver, stop.child_token());
        let endpoints = Arc::new(ArcSwap::from_pointee(build_endpoints(
            &[],
            &discovery.current(),
        )));
        let name: Arc<str> = Arc::from(name);
        spawn_endpoint_updates(
            name.clone(),
            &discovery,
            endpoints.clone(),
            stop.child_token(),
        );
        if let Some(hc) = &settings.health_check {
            health::spawn_checks(
                name.clone(),
                hc.clone(),
                client.clone(),
                endpoints.clone(),
                stop.child_token(),
            );
        }
        Arc::new(Upstream {
            name,
            balancer: Balancer::new(balancer),
            breaker: Breaker::new(
                settings.circuit_breaker.clone(),
                settings.failure_breaker.clone(),
            ),
            budget: RetryBudget::new(settings.retry.budget.clone()),
            settings,
            endpoints,
            client,
            connect_timeout,
            request_timeout,
            discovery,
            _tasks: stop.drop_guard(),
        })
    }

    /// The endpoints now, in discovery order.
    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.load_full()
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Waits until discovery has produced a first non-empty endpoint set.
    pub async fn ready(&self, timeout: Duration) -> bool {
        self.discovery.ready(timeout).await
    }

    /// How the endpoints are found (for logs and the admin table).
    pub fn discovery_description(&self) -> String {
        self.discovery.describe()
    }

    /// The admin view: breaker state and the endpoint table.
    pub fn admin_json(&self) -> serde_json::Value {
        let endpoints: Vec<serde_json::Value> = self
            .endpoints()
            .iter()
            .map(|e| {
                let ejected_until = e.ejected_until().map(|until| {
                    let left = until.saturating_duration_since(Instant::now());
                    let at = std::time::SystemTime::now() + left;
                    humantime::format_rfc3339_seconds(at).to_string()
                });
                serde_json::json!({
                    "address": e.addr.to_string(),
                    "weight": e.weight,
                    "state": e.state().as_str(),
                    "in_flight": e.in_flight(),
                    "ewma_ms": (e.ewma().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
                    "ejected_until": ejected_until,
                })
            })
            .collect();
        serde_json::json!({
            "breaker": self.breaker_state().as_str(),
            "discovery": self.discovery_description(),
            "endpoints": endpoints,
        })
    }
}

/// Keeps the endpoint list in step with discovery, reusing the state (latency, ejection) of
/// endpoints that stay.
fn spawn_endpoint_updates(
    service: Arc<str>,
    discovery: &Discovery,
    endpoints: Arc<ArcSwap<Vec<Arc<Endpoint>>>>,
    stop: CancellationToken,
) {
    let mut rx = discovery.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                changed = rx.changed() => if changed.is_err() { break },
            }
            let set = rx.borrow_and_update().clone();
            let next = build_endpoints(&endpoints.load(), &set);
            tracing::info!(
                service = %service,
                endpoints = ?next.iter().map(|e| e.addr).collect::<Vec<SocketAddr>>(),
                "endpoints changed"
            );
            endpoints.store(Arc::new(next));
        }
    });
}

fn build_endpoints(current: &[Arc<Endpoint>], set: &[Discovered]) -> Vec<Arc<Endpoint>> {
    set.iter()
        .map(|d| {
            current
                .iter()
                .find(|e| e.addr == d.addr && e.weight == d.weight.max(1))
                .cloned()
                .unwrap_or_else(|| Arc::new(Endpoint::new(d.addr, d.weight)))
        })
        .collect()
}
