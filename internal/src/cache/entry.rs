//! One stored response (a *variant* of a primary key), and the rules that decide whether a
//! response may become one.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use http_cache_semantics::{BeforeRequest, CacheOptions, CachePolicy};

use super::X_PARTIAL;
use super::request::{Ask, has_directive};

/// The statuses stored (each only with explicit freshness); the module docs say why these.
const STORED_STATUSES: [u16; 7] = [200, 203, 204, 301, 308, 404, 410];

/// The response headers the policy reads (freshness, `Vary`); it is given only these, so the
/// store keeps the others once, in the variant's head.
const POLICY_HEADERS: [HeaderName; 6] = [
    header::CACHE_CONTROL,
    header::EXPIRES,
    header::DATE,
    header::AGE,
    header::PRAGMA,
    header::VARY,
];

/// Hop-by-hop headers (RFC 9110 §7.6.1), removed from a stored head with those `Connection`
/// names; `Age` is removed too, as each hit gets its own.
const NOT_STORED_HEADERS: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "age",
];

/// What the store's bookkeeping of one variant costs beyond its bytes (the policy, the
/// `Arc`, the list slot): an estimate, so that many tiny entries still count.
const VARIANT_OVERHEAD: usize = 256;

/// A response that passed the rules on its head: it is stored if its body fits.
pub(super) struct Candidate {
    vary: Box<[HeaderName]>,
    policy: CachePolicy,
    /// What the policy's own request and response heads hold.
    policy_bytes: usize,
}

/// The shared-cache options: heuristic freshness 0 (an API answer without explicit freshness
/// is not reused), and no default lifetime for `immutable` either.
fn options() -> CacheOptions {
    CacheOptions {
        shared: true,
        cache_heuristic: 0.0,
        immutable_min_time_to_live: Duration::ZERO,
        ignore_cargo_cult: false,
    }
}

/// Whether a response with this head, to `ask`, may be stored; `Err` says why not.
pub(super) fn admissible(
    ask: &Ask<'_>,
    status: StatusCode,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<Candidate, &'static str> {
    if ask.head {
        return Err("a HEAD response");
    }
    if ask.no_store {
        return Err("the request said no-store");
    }
    if !STORED_STATUSES.contains(&status.as_u16()) {
        return Err("status not stored");
    }
    if headers.contains_key(X_PARTIAL) {
        return Err("a partial aggregate");
    }
    if headers.contains_key(header::SET_COOKIE) {
        return Err("sets a cookie");
    }
    let vary = vary_names(headers).ok_or("varies on `*` or an invalid header")?;
    if ask.authorized && !has_directive(headers, "public") && !has_directive(headers, "s-maxage") {
        return Err("a request with credentials, and neither public nor s-maxage");
    }
    if has_directive(headers, "no-cache") {
        return Err("no-cache (reuse would need revalidation)");
    }
    let mut head = http::Response::new(()).into_parts().0;
    head.status = status;
    for name in &POLICY_HEADERS {
        for value in headers.get_all(name) {
            head.headers.append(name.clone(), value.clone());
        }
    }
    let view = ask.view(&vary);
    let policy_bytes = header_bytes(&view.headers) + header_bytes(&head.headers);
    let policy = CachePolicy::new_options(&view, &head, now, options());
    if !policy.is_storable() {
        return Err("not storable (no-store, private)");
    }
    if policy.time_to_live(now).is_zero() {
        return Err("no explicit freshness left");
    }
    Ok(Candidate {
        vary: vary.into_boxed_slice(),
        policy,
        policy_bytes,
    })
}

/// The header names `Vary` lists, lower-case and once each; `None` for `*` or a name that is
/// not a header name.
fn vary_names(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::VARY) {
        let value = value.to_str().ok()?;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return None;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Some(names)
}

/// One stored response.
pub(super) struct Variant {
    /// The request headers the response varies on, with the storing request's values.
    vary: Box<[(HeaderName, Box<[HeaderValue]>)]>,
    vary_names: Box<[HeaderName]>,
    policy: CachePolicy,
    status: StatusCode,
    version: http::Version,
    headers: HeaderMap,
    body: Bytes,
    pub weight: u32,
}

