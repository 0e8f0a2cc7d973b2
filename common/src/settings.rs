//! Raw configuration fragments shared by the binaries: listener, TLS, admin, telemetry, limits,
//! timeouts, services and routes.
//!
//! These are the serde layer (`deny_unknown_fields`, defaults documented where they are set);
//! [`crate::plan`] validates them into runtime types.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{ByteSize, Duration};
use crate::upstream::balance::{BalancerKind, HashOn};
use crate::upstream::breaker::{FailureBreakerSettings, LimitSettings as BreakerLimitSettings};
use crate::upstream::discovery::{DnsSettings, DnsSrvSettings, EndpointSettings};
use crate::upstream::health::{HealthCheckSettings, OutlierSettings};
use crate::upstream::retry::RetrySettings;

/// The configuration of one proxy binary (for now the three binaries share it; each will add
/// its own sections on top).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    /// Where clients connect. At least one.
    pub listeners: Vec<ListenerSettings>,
    /// The admin server (health, readiness, metrics, config). Default `127.0.0.1:9901`.
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub limits: LimitSettings,
    /// Default upstream timeouts; a service may override them.
    #[serde(default)]
    pub timeouts: TimeoutSettings,
    /// How long SIGTERM waits for in-flight requests before exiting. Default 30s.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: Duration,
    /// Ordered routes; the longest matching path prefix wins, ties by order.
    #[serde(default)]
    pub routes: Vec<RouteSettings>,
    /// Upstream services by name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSettings>,
}

fn default_drain_timeout() -> Duration {
    Duration::from_secs(30)
}

/// One listening socket.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerSettings {
    /// Unique name, used in logs and metrics.
    pub name: String,
    /// `IP:PORT`; port 0 picks a free port (reported by `run()` and the startup log).
    pub address: SocketAddr,
    /// Serve TLS on this listener. Absent: plaintext (HTTP/1.1 and h2c).
    #[serde(default)]
    pub tls: Option<ServerTlsSettings>,
}

/// Server-side TLS: one or more certificates (chosen by SNI) and optional mTLS, PEM files.
///
/// Every file is polled for changes every `reload_interval`; a renewed pair is used for new
/// handshakes without a restart (see [`crate::tls`]).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsSettings {
    /// Certificate chain, leaf first. With `key`; the single-certificate form.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Private key (PKCS#8, SEC1 or PKCS#1) of `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// More certificates, selected by the SNI name the client asks for (matched against each
    /// certificate's DNS SANs, `*.` wildcards included). The first certificate (`cert`/`key`
    /// when set, else `certificates[0]`) is the default when no name matches. Default: none.
    #[serde(default)]
    pub certificates: Vec<CertKeySettings>,
    /// When set, clients must present a certificate chained to these roots and carrying a
    /// SPIFFE ID of `trust_domain` (mTLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// The trust domain client SPIFFE IDs must belong to (with `client_ca`). Default
    /// `gatehouse.local`.
    #[serde(default)]
    pub trust_domain: Option<String>,
    /// Client SPIFFE IDs admitted (with `client_ca`): exact IDs, or `spiffe://td/path/*` for
    /// every ID under `path`. Default: any ID of `trust_domain`.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// How often certificate, key and `client_ca` files are checked for changes. Default 1s.
    #[serde(default = "default_tls_reload_interval")]
    pub reload_interval: Duration,
}

/// A certificate chain and its key, PEM files.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertKeySettings {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

fn default_tls_reload_interval() -> Duration {
    Duration::from_secs(1)
}

/// The admin listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Default `127.0.0.1:9901`: loopback only, the admin API is not for the public.
    pub address: SocketAddr,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            address: SocketAddr::from(([127, 0, 0, 1], 9901)),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// `tracing` filter directive, e.g. `info` or `gatehouse_common=debug`. Default `info`;
    /// `RUST_LOG` overrides it.
    pub log_level: String,
    /// One structured access-log event per request (target `access_log`). Default true.
    pub access_log: bool,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            log_level: "info".into(),
            access_log: true,
        }
    }
}

