//! Choosing an endpoint: weighted round robin, power-of-two-choices over peak-EWMA cost (the
//! default, as in linkerd2-proxy), and consistent hashing (rendezvous) for stickiness.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;

/// How a service spreads requests over its endpoints.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum BalancerKind {
    /// Weighted round robin.
    RoundRobin,
    /// Power of two choices by peak-EWMA latency × requests in flight. The default.
    #[default]
    LeastRequest,
    /// Requests with the same key (see `hash_on`) go to the same endpoint while it is
    /// available; requests without the key fall back to `least_request`.
    ConsistentHash,
}

/// Where the consistent-hash key comes from: exactly one of `header` or `cookie`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct HashOn {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub cookie: Option<String>,
}

/// Validated balancer choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BalancerSettings {
    RoundRobin,
    LeastRequest,
    ConsistentHash(HashKey),
}

/// The consistent-hash key source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    Header(String),
    Cookie(String),
}

impl BalancerSettings {
    /// Combines `balancer` and `hash_on`; `Err` names what is wrong.
    pub fn from_parts(kind: BalancerKind, hash_on: Option<&HashOn>) -> Result<Self, &'static str> {
        Ok(match (kind, hash_on) {
            (BalancerKind::ConsistentHash, Some(h)) => match (&h.header, &h.cookie) {
                (Some(name), None) => {
                    BalancerSettings::ConsistentHash(HashKey::Header(name.to_ascii_lowercase()))
                }
                (None, Some(name)) => {
                    BalancerSettings::ConsistentHash(HashKey::Cookie(name.clone()))
                }
                _ => return Err("`hash_on` needs exactly one of `header` or `cookie`"),
            },
            (BalancerKind::ConsistentHash, None) => {
                return Err("`balancer: consistent_hash` needs `hash_on`");
            }
            (_, Some(_)) => return Err("`hash_on` is only used with `balancer: consistent_hash`"),
            (BalancerKind::RoundRobin, None) => BalancerSettings::RoundRobin,
            (BalancerKind::LeastRequest, None) => BalancerSettings::LeastRequest,
        })
    }
}

/// A balancer over a set of endpoints.
#[derive(Debug)]
pub struct Balancer {
    settings: BalancerSettings,
    next: AtomicUsize,
}

impl Balancer {
    pub fn new(settings: BalancerSettings) -> Self {
        Balancer {
            settings,
            next: AtomicUsize::new(0),
        }
    }

    pub fn settings(&self) -> &BalancerSettings {
        &self.settings
    }

    /// Picks an endpoint, skipping unavailable ones and those in `exclude` (endpoints already
    /// tried by this request). When nothing is available, it balances over all endpoints
    /// rather than fail (Envoy's "panic mode"): a guess beats a certain 503.
    pub fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        exclude: &[SocketAddr],
        req: &http::request::Parts,
    ) -> Option<Arc<Endpoint>> {
        if endpoints.is_empty() {
            return None;
        }
        let mut candidates: Vec<&Arc<Endpoint>> = endpoints
            .iter()
            .filter(|e| !exclude.contains(&e.addr) && e.is_available())
            .collect();
        if candidates.is_empty() {
            candidates = endpoints
                .iter()
                .filter(|e| !exclude.contains(&e.addr))
                .collect();
        }
        if candidates.is_empty() {
            candidates = endpoints.iter().collect();
        }
        let picked = match &self.settings {
            BalancerSettings::RoundRobin => self.round_robin(&candidates),
            BalancerSettings::LeastRequest => p2c(&candidates),
            BalancerSettings::ConsistentHash(key) => match hash_key(key, req) {
                Some(k) => rendezvous(&candidates, k),
                None => p2c(&candidates),
            },
        };
        picked.cloned()
    }

    fn round_robin<'a>(&self, c: &[&'a Arc<Endpoint>]) -> Option<&'a Arc<Endpoint>> {
        let total: u64 = c.iter().map(|e| u64::from(e.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut slot = (self.next.fetch_add(1, Ordering::Relaxed) as u64) % total;
        for e in c {
            let w = u64::from(e.weight);
            if slot < w {
                return Some(e);
            }
            slot -= w;
        }
        c.first().copied()
    }
}

