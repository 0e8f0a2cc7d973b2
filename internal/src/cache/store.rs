//! The shared store: primary keys holding their variants in a byte-bounded `moka` cache, the
//! in-flight misses followers wait on, and the counters.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use gatehouse_common::body::{ProxyBody, full};
use http::Response;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use tokio::sync::watch;

use super::buffer::{Fetched, buffer};
use super::entry::{self, Answer, Variant};
use super::request::{Ask, PrimaryKey};
use super::{MAX_VARIANTS, StoreSettings};

pub(super) use super::entry::Hit;

/// Where the store reads the time for freshness (`http-cache-semantics` works in
/// `SystemTime`); tests move it by hand.
pub(super) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The response cache of a binary, shared by every route that opts in (through
/// [`super::RouteCache`]) and kept by the caller across config reloads.
pub struct Store {
    cache: Cache<PrimaryKey, Arc<Resource>>,
    flights: Mutex<HashMap<PrimaryKey, Arc<Flight>>>,
    counters: Arc<Counters>,
    max_bytes: u64,
    clock: Clock,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("max_bytes", &self.max_bytes)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A primary key's variants, newest first.
pub(super) struct Resource {
    variants: Box<[Arc<Variant>]>,
    /// Key and variant bytes: the moka weight.
    weight: u32,
    /// Until the freshest variant goes stale: the moka expiry.
    ttl: Duration,
}

impl Resource {
    fn new(key: &PrimaryKey, variants: Vec<Arc<Variant>>, now: SystemTime) -> Self {
        let weight = variants
            .iter()
            .fold(key.bytes() as u64, |sum, v| sum + u64::from(v.weight));
        let ttl = variants
            .iter()
            .map(|v| v.time_to_live(now))
            .max()
            .unwrap_or_default();
        Resource {
            variants: variants.into_boxed_slice(),
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
            ttl,
        }
    }
}

/// Expires a primary key when its freshest variant goes stale (stale entries are not served:
/// there is no revalidation), so its bytes are freed without waiting for LRU eviction.
struct FreshFor;

impl moka::Expiry<PrimaryKey, Arc<Resource>> for FreshFor {
    fn expire_after_create(
        &self,
        _key: &PrimaryKey,
        value: &Arc<Resource>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &PrimaryKey,
        value: &Arc<Resource>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The store's counters, since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answers from the store (`x-cache: HIT`), `coalesced` included.
    pub hits: u64,
    /// Eligible requests that went upstream (`x-cache: MISS`).
    pub misses: u64,
    /// GET/HEAD requests not eligible (`x-cache: BYPASS`).
    pub bypasses: u64,
    /// Hits of requests that waited for another request's miss.
    pub coalesced: u64,
    /// Responses stored.
    pub stores: u64,
    /// Primary keys evicted for the byte budget (not counting expiry).
    pub evictions: u64,
    /// Primary keys held now (approximate until the store's pending work has run).
    pub entries: u64,
    /// Bytes held now, by the store's weights (approximate likewise).
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bypasses: AtomicU64,
    coalesced: AtomicU64,
    stores: AtomicU64,
    evictions: AtomicU64,
}

impl Counters {
    pub(super) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn bypass(&self) {
        self.bypasses.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
    }
}

impl Store {
    /// An empty store with `settings`' budget. Share it as an `Arc` among every route's
    /// [`super::RouteCache`].
    pub fn new(settings: &StoreSettings) -> Store {
        Store::with_clock(settings, Arc::new(SystemTime::now))
    }

    pub(super) fn with_clock(settings: &StoreSettings, clock: Clock) -> Store {
        let counters = Arc::new(Counters::default());
        let evictions = counters.clone();
        let max_bytes = settings.max_bytes.get();
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_key: &PrimaryKey, value: &Arc<Resource>| value.weight)
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(FreshFor)
            .eviction_listener(move |_key, _value, cause| {
                if cause == RemovalCause::Size {
                    evictions.evictions.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Store {
            cache,
            flights: Mutex::new(HashMap::new()),
            counters,
            max_bytes,
            clock,
        }
    }

    /// The byte budget it was built with; a reload that changes it needs a new store.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Its counters and size.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            bypasses: c.bypasses.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
            stores: c.stores.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            entries: self.cache.entry_count(),
            bytes: self.cache.weighted_size(),
        }
    }

    /// Runs the store's pending evictions and expiries now (they otherwise run on later
    /// operations), so that [`Self::stats`] is exact.
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }

    pub(super) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The stored answer for `ask`, if any: the newest variant it selects.
    pub(super) fn lookup(&self, ask: &Ask<'_>) -> Lookup {
        let Some(resource) = self.cache.get(&ask.key) else {
            return Lookup::Miss;
        };
        let Some(variant) = resource
            .variants
            .iter()
            .find(|v| v.matches(&ask.parts.headers))
        else {
            return Lookup::Miss;
        };
        match variant.answer(ask, (self.clock)()) {
            Answer::Fresh(hit) => Lookup::Hit(hit),
            Answer::Refused => Lookup::Refused,
            Answer::Stale => Lookup::Miss,
        }
    }

    /// Stores `fetched` (buffering its body, up to `limit`) when the rules allow; returns the
    /// response to send on and whether it was stored.
    pub(super) async fn admit(
        &self,
        ask: &Ask<'_>,
        fetched: Fetched,
        limit: u64,
    ) -> (Response<ProxyBody>, Outcome) {
        // The head has arrived: freshness counts from now.
        let now = (self.clock)();
        let (status, headers) = fetched.head();
        let candidate = match entry::admissible(ask, status, headers, now) {
            Ok(candidate) => candidate,
            Err(reason) => {
                tracing::debug!(route = %ask.key.route(), reason, "response not stored");
                return (fetched.into_response(), Outcome::NotStored);
            }
        };
        let res = match fetched {
            Fetched::Buffered(res) => res,
            Fetched::Streaming(res) => match buffer(res, limit).await {
                Fetched::Buffered(res) => res,
                streaming => {
                    tracing::debug!(route = %ask.key.route(), "response not stored: larger than max_entry_bytes, or trailers, or failed");
                    return (streaming.into_response(), Outcome::NotStored);
                }
            },
        };
        match Variant::new(ask, candidate, &res, limit) {
            Ok(variant) => {
                self.insert(ask, variant, now);
                self.counters.stores.fetch_add(1, Ordering::Relaxed);
                (res.map(full), Outcome::Stored)
            }
            Err(reason) => {
                tracing::debug!(route = %ask.key.route(), reason, "response not stored");
                (res.map(full), Outcome::NotStored)
            }
        }
    }

    /// Adds `variant` under `ask`'s key, replacing the variants `ask` would have selected and
    /// dropping stale ones; atomic per key.
    fn insert(&self, ask: &Ask<'_>, variant: Variant, now: SystemTime) {
        let variant = Arc::new(variant);
        let key = &ask.key;
        self.cache.entry(key.clone()).and_compute_with(|old| {
            let mut variants = vec![variant];
            if let Some(old) = old {
                variants.extend(
                    old.into_value()
                        .variants
                        .iter()
                        .filter(|v| !v.matches(&ask.parts.headers))
                        .filter(|v| !v.time_to_live(now).is_zero())
                        .take(MAX_VARIANTS - 1)
                        .cloned(),
                );
            }
            Op::Put(Arc::new(Resource::new(key, variants, now)))
        });
    }

    /// Joins the in-flight miss on `key`, or starts one if `may_lead`.
    pub(super) fn join(&self, key: &PrimaryKey, may_lead: bool) -> Join<'_> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = flights.get(key) {
            return Join::Follow(flight.done.subscribe());
        }
        if !may_lead {
            return Join::Alone;
        }
        let flight = Arc::new(Flight {
            done: watch::channel(None).0,
        });
        flights.insert(key.clone(), flight.clone());
        Join::Lead(Leader {
            store: self,
            key: key.clone(),
            flight,
        })
    }
}

