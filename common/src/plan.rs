//! The validated runtime plan built from [`ProxySettings`]: listeners with loaded TLS, the route
//! table and the services with their pooled clients.
//!
//! A reload builds a new plan beside the running one and swaps it atomically; a request keeps
//! the plan it started with until it ends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

use crate::client::UpstreamClient;
use crate::config::{ConfigError, Source};
use crate::error::chain;
use crate::routing::{Matched, RouteRequest, RouteTable};
use crate::server::proxy_protocol::IpNet;
use crate::settings::{ListenerSettings, ProxySettings, ServiceSettings, UpstreamProtocol};
use crate::tier::{NoTier, Tier, TierBuild, TierPlan};
use crate::tls;
use crate::upstream::balance::BalancerSettings;
use crate::upstream::discovery::{self, DiscoverySettings, DnsResolver};
use crate::upstream::service::Upstream;

/// Limits applied by the server and the proxy core (see [`crate::settings::LimitSettings`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub max_concurrent_streams: u32,
}

/// A listener as the runtime needs it.
#[derive(Debug)]
pub struct ListenerPlan {
    pub name: Arc<str>,
    pub settings: ListenerSettings,
    pub tls: Option<Arc<ServerConfig>>,
    /// The networks whose connections carry a PROXY protocol header (`proxy_protocol`).
    pub proxy_protocol: Option<Arc<[IpNet]>>,
}

/// The run-time form of a service (see [`crate::upstream::service::Upstream`]).
pub type Service = Upstream;

/// A compiled route (see [`crate::routing`]).
pub use crate::routing::Route;

/// The runtime plan of one binary.
#[derive(Debug)]
pub struct Plan {
    /// The settings this plan was built from (served, redacted, by `/config`).
    pub settings: ProxySettings,
    pub listeners: Vec<ListenerPlan>,
    /// The routes and their compiled table (see [`crate::routing`] for the specificity order).
    routes: RouteTable,
    pub services: HashMap<String, Arc<Service>>,
    pub limits: Limits,
    pub drain_timeout: Duration,
    pub drain_delay: Duration,
    /// The binary's own part (its request phases, handlers and section), built by its
    /// [`Tier`] from this plan's settings.
    pub tier: TierPlan,
}

impl Plan {
    /// Validates `settings` (read from `source`) into a plan. Files named by the config
    /// (certificates, keys) are read and parsed here, so a bad file refuses the plan.
    /// Services whose settings did not change keep `previous`'s clients and their pooled
    /// connections.
    pub fn build(
        settings: ProxySettings,
        source: &Source,
        previous: Option<&Plan>,
    ) -> Result<Plan, ConfigError> {
        Self::build_with(settings, source, previous, &NoTier)
    }

    /// [`Plan::build`] for a binary with its own part: `tier` validates its section and builds
    /// its phases and route handlers.
    pub fn build_with(
        settings: ProxySettings,
        source: &Source,
        previous: Option<&Plan>,
        tier: &dyn Tier,
    ) -> Result<Plan, ConfigError> {
        crate::tier::check_sections(tier, &settings, source)?;
        let tier_plan = tier.build(&TierBuild {
            settings: &settings,
            source,
            previous: previous.map(|p| &p.tier),
        })?;
        let listeners = build_listeners(&settings, source)?;
        let services = build_services(&settings, source, previous)?;
        let routes = crate::routing::build(&settings, source, &services, &tier_plan.handlers)?;
        let l = &settings.limits;
        if l.max_concurrent_streams == 0 {
            return Err(source.error_at("limits.max_concurrent_streams", "must be at least 1"));
        }
        if l.max_request_header_bytes.get() < 1024 {
            return Err(source.error_at("limits.max_request_header_bytes", "must be at least 1KiB"));
        }
        if let Some(url) = &settings.readiness.http_check {
            let ok = url
                .parse::<http::Uri>()
                .is_ok_and(|u| u.scheme_str() == Some("http") && u.authority().is_some());
            if !ok {
                return Err(source.error_at(
                    "readiness.http_check",
                    format!("`{url}` is not an http:// URL (e.g. http://127.0.0.1:8080/healthz)"),
                ));
            }
        }
        let limits = Limits {
            max_header_bytes: l.max_request_header_bytes.as_usize(),
            max_body_bytes: l.max_request_body_bytes.get(),
            header_read_timeout: l.header_read_timeout.get(),
            idle_timeout: l.idle_timeout.get(),
            tls_handshake_timeout: l.tls_handshake_timeout.get(),
            max_concurrent_streams: l.max_concurrent_streams,
        };
        let drain_timeout = settings.drain_timeout.get();
        let drain_delay = settings.drain_delay.get();
        Ok(Plan {
            settings,
            listeners,
            routes,
            services,
            limits,
            drain_timeout,
            drain_delay,
            tier: tier_plan,
        })
    }

