//! Service discovery: a service's endpoint set from a static list or DNS (A/AAAA or SRV),
//! kept fresh in the background and published on a watch channel.
//!
//! DNS sets are re-resolved when the records' TTL runs out (clamped to 1s..=300s) or after
//! `refresh`, whichever comes first. When DNS fails (NXDOMAIN, SERVFAIL, timeout, empty
//! answer) the last good set stays, a warning is logged once per failure streak, and the
//! lookup is retried after 1s, doubling up to the refresh interval. A set is published only
//! when it changes; it is sorted by address with duplicates merged.

mod dns;
mod refresh;
mod settings;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use dns::{DnsError, DnsResolver};
pub use settings::{DiscoverySettings, DnsSettings, DnsSrvSettings, EndpointSettings, validate};

use refresh::Target;

/// One endpoint of a service, with its share of traffic relative to the others (at least 1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Discovered {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The static weight, or the SRV weight (0 counted as 1); 1 for A/AAAA records.
    pub weight: u32,
}

/// The live endpoint set of one service. Cheap to clone; every clone sees the same set.
#[derive(Clone, Debug)]
pub struct Discovery {
    rx: watch::Receiver<Arc<[Discovered]>>,
    description: Arc<str>,
    /// Held for static sets, which have no task: their channel stays open, never changing.
    _static: Option<Arc<watch::Sender<Arc<[Discovered]>>>>,
}

impl Discovery {
    /// Starts discovery. A static set is published at once; a DNS set starts empty and a
    /// task (spawned on the current Tokio runtime) resolves it until `stop` is cancelled,
    /// after which the channel closes and the last set stays readable.
    ///
    /// Settings are expected to have passed [`validate`]; a static endpoint of weight 0
    /// counts as 1 here.
    pub fn start(
        settings: &DiscoverySettings,
        resolver: &DnsResolver,
        stop: CancellationToken,
    ) -> Discovery {
        let description: Arc<str> = describe(settings).into();
        let (target, refresh) = match settings {
            DiscoverySettings::Static(endpoints) => {
                let set = normalize(
                    endpoints
                        .iter()
                        .map(|endpoint| Discovered {
                            addr: endpoint.address(),
                            weight: endpoint.weight().max(1),
                        })
                        .collect(),
                );
                let (tx, rx) = watch::channel(set);
                return Discovery {
                    rx,
                    description,
                    _static: Some(Arc::new(tx)),
                };
            }
            DiscoverySettings::Dns(dns) => (
                Target::Ip {
                    name: dns.name.clone(),
                    port: dns.port,
                },
                dns.refresh,
            ),
            DiscoverySettings::DnsSrv(srv) => (
                Target::Srv {
                    name: srv.name.clone(),
                },
                srv.refresh,
            ),
        };
        let (tx, rx) = watch::channel(Arc::from(Vec::new()));
        tokio::spawn(refresh::run(
            target,
            resolver.clone(),
            refresh.map(Into::into),
            tx,
            stop,
        ));
        Discovery {
            rx,
            description,
            _static: None,
        }
    }

    /// The current set: empty until a DNS set first resolves.
    pub fn current(&self) -> Arc<[Discovered]> {
        self.rx.borrow().clone()
    }

    /// A receiver that is told of each new set.
    pub fn subscribe(&self) -> watch::Receiver<Arc<[Discovered]>> {
        self.rx.clone()
    }

    /// Waits up to `timeout` for a non-empty set; true once there is one.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let mut rx = self.rx.clone();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|set| !set.is_empty())).await,
            Ok(Ok(_))
        )
    }

    /// What this discovers, for logs and the admin server: `static (3 endpoints)`,
    /// `dns orders.mesh:8080`, `dns_srv _http._tcp.orders.mesh`.
    pub fn describe(&self) -> String {
        self.description.to_string()
    }
}

fn describe(settings: &DiscoverySettings) -> String {
    match settings {
        DiscoverySettings::Static(endpoints) if endpoints.len() == 1 => {
            "static (1 endpoint)".to_owned()
        }
        DiscoverySettings::Static(endpoints) => format!("static ({} endpoints)", endpoints.len()),
        DiscoverySettings::Dns(dns) => format!("dns {}:{}", dns.name, dns.port),
        DiscoverySettings::DnsSrv(srv) => format!("dns_srv {}", srv.name),
    }
}

/// Sorts by address and merges duplicates, adding their weights (two SRV records naming
/// the same target and port count as one endpoint carrying both weights).
fn normalize(endpoints: Vec<Discovered>) -> Arc<[Discovered]> {
    let mut merged: BTreeMap<SocketAddr, u32> = BTreeMap::new();
    for endpoint in endpoints {
        let weight = merged.entry(endpoint.addr).or_insert(0);
        *weight = weight.saturating_add(endpoint.weight);
    }
    merged
        .into_iter()
        .map(|(addr, weight)| Discovered { addr, weight })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(addr: &str, weight: u32) -> Discovered {
        Discovered {
            addr: addr.parse().expect("test address"),
            weight,
        }
    }

    #[test]
    fn normalize_sorts_and_merges() {
        let set = normalize(vec![
            at("127.0.0.2:80", 1),
            at("127.0.0.1:80", 2),
            at("127.0.0.2:80", 3),
        ]);
        assert_eq!(&*set, [at("127.0.0.1:80", 2), at("127.0.0.2:80", 4)]);
    }
}
