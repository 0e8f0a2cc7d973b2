//! What the cache reads from a request: whether it may use the shared cache at all, its own
//! `Cache-Control`, its primary key, and the request that RFC 9111's rules are evaluated
//! against.

use std::sync::Arc;

use gatehouse_common::identity;
use gatehouse_common::upstream::deadline::X_DEADLINE_MS;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Uri};

/// The primary key of a stored resource: route, host, path and query, exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct PrimaryKey {
    route: Arc<str>,
    host: Box<str>,
    target: Box<str>,
}

impl PrimaryKey {
    /// Bytes the key takes in the store, for its weight.
    pub(super) fn bytes(&self) -> usize {
        self.route.len() + self.host.len() + self.target.len()
    }

    pub(super) fn route(&self) -> &str {
        &self.route
    }
}

/// How a request may use the cache.
pub(super) enum Classified<'a> {
    /// Not GET or HEAD: the cache is not consulted and the response is untouched.
    Pass,
    /// GET or HEAD the cache must not answer nor store (credentials, conditions, ranges):
    /// passed upstream, answered with `x-cache: BYPASS`.
    Bypass(&'static str),
    Eligible(Ask<'a>),
}

/// A GET or HEAD the cache may answer.
pub(super) struct Ask<'a> {
    pub parts: &'a http::request::Parts,
    pub key: PrimaryKey,
    /// A HEAD: served from a GET entry without its body, never stored.
    pub head: bool,
    /// It carries credentials (allowed by the route): stored only if `public` or `s-maxage`.
    pub authorized: bool,
    /// `Cache-Control: no-store`: its response is not stored.
    pub no_store: bool,
    /// `Cache-Control: no-cache` or `Pragma: no-cache`: not answered from the store.
    pub no_cache: bool,
    target: PathAndQuery,
    host: Option<HeaderValue>,
}

/// Request headers that make the answer conditional or partial.
const CONDITIONS: [HeaderName; 6] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

impl<'a> Ask<'a> {
    pub(super) fn classify(
        parts: &'a http::request::Parts,
        host: Option<&str>,
        route: &Arc<str>,
        allow_authorized: bool,
    ) -> Classified<'a> {
        let head = match parts.method {
            Method::GET => false,
            Method::HEAD => true,
            _ => return Classified::Pass,
        };
        let h = &parts.headers;
        let authorized = has_credentials(h);
        if authorized && !allow_authorized {
            return Classified::Bypass("credentials");
        }
        if CONDITIONS.iter().any(|name| h.contains_key(name)) {
            return Classified::Bypass("conditional or range request");
        }
        let target = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let host = host.unwrap_or_default();
        let (no_store, no_cache) = directives(h);
        Classified::Eligible(Ask {
            parts,
            key: PrimaryKey {
                route: route.clone(),
                host: host.into(),
                target: target.as_str().into(),
            },
            head,
            authorized,
            no_store,
            no_cache,
            host: HeaderValue::from_str(host).ok(),
            target,
        })
    }

    /// The request the policy sees: a GET of the path and query, with the normalized host,
    /// the request's own `Cache-Control` and `Pragma`, a marker standing for its credentials
    /// (the policy's §3.5 rule needs only their presence, and the store need not keep them),
    /// and the headers the response varies on, with all their values. The same for the
    /// request that stored an entry and for each that looks it up, so the policy's own
    /// matching (URI, host, `Vary`) agrees with the store's, and HTTP/1 and HTTP/2 requests
    /// (origin-form and absolute URIs) share entries.
    pub(super) fn view(&self, vary: &[HeaderName]) -> http::request::Parts {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.uri = Uri::from(self.target.clone());
        let h = &mut parts.headers;
        if let Some(host) = &self.host {
            h.insert(header::HOST, host.clone());
        }
        for name in [header::CACHE_CONTROL, header::PRAGMA] {
            for value in self.parts.headers.get_all(&name) {
                h.append(name.clone(), value.clone());
            }
        }
        if self.authorized {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static("present"));
        }
        for name in vary {
            h.remove(name);
            for value in self.parts.headers.get_all(name) {
                h.append(name.clone(), value.clone());
            }
        }
        parts
    }
}

/// `Authorization`, `Cookie`, or an `x-gatehouse-*` identity claim (the deadline header is not
/// one: it says nothing about who asks).
fn has_credentials(h: &HeaderMap) -> bool {
    h.contains_key(header::AUTHORIZATION)
        || h.contains_key(header::COOKIE)
        || h.keys().any(|name| {
            let name = name.as_str();
            name.starts_with(identity::PREFIX) && name != X_DEADLINE_MS
        })
}

/// The request's `no-store` and `no-cache` (RFC 9111 §5.2.1; `Pragma: no-cache` counts only
/// without `Cache-Control`, §5.4).
fn directives(h: &HeaderMap) -> (bool, bool) {
    let no_store = has_directive(h, "no-store");
    let no_cache = has_directive(h, "no-cache")
        || (!h.contains_key(header::CACHE_CONTROL)
            && h.get_all(header::PRAGMA)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| {
                    v.split(',')
                        .any(|p| p.trim().eq_ignore_ascii_case("no-cache"))
                }));
    (no_store, no_cache)
}

/// Whether any `Cache-Control` value in `h` holds the directive `name` (with or without an
/// argument).
pub(super) fn has_directive(h: &HeaderMap, name: &str) -> bool {
    h.get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| {
            d.split('=')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(name)
        })
}