/// Power of two choices: two distinct random candidates, the cheaper wins.
fn p2c<'a>(c: &[&'a Arc<Endpoint>]) -> Option<&'a Arc<Endpoint>> {
    match c.len() {
        0 => None,
        1 => Some(c[0]),
        n => {
            let a = rand::random_range(0..n);
            let mut b = rand::random_range(0..n - 1);
            if b >= a {
                b += 1;
            }
            let (ea, eb) = (c[a], c[b]);
            Some(if ea.cost() <= eb.cost() { ea } else { eb })
        }
    }
}

/// Rendezvous (highest random weight) hashing, weighted: removing an endpoint only moves the
/// keys that were on it.
fn rendezvous<'a>(c: &[&'a Arc<Endpoint>], key: &[u8]) -> Option<&'a Arc<Endpoint>> {
    let hasher =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
    c.iter()
        .map(|e| {
            let mut h = hasher.build_hasher();
            h.write(key);
            match e.addr.ip() {
                std::net::IpAddr::V4(ip) => h.write(&ip.octets()),
                std::net::IpAddr::V6(ip) => h.write(&ip.octets()),
            }
            h.write_u16(e.addr.port());
            // Map the hash to (0,1] and weight it: score = -w / ln(u).
            let u = ((h.finish() >> 11) as f64 + 1.0) / ((1u64 << 53) as f64 + 1.0);
            let score = -f64::from(e.weight) / u.ln();
            (score, *e)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, e)| e)
}

fn hash_key<'r>(key: &HashKey, req: &'r http::request::Parts) -> Option<&'r [u8]> {
    match key {
        HashKey::Header(name) => req.headers.get(name.as_str()).map(|v| v.as_bytes()),
        HashKey::Cookie(name) => crate::headers::cookies(&req.headers)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(n: u16) -> Vec<Arc<Endpoint>> {
        (0..n)
            .map(|i| {
                Arc::new(Endpoint::new(
                    SocketAddr::from(([127, 0, 0, 1], 1000 + i)),
                    1,
                ))
            })
            .collect()
    }

    fn parts(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn round_robin_respects_weights() {
        let e = vec![
            Arc::new(Endpoint::new(SocketAddr::from(([127, 0, 0, 1], 1)), 3)),
            Arc::new(Endpoint::new(SocketAddr::from(([127, 0, 0, 1], 2)), 1)),
        ];
        let b = Balancer::new(BalancerSettings::RoundRobin);
        let p = parts(&[]);
        let first = (0..400)
            .filter(|_| b.pick(&e, &[], &p).map(|x| x.addr.port()) == Some(1))
            .count();
        assert_eq!(first, 300);
    }

    #[test]
    fn consistent_hash_is_sticky_and_moves_little() {
        let e = eps(5);
        let b = Balancer::new(BalancerSettings::ConsistentHash(HashKey::Header(
            "x-user".into(),
        )));
        let owner = |e: &[Arc<Endpoint>], user: &str| {
            b.pick(e, &[], &parts(&[("x-user", user)])).map(|x| x.addr)
        };
        let users: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
        let before: Vec<_> = users.iter().map(|u| owner(&e, u)).collect();
        assert_eq!(
            before,
            users.iter().map(|u| owner(&e, u)).collect::<Vec<_>>()
        );
        let removed = e[2].addr;
        let fewer: Vec<_> = e.iter().filter(|x| x.addr != removed).cloned().collect();
        for (u, was) in users.iter().zip(&before) {
            if *was != Some(removed) {
                assert_eq!(owner(&fewer, u), *was, "{u} moved without need");
            }
        }
    }

    #[test]
    fn excluded_and_ejected_endpoints_are_skipped() {
        let e = eps(3);
        e[0].eject(
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs(60),
        );
        let b = Balancer::new(BalancerSettings::LeastRequest);
        let p = parts(&[]);
        for _ in 0..50 {
            let got = b.pick(&e, &[e[1].addr], &p).map(|x| x.addr);
            assert_eq!(got, Some(e[2].addr));
        }
    }
}