impl Variant {
    /// The variant for `res`, or `Err` when it weighs more than `limit` bytes.
    pub(super) fn new(
        ask: &Ask<'_>,
        candidate: Candidate,
        res: &http::Response<Bytes>,
        limit: u64,
    ) -> Result<Variant, &'static str> {
        let mut headers = res.headers().clone();
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
        for name in NOT_STORED_HEADERS {
            headers.remove(name);
        }
        // The stored body is whole, so its length is known, and a HEAD answered from it should
        // say it (RFC 9110 §9.3.2) even when the upstream streamed it without one. A 204 has
        // none (§8.6).
        if res.status() != StatusCode::NO_CONTENT {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(res.body().len()));
        }
        let vary: Box<[(HeaderName, Box<[HeaderValue]>)]> = candidate
            .vary
            .iter()
            .map(|name| {
                let values = ask.parts.headers.get_all(name).iter().cloned().collect();
                (name.clone(), values)
            })
            .collect();
        let vary_bytes: usize = vary
            .iter()
            .map(|(n, vs)| n.as_str().len() + vs.iter().map(HeaderValue::len).sum::<usize>())
            .sum();
        let weight = res.body().len()
            + header_bytes(&headers)
            + vary_bytes
            + candidate.policy_bytes
            + VARIANT_OVERHEAD;
        if weight as u64 > limit {
            return Err("larger than max_entry_bytes");
        }
        Ok(Variant {
            vary,
            vary_names: candidate.vary,
            policy: candidate.policy,
            status: res.status(),
            version: res.version(),
            headers,
            body: res.body().clone(),
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
        })
    }

    /// Whether a request with `headers` selects this variant: every header named by `Vary`
    /// has the same values, in the same order, as in the request that stored it.
    pub(super) fn matches(&self, headers: &HeaderMap) -> bool {
        self.vary
            .iter()
            .all(|(name, values)| headers.get_all(name).iter().eq(values.iter()))
    }

    /// The time left before it goes stale.
    pub(super) fn time_to_live(&self, now: SystemTime) -> Duration {
        self.policy.time_to_live(now)
    }

    /// Answers `ask` (which [`Self::matches`]) if the policy allows it now.
    pub(super) fn answer(&self, ask: &Ask<'_>, now: SystemTime) -> Answer {
        // The policy evaluates freshness and the request's `max-age`, `min-fresh`, `max-stale`;
        // its head copy is of the few policy headers only.
        match self.policy.before_request(&ask.view(&self.vary_names), now) {
            BeforeRequest::Fresh(_) => {
                let mut head = http::Response::new(()).into_parts().0;
                head.status = self.status;
                head.version = self.version;
                head.headers = self.headers.clone();
                head.headers.insert(
                    header::AGE,
                    HeaderValue::from(self.policy.age(now).as_secs()),
                );
                let body = match ask.head {
                    true => None,
                    false => Some(self.body.clone()),
                };
                Answer::Fresh(Hit { head, body })
            }
            BeforeRequest::Stale { .. } if !self.time_to_live(now).is_zero() => Answer::Refused,
            BeforeRequest::Stale { .. } => Answer::Stale,
        }
    }
}

/// What a stored variant says to a request.
pub(super) enum Answer {
    Fresh(Hit),
    /// Fresh, but the request's directives (`max-age`, `min-fresh`) refuse it.
    Refused,
    Stale,
}

/// A stored answer: its head (with `Age`) and, for a GET, its body.
pub(super) struct Hit {
    pub head: http::response::Parts,
    pub body: Option<Bytes>,
}

/// An estimate of what a header map holds: names, values and 32 bytes each (RFC 7541's
/// per-entry overhead, close to the map's own bookkeeping).
fn header_bytes(h: &HeaderMap) -> usize {
    h.iter().map(|(n, v)| n.as_str().len() + v.len() + 32).sum()
}