    /// The most specific route for a request, if any, with its path captures.
    pub fn route(&self, req: &RouteRequest<'_>) -> Option<Matched<'_>> {
        self.routes.find(req)
    }

    /// Routes in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes.routes
    }

    /// Routes most specific first (the order `/routes` shows).
    pub fn routes_ranked(&self) -> impl Iterator<Item = &Route> {
        self.routes.ranked()
    }

    /// The listener plan named `name`.
    pub fn listener(&self, name: &str) -> Option<&ListenerPlan> {
        self.listeners.iter().find(|l| &*l.name == name)
    }
}

fn build_listeners(s: &ProxySettings, src: &Source) -> Result<Vec<ListenerPlan>, ConfigError> {
    if s.listeners.is_empty() {
        return Err(src.error_at("listeners", "at least one listener is required"));
    }
    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    let mut out = Vec::with_capacity(s.listeners.len());
    for (i, l) in s.listeners.iter().enumerate() {
        if !names.insert(l.name.as_str()) {
            return Err(src.error_at(
                &format!("listeners[{i}].name"),
                format!("duplicate listener name `{}`", l.name),
            ));
        }
        if l.address.port() != 0 && !addrs.insert(l.address) {
            return Err(src.error_at(
                &format!("listeners[{i}].address"),
                format!("address {} is used by another listener", l.address),
            ));
        }
        let tls = match &l.tls {
            Some(t) => Some(tls::listener_config(t, tls::ALPN_H2_H1).map_err(|e| {
                src.error_at(&tls_key(&format!("listeners[{i}].tls"), &e), chain(&e))
            })?),
            None => None,
        };
        let proxy_protocol = match &l.proxy_protocol {
            None => None,
            Some(p) => {
                let at = format!("listeners[{i}].proxy_protocol.trusted");
                if p.trusted.is_empty() {
                    return Err(src.error_at(&at, "name at least one balancer address or network"));
                }
                let nets = p
                    .trusted
                    .iter()
                    .enumerate()
                    .map(|(j, n)| {
                        IpNet::parse(n).map_err(|e| src.error_at(&format!("{at}[{j}]"), e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Arc::from(nets))
            }
        };
        out.push(ListenerPlan {
            name: Arc::from(l.name.as_str()),
            settings: l.clone(),
            tls,
            proxy_protocol,
        });
    }
    Ok(out)
}

fn build_services(
    s: &ProxySettings,
    src: &Source,
    previous: Option<&Plan>,
) -> Result<HashMap<String, Arc<Service>>, ConfigError> {
    let mut out = HashMap::with_capacity(s.services.len());
    for (name, svc) in &s.services {
        let at = |key: &str| format!("services.{name}.{key}");
        let discovery = discovery_settings(svc, src, &at)?;
        if svc.unix_socket.is_none() {
            discovery::validate(&discovery, &format!("services.{name}"), src)?;
        }
        let balancer =
            BalancerSettings::from_parts(svc.balancer, svc.hash_on.as_ref()).map_err(|msg| {
                src.error_at(
                    &at(if svc.hash_on.is_some() {
                        "hash_on"
                    } else {
                        "balancer"
                    }),
                    msg,
                )
            })?;
        check_resilience(svc, src, &at)?;
        let overrides = svc.timeouts.clone().unwrap_or_default();
        let connect = overrides.connect.unwrap_or(s.timeouts.connect).get();
        let request = overrides.request.unwrap_or(s.timeouts.request).get();
        // An unchanged service keeps its endpoints' state, breakers, pools and tasks.
        if let Some(old) = previous.and_then(|p| p.services.get(name))
            && old.settings == *svc
            && old.connect_timeout == connect
            && old.request_timeout == request
        {
            out.insert(name.clone(), old.clone());
            continue;
        }
        let tls = match (&svc.tls, svc.protocol) {
            (Some(_), UpstreamProtocol::Http1 | UpstreamProtocol::H2c) => {
                return Err(src.error_at(&at("tls"), "`tls` needs `protocol: https`"));
            }
            (Some(t), UpstreamProtocol::Https) => Some(
                tls::upstream_client_config(t)
                    .map_err(|e| src.error_at(&tls_key(&at("tls"), &e), chain(&e)))?,
            ),
            (None, _) => None,
        };
        let client = match &svc.unix_socket {
            Some(_) if svc.protocol == UpstreamProtocol::Https => {
                return Err(src.error_at(
                    &at("unix_socket"),
                    "a Unix socket takes `protocol: http1` or `h2c`",
                ));
            }
            Some(path) => UpstreamClient::unix(svc.protocol, path),
            None => UpstreamClient::new(svc.protocol, tls, connect),
        };
        let resolver = resolver().map_err(|e| src.error_at(&at("dns"), chain(&e)))?;
        out.insert(
            name.clone(),
            Upstream::new(
                name,
                svc.clone(),
                balancer,
                &discovery,
                &resolver,
                client,
                connect,
                request,
            ),
        );
    }
    Ok(out)
}

/// The process's DNS resolver (from `/etc/resolv.conf`), made on first use.
fn resolver() -> Result<DnsResolver, discovery::DnsError> {
    static RESOLVER: std::sync::OnceLock<DnsResolver> = std::sync::OnceLock::new();
    if let Some(r) = RESOLVER.get() {
        return Ok(r.clone());
    }
    let r = DnsResolver::from_system()?;
    Ok(RESOLVER.get_or_init(|| r).clone())
}

/// The endpoint address standing for a Unix socket service.
const UNIX_STAND_IN: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Exactly one of `endpoints`, `dns`, `dns_srv`, `unix_socket`.
fn discovery_settings(
    svc: &ServiceSettings,
    src: &Source,
    at: &dyn Fn(&str) -> String,
) -> Result<DiscoverySettings, ConfigError> {
    if svc.unix_socket.is_some() {
        if !svc.endpoints.is_empty() || svc.dns.is_some() || svc.dns_srv.is_some() {
            return Err(src.error_at(
                &at("unix_socket"),
                "use only one of `endpoints`, `dns`, `dns_srv` and `unix_socket`",
            ));
        }
        // One stand-in endpoint: balancing, breakers and metrics work per endpoint.
        return Ok(DiscoverySettings::Static(vec![
            crate::upstream::discovery::EndpointSettings::Plain(UNIX_STAND_IN),
        ]));
    }
    match (svc.endpoints.is_empty(), &svc.dns, &svc.dns_srv) {
        (false, None, None) => Ok(DiscoverySettings::Static(svc.endpoints.clone())),
        (true, Some(d), None) => Ok(DiscoverySettings::Dns(d.clone())),
        (true, None, Some(d)) => Ok(DiscoverySettings::DnsSrv(d.clone())),
        (true, None, None) => Err(src.error_at(
            &at("endpoints"),
            "at least one endpoint is required (or `dns` / `dns_srv`)",
        )),
        _ => Err(src.error_at(
            &at(if svc.dns.is_some() { "dns" } else { "dns_srv" }),
            "use only one of `endpoints`, `dns` and `dns_srv`",
        )),
    }
}

/// Ranges serde cannot check.
fn check_resilience(
    svc: &ServiceSettings,
    src: &Source,
    at: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    let r = &svc.retry;
    if r.max_attempts == 0 {
        return Err(src.error_at(
            &at("retry.max_attempts"),
            "must be at least 1 (1 disables retries)",
        ));
    }
    if !(0.0..=10.0).contains(&r.budget.ratio) {
        return Err(src.error_at(&at("retry.budget.ratio"), "must be between 0 and 10"));
    }
    if r.backoff_base.get() > r.backoff_max.get() {
        return Err(src.error_at(&at("retry.backoff_base"), "must not exceed `backoff_max`"));
    }
    if svc.outlier_detection.max_ejection_percent > 100 {
        return Err(src.error_at(
            &at("outlier_detection.max_ejection_percent"),
            "must be 0..=100",
        ));
    }
    let f = &svc.failure_breaker;
    if !(0.0..=1.0).contains(&f.failure_ratio) {
        return Err(src.error_at(
            &at("failure_breaker.failure_ratio"),
            "must be between 0 and 1",
        ));
    }
    if f.half_open_requests == 0 {
        return Err(src.error_at(
            &at("failure_breaker.half_open_requests"),
            "must be at least 1",
        ));
    }
    if let Some(hc) = &svc.health_check
        && !hc.path.starts_with('/')
    {
        return Err(src.error_at(&at("health_check.path"), "must start with `/`"));
    }
    Ok(())
}

/// The key path of a TLS error: the block, or the setting in it that is at fault.
fn tls_key(block: &str, err: &tls::TlsError) -> String {
    match err.key() {
        Some(key) => format!("{block}.{key}"),
        None => block.to_owned(),
    }
}
