//! A shared HTTP response cache for the internal gateway's route handlers: RFC 9111 with the
//! rules of a *shared* cache, opt-in per route, one byte budget for the whole binary.
//!
//! A route that opts in builds one [`RouteCache`] over the binary's one [`Store`] and calls
//! [`RouteCache::serve`] with the request and a `fetch` closure that makes the upstream call.
//! The caller keeps the `Arc<Store>` across config reloads, so entries and the budget outlive a
//! plan.
//!
//! # What is served and stored
//!
//! - **Methods.** Only GET and HEAD use the cache. Any other method goes straight to `fetch`:
//!   never stored, and its response is returned untouched (no `x-cache`: the cache was not
//!   consulted). A HEAD is answered from a stored GET entry (same head, no body), but a HEAD's
//!   own response is never stored: its head alone cannot answer a GET.
//! - **Freshness** comes only from the upstream's explicit `Cache-Control: s-maxage / max-age`
//!   or `Expires` (and `Age`), evaluated by `http-cache-semantics` as a shared cache with
//!   heuristic freshness 0: an API answer without explicit freshness is not stored, nor is one
//!   whose time to live is already zero (`max-age=0`, an `Age` past it, an `Expires` in the
//!   past). `Cache-Control: immutable` gives no freshness of its own here.
//! - **Never stored:** `no-store`; `private`; `no-cache` (it allows storing, but every reuse
//!   would need revalidation, which this cache does not do, so storing it is only cost);
//!   `proxy-revalidate` and `Pragma: no-cache` (zero freshness); `Vary: *` (and any `Vary`
//!   naming `*` or an invalid header); any `Set-Cookie` (even `public`: one client's cookie
//!   served to everyone is a leak); the header `x-gatehouse-partial` (an aggregate missing a
//!   part); responses over the route's `max_entry_bytes` (passed through whole, streaming).
//! - **Statuses stored:** 200, 203, 204, 301, 308, 404 and 410, each only with explicit
//!   freshness. These are the final answers about a resource in RFC 9110's list of
//!   heuristically cacheable statuses; its others (300, 405, 414, 501) describe the request
//!   rather than the resource, 206 needs range handling this cache does not have, and
//!   302/303/307 are temporary by definition. Errors (5xx) are never stored.
//! - **Key.** The route, the host, the path and the query, exactly as sent (GET and HEAD share
//!   the GET entry; no other method has entries). The route is in the key so that two routes
//!   matching the same URL (by a header condition, say) never answer for each other. Under
//!   that primary key live *variants*, one per combination of the values of the request
//!   headers the response's `Vary` names (RFC 9111 §4.1; all values, compared exactly); a new
//!   response replaces the variants its request would have matched, and a key keeps at most
//!   [`MAX_VARIANTS`].
//!
//! # Requests with credentials
//!
//! A request that carries `Authorization`, `Cookie` or any `x-gatehouse-*` identity header
//! (the deadline header aside; see `gatehouse_common::identity`) is answered with
//! `x-cache: BYPASS` and neither served from nor stored in the shared cache, unless the route
//! sets `allow_authorized: true`. Then such a request may be served a stored entry, and its
//! own response is stored only when it says `Cache-Control: public` or `s-maxage` (RFC 9111
//! §3.5: the origin declares the answer shareable). The caller's identity is *not* added to
//! the key: an upstream whose answer depends on who asks must say so with `Vary` (`Vary:
//! x-gatehouse-subject`, `Vary: Authorization`), which keys the variants by it, or not mark it
//! shareable. `Cookie` is treated as a credential too: it usually is one, and a miss costs less
//! than a leak.
//!
//! # Client directives
//!
//! - `Cache-Control: no-store`: a stored fresh entry may still answer (RFC 9111 §5.2.1.5 only
//!   forbids storing), but on a miss the response is fetched for this client alone and not
//!   stored.
//! - `Cache-Control: no-cache` (or `Pragma: no-cache`): never answered from the cache; goes
//!   upstream at once (no waiting on another request) and its response may be stored, which
//!   refreshes the entry.
//! - `max-age`, `min-fresh`, `max-stale`: evaluated by the policy. When they refuse an entry
//!   that is otherwise fresh, the request goes upstream at once and its response refreshes the
//!   entry. `max-age=0` therefore always goes upstream.
//! - Conditional (`If-None-Match`, `If-Modified-Since`, `If-Match`, `If-Unmodified-Since`,
//!   `If-Range`) and `Range` requests are passed to the upstream with `x-cache: BYPASS`: the
//!   cache answers neither 304 nor 206, and the upstream's 304/206 are not entries.
//!
//! # Answers
//!
//! Every answer to a GET or HEAD carries `x-cache`: `HIT` (from the store; it also carries
//! `Age`, in seconds, from the policy: the upstream's `Age` plus the time stored), `MISS` (it
//! went upstream; the upstream's headers as sent) or `BYPASS` (not eligible, as above). A
//! stored head has its hop-by-hop headers removed; a `MISS` is what `fetch` returned.
//!
//! # Concurrent misses
//!
//! Misses on one primary key make one upstream request: the first is the *leader*, the
//! others *follow* and wait for its outcome, at most the route's `max_wait` and never past the
//! request's deadline. Then a follower looks again: an entry the leader stored answers it as a
//! `HIT` (`x-cache` is `HIT` or `MISS`, no third value for a coalesced answer; the stats count
//! them as `coalesced`). It fetches for itself (a `MISS`) when the leader's response was not
//! stored (private, too large, an error status, an error), or its wait ran out. A leader's
//! *error* is not shared: each follower makes its own call, so a client never gets an answer
//! (or an error) made for another request; the upstream's breakers and retry budget are what
//! protect a failing service from that burst. When the leader stored a variant that does not
//! match a follower (another `Accept`), or was cancelled (its client went away), the follower
//! tries again to lead or follow, within the same wait. HEAD requests follow a GET leader but
//! never lead. A response goes to the leader as soon as its head is checked: followers wait
//! for the body only when it is being buffered to be stored.
//!
//! # The store
//!
//! [`Store`] is a `moka` cache (concurrent, sharded, already in the binary's graph through the
//! edge's rate limiter, built with the same features) bounded by `max_bytes` with a weigher
//! (body, header and key bytes) and strict LRU eviction, expiring each primary key when its
//! freshest variant goes stale. LRU rather than moka's default TinyLFU, which may refuse to
//! admit a new entry while full: a leader's fresh entry must be there for its followers. Its
//! loaders (`get_with`) are not used: they cannot express "do not store this, but let the
//! waiters fetch", nor bound a follower's wait, so coalescing is a small map of in-flight keys
//! here, and moka's synchronous API is enough (no I/O under its locks).