/// Protection against oversized and slow clients.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Total size of request header names and values. Default 32KiB; over it: 431.
    pub max_request_header_bytes: ByteSize,
    /// Request body size. Default 10MiB; over it: 413 (streamed, never buffered).
    pub max_request_body_bytes: ByteSize,
    /// Time for a new connection to send a complete request head (slowloris). Default 10s.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no bytes moving for this long is closed.
    /// Default 60s.
    pub idle_timeout: Duration,
    /// TLS handshake deadline. Default 10s.
    pub tls_handshake_timeout: Duration,
    /// HTTP/2 streams per connection. Default 100.
    pub max_concurrent_streams: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_request_header_bytes: ByteSize::new(32 * 1024),
            max_request_body_bytes: ByteSize::new(10 * 1024 * 1024),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
            max_concurrent_streams: 100,
        }
    }
}

/// Upstream timeouts.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutSettings {
    /// TCP connect. Default 2s; a refused connect answers 502, a timed-out one 504.
    pub connect: Duration,
    /// From sending the request to receiving the response head. Default 30s; over it: 504.
    pub request: Duration,
}

impl Default for TimeoutSettings {
    fn default() -> Self {
        TimeoutSettings {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(30),
        }
    }
}

/// How to speak to a service's endpoints.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 over TCP. The default.
    #[default]
    Http1,
    /// HTTP/2 over TCP without TLS (prior knowledge), e.g. for gRPC backends.
    H2c,
    /// TLS, HTTP/2 or HTTP/1.1 as negotiated by ALPN.
    Https,
}

/// An upstream service: where its endpoints are, how to talk to them, and how to stay
/// resilient when they fail.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Static endpoints: `IP:PORT` or `{address, weight}` (`static` is accepted too).
    /// Exactly one of `endpoints`, `dns` and `dns_srv`.
    #[serde(default, alias = "static", skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointSettings>,
    /// Endpoints from A/AAAA records: `{name, port, refresh}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSettings>,
    /// Endpoints from SRV records: `_http._tcp.name` or `{name, refresh}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_srv: Option<DnsSrvSettings>,
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// TLS towards the service (with `protocol: https`).
    #[serde(default)]
    pub tls: Option<UpstreamTlsSettings>,
    /// Overrides the top-level `timeouts`, key by key. `request` is the overall deadline,
    /// retries included.
    #[serde(default)]
    pub timeouts: Option<ServiceTimeoutSettings>,
    /// `least_request` (default: power of two choices over peak-EWMA latency),
    /// `round_robin`, or `consistent_hash` (with `hash_on`).
    #[serde(default)]
    pub balancer: BalancerKind,
    /// The consistent-hash key: `{header: NAME}` or `{cookie: NAME}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on: Option<HashOn>,
    /// Active health checks. Default: none (passive outlier detection only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSettings>,
    /// Passive ejection of failing endpoints.
    #[serde(default)]
    pub outlier_detection: OutlierSettings,
    /// Concurrency thresholds; over them, requests are answered 503 at once.
    #[serde(default)]
    pub circuit_breaker: BreakerLimitSettings,
    /// Opens on consecutive failures or a failure ratio; 503 at once while open.
    #[serde(default)]
    pub failure_breaker: FailureBreakerSettings,
    /// Retry policy (routes may override it).
    #[serde(default)]
    pub retry: RetrySettings,
}

/// Per-service timeouts; an absent key takes the top-level value.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ServiceTimeoutSettings {
    #[serde(default)]
    pub connect: Option<Duration>,
    #[serde(default)]
    pub request: Option<Duration>,
}

/// Client-side TLS towards a service.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsSettings {
    /// Trusted roots (PEM). Absent: the public web PKI roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Present this certificate (mTLS).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The SPIFFE ID the service must present (mesh mTLS; needs `ca`). When set, the
    /// certificate's single URI SAN must equal it and the DNS name is not checked, so endpoints
    /// may be IP addresses. Default: none (the usual host name check).
    #[serde(default)]
    pub expect_spiffe_id: Option<String>,
    /// How often `ca`, `cert` and `key` are checked for changes. Default 1s.
    #[serde(default = "default_tls_reload_interval")]
    pub reload_interval: Duration,
}

/// A route: which requests go to which service.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// Unique name: the metric label and the access log's `route`.
    pub name: String,
    #[serde(rename = "match", default)]
    pub matches: RouteMatchSettings,
    /// Name of a service under `services`.
    pub service: String,
    /// Overrides the service's retry policy for this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySettings>,
    /// Overrides the service's overall request timeout for this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// What a route matches.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteMatchSettings {
    /// Path prefix, matched on segment boundaries (`/api` matches `/api` and `/api/x`, not
    /// `/apix`). Default `/`.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Exact host (without port), case-insensitive. Default: any.
    #[serde(default)]
    pub host: Option<String>,
}
