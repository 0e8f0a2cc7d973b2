//! The DNS resolver behind discovery, and the two lookups it makes: A/AAAA and SRV.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{IntoName, RData, RecordType};

use super::Discovered;

/// A DNS resolver, cheap to clone (clones share connections and cache).
#[derive(Clone, Debug)]
pub struct DnsResolver {
    inner: TokioResolver,
}

/// Why a DNS resolver could not be built or a lookup gave no endpoints.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The resolver could not be built.
    #[error("cannot build the DNS resolver")]
    Build(#[source] Box<NetError>),
    /// The lookup failed: NXDOMAIN, SERVFAIL, timeout, no records.
    #[error("{kind} lookup of `{name}` failed")]
    Lookup {
        /// The name looked up.
        name: String,
        /// `A/AAAA` or `SRV`.
        kind: &'static str,
        /// What hickory reported (boxed: it is large).
        #[source]
        source: Box<NetError>,
    },
    /// The answer held no usable address (e.g. SRV records whose target is `.`).
    #[error("{kind} lookup of `{name}` gave no usable endpoint")]
    Empty {
        /// The name looked up.
        name: String,
        /// `A/AAAA` or `SRV`.
        kind: &'static str,
    },
}

/// The endpoints of one lookup and how long they may be trusted.
#[derive(Debug)]
pub(super) struct Answer {
    /// Not yet sorted nor deduplicated.
    pub(super) endpoints: Vec<Discovered>,
    /// The smallest remaining TTL of the records used.
    pub(super) ttl: Duration,
}

impl DnsResolver {
    /// A resolver configured from `/etc/resolv.conf` (name servers, search domains, `ndots`,
    /// timeouts), so Docker's embedded DNS and Kubernetes' cluster DNS work. Without a
    /// readable `/etc/resolv.conf` it does what glibc does: asks the name server on
    /// 127.0.0.1:53. A and AAAA are queried together.
    pub fn from_system() -> Result<DnsResolver, DnsError> {
        let mut builder = match TokioResolver::builder_tokio() {
            Ok(builder) => builder,
            Err(error) => {
                tracing::warn!(
                    error = %error,
                    "cannot read the system DNS configuration; using the name server on 127.0.0.1:53"
                );
                let local = NameServerConfig::udp_and_tcp(IpAddr::V4(Ipv4Addr::LOCALHOST));
                let config = ResolverConfig::from_name_servers(vec![local]);
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            }
        };
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let inner = builder
            .build()
            .map_err(|error| DnsError::Build(Box::new(error)))?;
        Ok(DnsResolver { inner })
    }

    /// A resolver asking only `server` (UDP, and TCP when hickory falls back to it), for
    /// tests: no hosts file, no search domains, 1s query timeout, one attempt, and errors
    /// cached for at most 1s so that a recovered server is seen at once.
    pub fn with_nameserver(server: SocketAddr) -> Result<DnsResolver, DnsError> {
        let mut udp = ConnectionConfig::udp();
        udp.port = server.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = server.port();
        let name_server = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
        let config = ResolverConfig::from_name_servers(vec![name_server]);
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        let options = builder.options_mut();
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        options.use_hosts_file = ResolveHosts::Never;
        options.timeout = Duration::from_secs(1);
        options.attempts = 1;
        options.cache_size = 64;
        options.negative_max_ttl = Some(Duration::from_secs(1));
        let inner = builder
            .build()
            .map_err(|error| DnsError::Build(Box::new(error)))?;
        Ok(DnsResolver { inner })
    }

    /// The A and AAAA records of `name`, each address on `port`, weight 1.
    pub(super) async fn lookup_ip(&self, name: &str, port: u16) -> Result<Answer, DnsError> {
        self.forget_ip(name);
        let lookup = self
            .inner
            .lookup_ip(name)
            .await
            .map_err(|source| DnsError::Lookup {
                name: name.to_owned(),
                kind: "A/AAAA",
                source: Box::new(source),
            })?;
        let endpoints: Vec<Discovered> = distinct(lookup.iter())
            .map(|ip| Discovered {
                addr: SocketAddr::new(ip, port),
                weight: 1,
            })
            .collect();
        if endpoints.is_empty() {
            return Err(DnsError::Empty {
                name: name.to_owned(),
                kind: "A/AAAA",
            });
        }
        Ok(Answer {
            endpoints,
            ttl: remaining(lookup.valid_until()),
        })
    }

    /// The SRV records of `name` of the lowest priority value (RFC 2782: the others are
    /// backups), each target resolved to its addresses, with the record's port and weight
    /// (weight 0 counts as 1). Targets that do not resolve are left out while others do.
    pub(super) async fn lookup_srv(&self, name: &str) -> Result<Answer, DnsError> {
        self.inner.clear_lookup_cache(name, RecordType::SRV);
        let lookup = self
            .inner
            .srv_lookup(name)
            .await
            .map_err(|source| DnsError::Lookup {
                name: name.to_owned(),
                kind: "SRV",
                source: Box::new(source),
            })?;
        let mut valid_until = lookup.valid_until();
        let records: Vec<_> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) if !srv.target.is_root() => Some(srv),
                _ => None,
            })
            .collect();
        let best = records.iter().map(|srv| srv.priority).min();
        let chosen: Vec<_> = records
            .into_iter()
            .filter(|srv| Some(srv.priority) == best)
            .collect();
        let targets = join_all(chosen.iter().map(|srv| {
            self.forget_ip(srv.target.clone());
            self.inner.lookup_ip(srv.target.clone())
        }))
        .await;
        let mut endpoints = Vec::new();
        let mut first_error = None;
        for (srv, target) in chosen.iter().zip(targets) {
            match target {
                Ok(ips) => {
                    valid_until = valid_until.min(ips.valid_until());
                    let weight = u32::from(srv.weight.max(1));
                    endpoints.extend(distinct(ips.iter()).map(|ip| Discovered {
                        addr: SocketAddr::new(ip, srv.port),
                        weight,
                    }));
                }
                Err(source) => {
                    let target = srv.target.to_string();
                    tracing::debug!(dns.name = name, dns.target = %target, error = %source, "SRV target did not resolve");
                    first_error.get_or_insert(DnsError::Lookup {
                        name: target,
                        kind: "A/AAAA",
                        source: Box::new(source),
                    });
                }
            }
        }
        if endpoints.is_empty() {
            return Err(first_error.unwrap_or_else(|| DnsError::Empty {
                name: name.to_owned(),
                kind: "SRV",
            }));
        }
        Ok(Answer {
            endpoints,
            ttl: remaining(valid_until),
        })
    }

    /// Drops cached A/AAAA answers for `name`. Discovery decides itself when to ask again
    /// (at the TTL or sooner with `refresh`), so each of its lookups must reach DNS.
    fn forget_ip(&self, name: impl IntoName + Clone) {
        self.inner.clear_lookup_cache(name.clone(), RecordType::A);
        self.inner.clear_lookup_cache(name, RecordType::AAAA);
    }
}

/// Each address once, in order (a record listed twice must not count twice).
fn distinct(ips: impl Iterator<Item = IpAddr>) -> impl Iterator<Item = IpAddr> {
    ips.collect::<BTreeSet<_>>().into_iter()
}

fn remaining(valid_until: Instant) -> Duration {
    valid_until.saturating_duration_since(Instant::now())
}