mod buffer;
mod entry;
mod request;
mod store;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_common::body::{ProxyBody, empty, full};
use gatehouse_common::config::{self, ByteSize};
use gatehouse_common::error::ProxyError;
use http::header::HeaderValue;
use http::{HeaderMap, Response};
use serde::{Deserialize, Serialize};

pub use buffer::{Fetched, buffer};
pub use store::{CacheStats, Store};

use request::{Ask, Classified};
use store::{Join, Lookup, Outcome, Waited};

/// The response header that says how an answer was made: `HIT`, `MISS` or `BYPASS`.
pub const X_CACHE: &str = "x-cache";
/// Set by the `aggregate` handler on an answer that lacks a part (the same name as its own
/// constant): such a response is never stored, whatever its `Cache-Control` says.
pub const X_PARTIAL: &str = "x-gatehouse-partial";
/// The most variants one primary key keeps; the oldest goes first. A `Vary` on a header with
/// many values (`User-Agent`) would otherwise grow one key without end, and every store on
/// that key copies its list of variants.
pub const MAX_VARIANTS: usize = 16;

/// A route's `cache` settings: present means the route opts in.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Whether requests with `Authorization`, `Cookie` or `x-gatehouse-*` identity headers may
    /// use the cache (served a stored entry; their own response stored only when `public` or
    /// `s-maxage`). Default false: such requests bypass it.
    pub allow_authorized: bool,
    /// How long a request waits for another request's in-flight miss on the same key before
    /// fetching for itself; never past the request's deadline. Default 5s. Each waiting
    /// request holds only a small task; the wait bounds how long one slow upstream answer
    /// delays the requests behind it.
    pub max_wait: config::Duration,
    /// The largest entry stored: body, headers, the varied request headers and 256 bytes of
    /// bookkeeping; larger responses stream through. Default 1MiB. A miss that may be stored buffers up to this many bytes before answering,
    /// so it is also the memory one in-flight miss may hold.
    pub max_entry_bytes: ByteSize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            allow_authorized: false,
            max_wait: config::Duration::from_secs(5),
            max_entry_bytes: ByteSize::mib(1),
        }
    }
}