/// What a lookup found.
pub(super) enum Lookup {
    Hit(Hit),
    /// A fresh entry the request's own directives refuse.
    Refused,
    Miss,
}

/// How a leader's miss ended, for its followers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Stored,
    NotStored,
}

/// An in-flight miss: its followers watch `done`. Dropped with its leader, which closes the
/// channel: followers then know the leader went away.
struct Flight {
    done: watch::Sender<Option<Outcome>>,
}

pub(super) enum Join<'a> {
    /// This request makes the upstream call and reports how it ended.
    Lead(Leader<'a>),
    /// Another request is making it: wait with [`wait`].
    Follow(watch::Receiver<Option<Outcome>>),
    /// Nobody is making it, and this request may not lead (a HEAD).
    Alone,
}

/// The leader of a miss. Dropping it without [`Leader::finish`] (its request was cancelled)
/// tells the followers it went away.
pub(super) struct Leader<'a> {
    store: &'a Store,
    key: PrimaryKey,
    flight: Arc<Flight>,
}

impl Leader<'_> {
    /// Tells the followers how the miss ended; a stored entry is in the store by now.
    pub(super) fn finish(self, outcome: Outcome) {
        self.flight.done.send_replace(Some(outcome));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut flights = self
            .store
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if flights
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            flights.remove(&self.key);
        }
    }
}

/// How a follower's wait ended.
pub(super) enum Waited {
    Stored,
    NotStored,
    LeaderGone,
    TimedOut,
}

/// Waits for the leader's outcome until `until` (`None`: no bound).
pub(super) async fn wait(
    mut done: watch::Receiver<Option<Outcome>>,
    until: Option<tokio::time::Instant>,
) -> Waited {
    let outcome = async { done.wait_for(Option::is_some).await.map(|v| *v) };
    let outcome = match until {
        Some(until) => match tokio::time::timeout_at(until, outcome).await {
            Ok(outcome) => outcome,
            Err(_) => return Waited::TimedOut,
        },
        None => outcome.await,
    };
    match outcome {
        Ok(Some(Outcome::Stored)) => Waited::Stored,
        Ok(_) => Waited::NotStored,
        Err(_) => Waited::LeaderGone,
    }
}
