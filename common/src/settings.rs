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

/// The configuration of one proxy binary: what the three binaries share. Each binary's own
/// section (`edge`, `internal`, `sidecar`) is declared and validated by that binary's crate
/// (see [`crate::tier::Tier`]); here its key is only reserved.
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
    /// How long SIGTERM keeps the listeners accepting, with `/readyz` answering 503, before the
    /// drain starts: a load balancer that polls `/readyz` takes the process out first, so no
    /// connection it sends meets a closed listener. Default 0s (Kubernetes' preStop sleep does
    /// this job there).
    #[serde(default)]
    pub drain_delay: Duration,
    /// What the problem bodies of upstream failures (502, 503, 504) tell clients: `full`
    /// (the service, the address, the cause; for operators) or `public` (what happened, no
    /// internal names: for a tier whose answers reach outside clients). The log line always
    /// has everything. Default `full`; the edge always answers `public`.
    #[serde(default)]
    pub error_details: ErrorDetails,
    /// Named routes; the most specific match wins, ties by file order (see
    /// [`crate::routing`]).
    #[serde(default)]
    pub routes: Vec<RouteSettings>,
    /// Upstream services by name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSettings>,
    /// What `/readyz` waits for beyond loaded config and bound listeners.
    #[serde(default)]
    pub readiness: ReadinessSettings,
    /// The binaries' own sections, reserved so that a misspelt top-level key is still refused
    /// with the full list of keys. Their schemas live in the binaries' crates, which read them
    /// from the file themselves ([`crate::config::section`]); a binary refuses another's
    /// section rather than ignore it.
    #[serde(default, skip_serializing)]
    pub edge: Option<TierSection>,
    #[serde(default, skip_serializing)]
    pub internal: Option<TierSection>,
    #[serde(default, skip_serializing)]
    pub sidecar: Option<TierSection>,
}

/// A binary's own section as the shared settings see it: present, contents not read here.
pub type TierSection = serde::de::IgnoredAny;

impl ProxySettings {
    /// The reserved tier sections given in the file, by key.
    pub fn tier_sections(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            ("edge", self.edge.is_some()),
            ("internal", self.internal.is_some()),
            ("sidecar", self.sidecar.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
    }
}

/// Conditions for `/readyz` (and `wait-ready`) beyond "config loaded, certificates loaded,
/// listeners bound", which always apply.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReadinessSettings {
    /// Not ready until every service has a first non-empty endpoint set (DNS resolved).
    /// Default true.
    pub services_resolved: bool,
    /// Not ready while this URL does not answer 2xx — for a sidecar, the local app's health
    /// check. Plain `http://` only. Default: none.
    pub http_check: Option<String>,
    /// How often `http_check` is probed, and its timeout. Default 1s.
    pub check_interval: Duration,
}

impl Default for ReadinessSettings {
    fn default() -> Self {
        ReadinessSettings {
            services_resolved: true,
            http_check: None,
            check_interval: Duration::from_secs(1),
        }
    }
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
    /// SPIFFE IDs of the gateways whose `x-gatehouse-*` identity headers are believed (mTLS
    /// listeners only). From any other peer those request headers are removed before routing.
    /// Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_gateways: Vec<String>,
    /// Behind a TCP load balancer: connections from `trusted` must begin with a PROXY protocol
    /// header (v1 or v2), whose source address becomes the client's (logs, `X-Forwarded-For`,
    /// limits by client address); connections from anywhere else are refused. Default: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocolSettings>,
}

/// The `proxy_protocol` of a listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxyProtocolSettings {
    /// The balancers' addresses or networks (`10.0.0.0/8`, `192.0.2.10`); at least one.
    pub trusted: Vec<String>,
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
    /// The service listens on this Unix domain socket (e.g. a sidecar's local app), HTTP/1.1 or
    /// h2c. The endpoint table then shows one endpoint, `127.0.0.1:0`, standing for the socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix_socket: Option<PathBuf>,
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
    /// Whether 5xx responses count as failures for `outlier_detection` and
    /// `failure_breaker`. Default true. Set false for a gateway in front of many services (the
    /// edge's hop to the internal gateway): a 5xx relayed from one of them says nothing about
    /// the gateway, and must not eject it or open its breaker for everyone. Connect errors,
    /// resets and timeouts count either way.
    #[serde(default = "default_true")]
    pub count_server_errors: bool,
}

/// See [`ProxySettings::error_details`].
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorDetails {
    #[default]
    Full,
    Public,
}

