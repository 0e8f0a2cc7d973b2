//! The sidecar's own request phase: who may call the local app (inbound), and which mesh
//! services the app may reach by name (outbound).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::settings::SidecarSettings;
use gatehouse_common::body::ProxyBody;
use gatehouse_common::config::{ConfigError, Source};
use gatehouse_common::ctx::RequestCtx;
use gatehouse_common::filter::{Filter, FilterFuture};
use gatehouse_common::headers::is_grpc;
use gatehouse_common::respond::{grpc_response, problem_response};
use gatehouse_common::settings::ProxySettings;
use gatehouse_common::tls::{Policy, SpiffeId};
use http::{HeaderValue, Method, Response, StatusCode};

/// Header carrying the verified caller identity to the app.
pub const X_PEER: &str = "x-gatehouse-peer";

/// One compiled allow rule.
#[derive(Debug)]
struct Rule {
    prefix: String,
    methods: Vec<Method>,
    peers: Policy,
}

impl Rule {
    fn covers(&self, method: &Method, path: &str) -> bool {
        let path_ok = path.starts_with(&self.prefix)
            && matches!(path.as_bytes().get(self.prefix.len()), None | Some(b'/'));
        path_ok && (self.methods.is_empty() || self.methods.contains(method))
    }
}

/// The compiled `sidecar` section.
#[derive(Debug)]
pub struct SidecarPolicy {
    inbound: Arc<str>,
    outbound: Option<Arc<str>>,
    rules: Vec<Rule>,
    /// Service names the outbound side knows (for the 404 that lists them).
    known: BTreeSet<String>,
}

impl SidecarPolicy {
    /// Validates the `sidecar` section `s` of a config whose shared settings are `settings`.
    pub fn build(
        settings: &ProxySettings,
        s: &SidecarSettings,
        source: &Source,
    ) -> Result<Self, ConfigError> {
        check_listener(
            settings,
            source,
            "sidecar.inbound_listener",
            &s.inbound_listener,
        )?;
        if let Some(out) = &s.outbound_listener {
            check_listener(settings, source, "sidecar.outbound_listener", out)?;
        }
        Ok(SidecarPolicy {
            inbound: Arc::from(s.inbound_listener.as_str()),
            outbound: s.outbound_listener.as_deref().map(Arc::from),
            rules: rules(s, source)?,
            known: settings.services.keys().cloned().collect(),
        })
    }

    fn inbound(&self, ctx: &RequestCtx, parts: &mut http::request::Parts) -> Result<(), String> {
        let Some(peer) = ctx.peer_identity.as_deref() else {
            return Err("the caller presented no mesh identity".into());
        };
        let id = SpiffeId::parse(peer).map_err(|e| format!("invalid caller identity: {e}"))?;
        let rule = self
            .rules
            .iter()
            .find(|r| r.covers(&parts.method, parts.uri.path()))
            .ok_or_else(|| format!("no rule admits {} {}", parts.method, parts.uri.path()))?;
        rule.peers.check(&id).map_err(|_| {
            format!(
                "`{peer}` may not call {} {}",
                parts.method,
                parts.uri.path()
            )
        })?;
        if let Ok(v) = HeaderValue::try_from(peer) {
            parts.headers.insert(X_PEER, v);
        }
        Ok(())
    }

    fn outbound(&self, ctx: &RequestCtx, parts: &mut http::request::Parts) -> Result<(), String> {
        // The app does not speak for the mesh: identity comes from our certificate.
        parts.headers.remove(X_PEER);
        let host = ctx
            .authority
            .as_deref()
            .map(gatehouse_common::headers::host_of)
            .unwrap_or("");
        if self.known.contains(host) {
            return Ok(());
        }
        let known: Vec<&str> = self.known.iter().map(String::as_str).collect();
        Err(format!(
            "unknown service `{host}`; known services: {}",
            known.join(", ")
        ))
    }
}

impl Filter for SidecarPolicy {
    fn on_request<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        parts: &'a mut http::request::Parts,
    ) -> FilterFuture<'a> {
        let answer = if *ctx.listener == *self.inbound {
            self.inbound(ctx, parts)
                .map_err(|why| refuse(ctx, parts, StatusCode::FORBIDDEN, "peer-not-allowed", why))
        } else if self.outbound.as_deref() == Some(&*ctx.listener) {
            self.outbound(ctx, parts)
                .map_err(|why| refuse(ctx, parts, StatusCode::NOT_FOUND, "unknown-service", why))
        } else {
            Ok(())
        };
        if let Err(why) = &answer {
            tracing::info!(
                peer = ctx.peer_identity.as_deref().unwrap_or("-"),
                status = why.status().as_u16(),
                "sidecar refused the request"
            );
        }
        Box::pin(std::future::ready(answer))
    }
}

fn refuse(
    ctx: &RequestCtx,
    parts: &http::request::Parts,
    status: StatusCode,
    slug: &str,
    detail: String,
) -> Response<ProxyBody> {
    if is_grpc(&parts.headers) {
        let code = if status == StatusCode::FORBIDDEN {
            7
        } else {
            12
        };
        return grpc_response(code, &detail, &ctx.request_id);
    }
    let title = if status == StatusCode::FORBIDDEN {
        "Caller not allowed"
    } else {
        "Unknown service"
    };
    problem_response(
        status,
        slug,
        title,
        detail,
        &ctx.request_id,
        Some(&ctx.path),
    )
}

fn check_listener(
    settings: &ProxySettings,
    source: &Source,
    key: &str,
    name: &str,
) -> Result<(), ConfigError> {
    if settings.listeners.iter().any(|l| l.name == name) {
        return Ok(());
    }
    let names = settings.listeners.iter().map(|l| l.name.as_str());
    Err(source.error_at_hint(
        key,
        format!("no listener is named `{name}`"),
        gatehouse_common::config::did_you_mean_hint(name, names),
    ))
}

fn rules(s: &SidecarSettings, source: &Source) -> Result<Vec<Rule>, ConfigError> {
    if s.allow.is_empty() {
        return Err(source.error_at(
            "sidecar.allow",
            "at least one rule: the sidecar denies by default",
        ));
    }
    s.allow
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |k: &str| format!("sidecar.allow[{i}].{k}");
            let prefix = r.path_prefix.as_deref().unwrap_or("/");
            if !prefix.starts_with('/') {
                return Err(source.error_at(&at("path_prefix"), "must start with `/`"));
            }
            let methods = r
                .methods
                .iter()
                .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| source.error_at(&at("methods"), "not an HTTP method"))?;
            if r.peers.is_empty() {
                return Err(source.error_at(&at("peers"), "at least one SPIFFE ID"));
            }
            let peers = Policy::new(&s.trust_domain, Some(&r.peers))
                .map_err(|e| source.error_at(&at("peers"), gatehouse_common::error::chain(&e)))?;
            Ok(Rule {
                prefix: prefix.trim_end_matches('/').to_owned(),
                methods,
                peers,
            })
        })
        .collect()
}
