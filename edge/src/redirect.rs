//! Plain-HTTP listeners that send clients to HTTPS (308, so methods and bodies are kept),
//! and the `Strict-Transport-Security` header that keeps browsers there.

use std::sync::Arc;

use crate::settings::{HstsSettings, HttpsRedirectSettings};
use gatehouse_common::body::ProxyBody;
use gatehouse_common::ctx::RequestCtx;
use gatehouse_common::headers::host_of;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::Authority;
use http::{Response, StatusCode};

use crate::reply::problem;

/// HTTP-01 challenges live here (RFC 8555 §8.3).
pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// The compiled `https_redirect` section.
#[derive(Debug, Clone)]
pub struct HttpsRedirect {
    pub listeners: Vec<Arc<str>>,
    pub https_port: u16,
    pub pass_acme_challenge: bool,
}

impl HttpsRedirect {
    pub fn new(s: &HttpsRedirectSettings) -> HttpsRedirect {
        HttpsRedirect {
            listeners: s.listeners.iter().map(|l| Arc::from(l.as_str())).collect(),
            https_port: s.https_port,
            pass_acme_challenge: s.pass_acme_challenge,
        }
    }

    /// Whether this request is answered with a redirect; `path` is the normalized path, so
    /// `/.well-known/acme-challenge/../admin` is not let through as a challenge.
    pub fn applies(&self, ctx: &RequestCtx, path: &str) -> bool {
        self.listeners.iter().any(|l| **l == *ctx.listener)
            && !(self.pass_acme_challenge && path.starts_with(ACME_CHALLENGE_PREFIX))
    }

    /// 308 to `https://HOST[:PORT]/PATH?QUERY` (the client's own target, unnormalized); 400
    /// when the request names no valid host.
    pub fn response(&self, ctx: &RequestCtx, parts: &Parts) -> Response<ProxyBody> {
        let host = ctx
            .authority
            .as_deref()
            .and_then(|a| a.parse::<Authority>().ok())
            .map(|a| host_of(a.as_str()).to_ascii_lowercase());
        let Some(host) = host.filter(|h| !h.is_empty()) else {
            return problem(
                ctx,
                StatusCode::BAD_REQUEST,
                "missing-host",
                "Bad request",
                "a Host header is needed to redirect to HTTPS",
            );
        };
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let location = match self.https_port {
            443 => format!("https://{host}{target}"),
            port => format!("https://{host}:{port}{target}"),
        };
        let Ok(location) = HeaderValue::try_from(location) else {
            return problem(
                ctx,
                StatusCode::BAD_REQUEST,
                "bad-request",
                "Bad request",
                "the request target cannot be redirected",
            );
        };
        let mut res = problem(
            ctx,
            StatusCode::PERMANENT_REDIRECT,
            "https-required",
            "HTTPS required",
            "this service is served over HTTPS only",
        );
        res.headers_mut().insert(header::LOCATION, location);
        res
    }
}

/// The `Strict-Transport-Security` value of `s`.
pub fn hsts_value(s: &HstsSettings) -> HeaderValue {
    let mut v = format!("max-age={}", s.max_age.get().as_secs());
    if s.include_subdomains {
        v.push_str("; includeSubDomains");
    }
    if s.preload {
        v.push_str("; preload");
    }
    HeaderValue::try_from(v).unwrap_or(HeaderValue::from_static("max-age=31536000"))
}