fn default_true() -> bool {
    true
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

/// A route: which requests it matches, what it does with them (its action) and how it
/// transforms them. See [`crate::routing`] for the specificity order and the semantics.
///
/// Exactly one action: `service` (proxy), `split`, `redirect`, `direct_response` or `handler`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// Unique name: the metric label and the access log's `route`.
    pub name: String,
    /// Default: every request (`path_prefix: /`).
    #[serde(rename = "match", default)]
    pub matches: RouteMatchSettings,
    /// Proxy to this service (a name under `services`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Weighted split across services: `[{service: users-v1, weight: 90}, {service:
    /// users-v2, weight: 10}]`. Each request picks one at random by weight, or by a hash of
    /// `sticky`'s header or cookie when set and present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<SplitTargetSettings>>,
    /// With `split`: keep a user on one side by hashing this header or cookie
    /// (`{header: NAME}` or `{cookie: NAME}`). Default: none (random by weight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<HashOn>,
    /// With `service` or `split`: copy a share of the requests to a shadow service; its
    /// response is discarded. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorSettings>,
    /// Answer with a redirect instead of proxying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectSettings>,
    /// Answer with a fixed status and body instead of proxying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<DirectResponseSettings>,
    /// Hand the request to a handler the binary offers: `{<kind>: <args>}`, one kind (e.g.
    /// the internal gateway's `envelope`). A kind the binary does not offer is refused at load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<BTreeMap<String, serde_yaml::Value>>,
    /// Path and host rewrites of the request sent upstream. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<RewriteSettings>,
    /// Headers added, set or removed on the request sent upstream. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<HeaderTransformSettings>,
    /// Headers added, set or removed on the response (proxied, redirect or direct). Default:
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<HeaderTransformSettings>,
    /// Overrides the service's retry policy for this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySettings>,
    /// Overrides the service's overall request timeout for this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// What a route matches. Every condition given must hold; an absent one matches anything.
/// At most one of `path`, `path_prefix`, `path_template` and `path_regex`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteMatchSettings {
    /// Exact path (case-sensitive, query excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Path prefix, matched on segment boundaries (`/api` matches `/api` and `/api/x`, not
    /// `/apix`). The default when no path condition is given: `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Path template: literal segments and whole-segment captures, `/api/users/{id}`. A
    /// capture matches one non-empty segment; its value is usable in rewrites and headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_template: Option<String>,
    /// Regular expression the whole path must match (anchored at both ends); its named
    /// groups are captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
    /// Host (port ignored, case-insensitive): exact, or `*.example.com` for any name ending
    /// in `.example.com`. Default: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Request methods, any of them. Default: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Request headers, all of them (`{name, exact | regex | present}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<ValueMatchSettings>,
    /// Query parameters (percent-decoded), all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<ValueMatchSettings>,
    /// Cookies, all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cookies: Vec<ValueMatchSettings>,
    /// Scopes the caller must hold, all of them (from `x-gatehouse-scopes`, separated by
    /// spaces or commas, trusted only from a trusted gateway).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The caller's subject must equal this (`x-gatehouse-subject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Only requests that arrived on one of these listeners (by name). Default: any. A sidecar
    /// uses it to keep its outbound routes off its inbound side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<String>,
}

/// A condition on a named header, query parameter or cookie: at most one of `exact`,
/// `regex` (whole value) and `present`; with none, the name must be present.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValueMatchSettings {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// `true`: present (any value); `false`: absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// One side of a weighted split.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitTargetSettings {
    pub service: String,
    /// Relative weight (the share is weight / sum of weights); 0 takes no traffic.
    pub weight: u32,
}

/// Traffic mirroring to a shadow service.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MirrorSettings {
    pub service: String,
    /// Share of requests copied, 0 to 100. Default 100.
    #[serde(default = "default_mirror_percent")]
    pub percent: f64,
}

fn default_mirror_percent() -> f64 {
    100.0
}

/// A redirect answer: either `location` (a URL or path, with `{captures}`), or parts of the
/// request's URL replaced (`scheme`, `host`, `port`, `path`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RedirectSettings {
    /// 301, 302, 303, 307 or 308. Default 301 (as Envoy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A path template (`/v2/users/{id}`); default the request's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Drop the request's query (without `location`). Default false.
    #[serde(default)]
    pub strip_query: bool,
}

/// A fixed answer.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirectResponseSettings {
    /// 200 to 599.
    pub status: u16,
    /// Default: empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Default `text/plain; charset=utf-8` when there is a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Path and host rewrites (at most one of `strip_prefix`, `prefix` and `path`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RewriteSettings {
    /// Remove the matched `path_prefix` (`/api/users` → `/users`). Default false.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Replace the matched `path_prefix` with this (`/api/users` → `/v1/users`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Replace the path with this template (`/v1/users/{id}`); the query is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The `Host` sent upstream (`X-Forwarded-Host` keeps the client's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Header changes, applied in the order remove, set, add. Values are templates:
/// `{capture}`, `{request_id}`, `{subject}`, `{route}`, `{host}`, `{path}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HeaderTransformSettings {
    /// Appended (existing values kept).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    /// Replacing any existing values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}