/// The store's settings (the `internal.cache` section).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// The byte budget of every route's entries together (bodies, headers and keys); the least
    /// recently used entries are evicted past it. Default 64MiB.
    pub max_bytes: ByteSize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            max_bytes: ByteSize::mib(64),
        }
    }
}

/// A setting out of range: `key` is the setting's name under its section, for the caller to
/// turn into a config error at the right position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` {message}")]
pub struct SettingsError {
    pub key: &'static str,
    pub message: &'static str,
}

/// The largest entry the store can weigh (`moka` weights are `u32`).
const MAX_ENTRY_LIMIT: u64 = u32::MAX as u64;

impl CacheSettings {
    /// Refuses values that cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bytes = self.max_entry_bytes.get();
        if bytes == 0 {
            return Err(SettingsError {
                key: "max_entry_bytes",
                message: "must be at least 1 byte (nothing could be stored)",
            });
        }
        if bytes > MAX_ENTRY_LIMIT {
            return Err(SettingsError {
                key: "max_entry_bytes",
                message: "must be below 4GiB",
            });
        }
        Ok(())
    }
}

impl StoreSettings {
    /// Refuses values that cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.max_bytes.get() == 0 {
            return Err(SettingsError {
                key: "max_bytes",
                message: "must be at least 1 byte (nothing could be stored)",
            });
        }
        Ok(())
    }
}

/// One route's view of the shared store. Cheap to clone; build it once per route.
#[derive(Debug, Clone)]
pub struct RouteCache {
    store: Arc<Store>,
    route: Arc<str>,
    allow_authorized: bool,
    max_wait: Duration,
    max_entry_bytes: u64,
}

impl RouteCache {
    /// The cache of `route` over `store`, with the route's settings.
    pub fn new(store: Arc<Store>, route: impl Into<Arc<str>>, settings: &CacheSettings) -> Self {
        RouteCache {
            store,
            route: route.into(),
            allow_authorized: settings.allow_authorized,
            max_wait: settings.max_wait.get(),
            max_entry_bytes: settings.max_entry_bytes.get().min(MAX_ENTRY_LIMIT),
        }
    }

