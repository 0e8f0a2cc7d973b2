//! What a route does with a matched request: proxy to a service, split across services,
//! redirect, answer directly, or hand it to a handler the binary offers (see
//! [`crate::handler`]: the internal gateway's orchestration plugs in there).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use rand::Rng;

use crate::body::{ProxyBody, full};
use crate::handler::HandlerService;
use crate::template::{ValueTemplate, Vars};
use crate::upstream::balance::HashKey;
use crate::upstream::service::Upstream;

/// A route's action.
#[derive(Debug)]
pub enum Action {
    /// Through the resilient upstream client of one service.
    Proxy(Arc<Upstream>),
    /// One service per request, by weight.
    Split(Split),
    Redirect(Redirect),
    DirectResponse(DirectResponse),
    /// A handler the binary offers, built for this route.
    Handler {
        kind: &'static str,
        service: HandlerService,
    },
}

impl Action {
    /// The name used by `/routes`: `proxy`, `split`, `redirect`, `direct_response`, or the
    /// handler's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Proxy(_) => "proxy",
            Action::Split(_) => "split",
            Action::Redirect(_) => "redirect",
            Action::DirectResponse(_) => "direct_response",
            Action::Handler { kind, .. } => kind,
        }
    }
}

/// A weighted split.
#[derive(Debug)]
pub struct Split {
    /// Services with their cumulative weight bound (exclusive).
    targets: Vec<(Arc<Upstream>, u64)>,
    total: u64,
    sticky: Option<HashKey>,
}

impl Split {
    /// `targets` with weights; their sum must be above 0.
    pub fn new(targets: Vec<(Arc<Upstream>, u32)>, sticky: Option<HashKey>) -> Self {
        let mut acc = 0u64;
        let targets = targets
            .into_iter()
            .map(|(s, w)| {
                acc += u64::from(w);
                (s, acc)
            })
            .collect();
        Split {
            targets,
            total: acc,
            sticky,
        }
    }

    /// Services and their weights, in order.
    pub fn targets(&self) -> impl Iterator<Item = (&Arc<Upstream>, u64)> {
        let mut prev = 0;
        self.targets.iter().map(move |(s, bound)| {
            let w = bound - prev;
            prev = *bound;
            (s, w)
        })
    }

    /// The service for a request: by the sticky key's hash when present, else at random.
    pub fn pick(&self, headers: &HeaderMap) -> &Arc<Upstream> {
        let point = match self.sticky.as_ref().and_then(|k| sticky_key(k, headers)) {
            Some(key) => mix(fnv1a(key)) % self.total,
            None => rand::rng().random_range(0..self.total),
        };
        self.pick_at(point)
    }

    /// The service whose weight range holds `point` (`0..total`).
    pub fn pick_at(&self, point: u64) -> &Arc<Upstream> {
        let i = self.targets.partition_point(|(_, bound)| *bound <= point);
        &self.targets[i.min(self.targets.len() - 1)].0
    }
}

fn sticky_key<'h>(key: &HashKey, h: &'h HeaderMap) -> Option<&'h [u8]> {
    match key {
        HashKey::Header(name) => h.get(name.as_str()).map(|v| v.as_bytes()),
        HashKey::Cookie(name) => crate::headers::cookies(h)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_bytes()),
    }
}

/// FNV-1a: stable across processes and versions, so every replica splits a user alike.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The murmur3 finalizer: spreads similar keys (`user-1`, `user-2`) over the whole range.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A redirect answer.
#[derive(Debug)]
pub struct Redirect {
    pub status: StatusCode,
    pub to: RedirectTo,
}

/// Where a redirect points.
#[derive(Debug)]
pub enum RedirectTo {
    /// A fixed URL or path (with placeholders).
    Location(ValueTemplate),
    /// The request's URL with parts replaced.
    Parts {
        scheme: Option<String>,
        host: Option<String>,
        port: Option<u16>,
        path: Option<ValueTemplate>,
        strip_query: bool,
    },
}

/// What the redirect needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct RequestUrl<'a> {
    /// `https` or `http`, as the client used it.
    pub scheme: &'a str,
    /// The authority the client asked for (with its port, if any).
    pub authority: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

impl Redirect {
    /// The `Location` for a request.
    pub fn location(&self, url: &RequestUrl<'_>, vars: &Vars<'_>) -> String {
        match &self.to {
            RedirectTo::Location(t) => t.render(vars),
            RedirectTo::Parts {
                scheme,
                host,
                port,
                path,
                strip_query,
            } => {
                let (req_host, req_port) =
                    crate::headers::split_host_port(url.authority.unwrap_or(""));
                let scheme_out = scheme.as_deref().unwrap_or(url.scheme);
                let host_out = host.as_deref().unwrap_or(req_host);
                // A new scheme or host drops the request's port unless `port` gives one.
                let port_out = match port {
                    Some(p) => Some(p.to_string()),
                    None if scheme.is_some() || host.is_some() => None,
                    None => req_port.map(str::to_owned),
                };
                let path_out = match path {
                    Some(t) => t.render(vars),
                    None => url.path.to_owned(),
                };
                let mut out = format!("{scheme_out}://{host_out}");
                if let Some(p) = port_out {
                    out.push(':');
                    out.push_str(&p);
                }
                out.push_str(&path_out);
                if !strip_query && let Some(q) = url.query {
                    out.push('?');
                    out.push_str(q);
                }
                out
            }
        }
    }

    /// The answer: the status, `Location`, an empty body.
    pub fn response(&self, url: &RequestUrl<'_>, vars: &Vars<'_>) -> Response<ProxyBody> {
        let mut res = Response::new(crate::body::empty());
        *res.status_mut() = self.status;
        match HeaderValue::try_from(self.location(url, vars)) {
            Ok(v) => {
                res.headers_mut().insert(header::LOCATION, v);
            }
            Err(_) => {
                tracing::warn!(
                    route = vars.route,
                    "redirect location is not a valid header value"
                );
                *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
        }
        res
    }
}

/// A fixed answer.
#[derive(Debug)]
pub struct DirectResponse {
    pub status: StatusCode,
    pub body: Bytes,
    pub content_type: Option<HeaderValue>,
}

impl DirectResponse {
    pub fn response(&self) -> Response<ProxyBody> {
        let mut res = Response::new(full(self.body.clone()));
        *res.status_mut() = self.status;
        if let Some(ct) = &self.content_type {
            res.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
        }
        res
    }
}