    /// The shared store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Answers `req` from the store, or calls `fetch` (at most once) and stores what it returns
    /// when the rules in the module docs allow.
    ///
    /// `host` is the host the client asked for (lower-case, without port: the handler
    /// request's `host`); `deadline` is the time left to answer (`Forward::remaining`), which
    /// bounds a wait on another request's miss. `fetch` returns the upstream response, either
    /// streaming (`Response<ProxyBody>`; buffered here only when it may be stored) or already
    /// in memory (`Response<Bytes>`). Its error is returned as is.
    pub async fn serve<F, Fut, R>(
        &self,
        req: &http::request::Parts,
        host: Option<&str>,
        deadline: Option<Duration>,
        fetch: F,
    ) -> Result<Response<ProxyBody>, ProxyError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<R, ProxyError>>,
        R: Into<Fetched>,
    {
        let ask = match Ask::classify(req, host, &self.route, self.allow_authorized) {
            Classified::Pass => return Ok(fetch().await?.into().into_response()),
            Classified::Bypass(reason) => {
                tracing::trace!(route = %self.route, reason, "cache bypassed");
                self.store.counters().bypass();
                let mut res = fetch().await?.into().into_response();
                mark(res.headers_mut(), XCache::Bypass);
                return Ok(res);
            }
            Classified::Eligible(ask) => ask,
        };
        if !ask.no_cache {
            match self.store.lookup(&ask) {
                Lookup::Hit(res) => return Ok(self.hit(res)),
                // A fresh entry this request's own directives refuse: go upstream now (waiting
                // for another miss would only bring an answer it refuses too).
                Lookup::Refused => return self.miss(&ask, fetch).await.map(|(res, _)| res),
                Lookup::Miss => {}
            }
        }
        if ask.no_cache || ask.no_store {
            return self.miss(&ask, fetch).await.map(|(res, _)| res);
        }
        let wait = deadline.map_or(self.max_wait, |d| d.min(self.max_wait));
        let until = tokio::time::Instant::now().checked_add(wait);
        loop {
            match self.store.join(&ask.key, !ask.head) {
                Join::Lead(leader) => {
                    return match self.miss(&ask, fetch).await {
                        Ok((res, outcome)) => {
                            leader.finish(outcome);
                            Ok(res)
                        }
                        Err(err) => {
                            // Followers make their own calls rather than share this error.
                            leader.finish(Outcome::NotStored);
                            Err(err)
                        }
                    };
                }
                Join::Follow(flight) => match store::wait(flight, until).await {
                    Waited::Stored | Waited::LeaderGone => match self.store.lookup(&ask) {
                        Lookup::Hit(res) => {
                            self.store.counters().coalesced();
                            return Ok(self.hit(res));
                        }
                        Lookup::Refused => break,
                        // Another variant was stored, or the leader went away: lead or follow
                        // again, within the same wait.
                        Lookup::Miss => {}
                    },
                    Waited::NotStored | Waited::TimedOut => break,
                },
                Join::Alone => break,
            }
        }
        self.miss(&ask, fetch).await.map(|(res, _)| res)
    }

    /// A stored entry's answer.
    fn hit(&self, hit: store::Hit) -> Response<ProxyBody> {
        self.store.counters().hit();
        let store::Hit { mut head, body } = hit;
        mark(&mut head.headers, XCache::Hit);
        let body = match body {
            Some(bytes) => full(bytes),
            None => empty(),
        };
        Response::from_parts(head, body)
    }

    /// Calls `fetch` and stores its response if the rules allow; the answer is marked `MISS`.
    async fn miss<F, Fut, R>(
        &self,
        ask: &Ask<'_>,
        fetch: F,
    ) -> Result<(Response<ProxyBody>, Outcome), ProxyError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<R, ProxyError>>,
        R: Into<Fetched>,
    {
        self.store.counters().miss();
        let fetched: Fetched = fetch().await?.into();
        let (mut res, outcome) = self.store.admit(ask, fetched, self.max_entry_bytes).await;
        mark(res.headers_mut(), XCache::Miss);
        Ok((res, outcome))
    }
}

/// The values of `x-cache`.
#[derive(Debug, Clone, Copy)]
enum XCache {
    Hit,
    Miss,
    Bypass,
}

fn mark(headers: &mut HeaderMap, how: XCache) {
    let value = match how {
        XCache::Hit => "HIT",
        XCache::Miss => "MISS",
        XCache::Bypass => "BYPASS",
    };
    headers.insert(X_CACHE, HeaderValue::from_static(value));
}
