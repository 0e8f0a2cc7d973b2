//! Token-bucket rate limiting: a [`Limiter`] is in-process ([`LocalLimiter`]) or shared by
//! every edge replica through Redis ([`SharedLimiter`]); policies see one interface.
//!
//! [`LocalLimiter`] keeps one bucket per key in a bounded `moka` cache: a bucket idle for
//! longer than it takes to refill is evicted (a fresh bucket is full, so eviction changes
//! nothing), and at most `max_keys` buckets are kept.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

mod redis;
mod shared;

pub use self::redis::{RateLimitMetrics, RedisStore};
pub use self::shared::SharedLimiter;

/// A limit as the `RateLimit-Policy` header states it.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    /// The limit's name (the header's key).
    pub name: String,
    /// Tokens added per window.
    pub quota: u64,
    pub window: Duration,
    /// Bucket size.
    pub burst: u64,
}

impl Quota {
    /// Seconds for one token to come back.
    fn per_token(&self) -> f64 {
        self.window.as_secs_f64() / self.quota.max(1) as f64
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Tokens left after this request.
    pub remaining: u64,
    /// Until the bucket is full again (the `t` of the `RateLimit` header).
    pub reset: Duration,
    /// Until the next token (for `Retry-After` when refused).
    pub retry_after: Duration,
}

/// A rate limiter: takes one token from `key`'s bucket. An enum rather than a boxed trait
/// object: a local check stays a plain call, with no future to box.
#[derive(Debug, Clone)]
pub enum Limiter {
    Local(Arc<LocalLimiter>),
    Shared(Arc<SharedLimiter>),
}

/// The outcome of [`Limiter::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Checked {
    Decided(Decision),
    /// The shared store did not answer and the limit says `on_store_failure: deny`.
    StoreUnavailable,
}

impl Limiter {
    pub fn quota(&self) -> &Quota {
        match self {
            Limiter::Local(l) => &l.quota,
            Limiter::Shared(s) => s.quota(),
        }
    }

    pub async fn check(&self, key: &str) -> Checked {
        match self {
            Limiter::Local(l) => Checked::Decided(l.check(key)),
            Limiter::Shared(s) => s.check(key).await,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// An in-process limiter: one bucket per key, bounded and evicting idle buckets.
#[derive(Debug)]
pub struct LocalLimiter {
    quota: Quota,
    buckets: Cache<String, Arc<Mutex<Bucket>>>,
}

impl LocalLimiter {
    pub fn new(quota: Quota, max_keys: u64) -> Self {
        // Idle for a full refill: the bucket is full again, forgetting it is exact.
        let refill = Duration::from_secs_f64(quota.per_token() * quota.burst as f64);
        let buckets = Cache::builder()
            .max_capacity(max_keys)
            .time_to_idle(refill.max(Duration::from_secs(1)))
            .build();
        LocalLimiter { quota, buckets }
    }

    /// Buckets currently kept (after pending evictions run).
    pub fn len(&self) -> u64 {
        self.buckets.run_pending_tasks();
        self.buckets.entry_count()
    }

    /// Whether no bucket is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check_at(&self, key: &str, now: Instant) -> Decision {
        let burst = self.quota.burst as f64;
        let bucket = self.buckets.get_with_by_ref(key, || {
            Arc::new(Mutex::new(Bucket {
                tokens: burst,
                last: now,
            }))
        });
        let mut b = bucket.lock().unwrap_or_else(|e| e.into_inner());
        let per_token = self.quota.per_token();
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed / per_token).min(burst);
        b.last = now;
        let allowed = b.tokens >= 1.0;
        if allowed {
            b.tokens -= 1.0;
        }
        let missing = burst - b.tokens;
        Decision {
            allowed,
            remaining: b.tokens.floor() as u64,
            reset: Duration::from_secs_f64(missing * per_token),
            retry_after: Duration::from_secs_f64(((1.0 - b.tokens).max(0.0)) * per_token),
        }
    }
}

impl LocalLimiter {
    pub fn check(&self, key: &str) -> Decision {
        self.check_at(key, Instant::now())
    }
}

/// Whole seconds, rounded up (headers carry integers; 0 only when nothing is pending).
pub fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 { s + 1 } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> LocalLimiter {
        LocalLimiter::new(
            Quota {
                name: "t".into(),
                quota: 10,
                window: Duration::from_secs(1),
                burst: 20,
            },
            1000,
        )
    }

    #[test]
    fn burst_then_refill() {
        let l = limiter();
        let t0 = Instant::now();
        let passed = (0..100).filter(|_| l.check_at("a", t0).allowed).count();
        assert_eq!(passed, 20);
        let refused = l.check_at("a", t0);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(ceil_secs(refused.retry_after), 1);
        // Another key has its own bucket.
        assert!(l.check_at("b", t0).allowed);
        // 10 rps: 0.5 s later five tokens are back.
        let later = t0 + Duration::from_millis(500);
        let passed = (0..100).filter(|_| l.check_at("a", later).allowed).count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn memory_is_bounded() {
        let l = LocalLimiter::new(
            Quota {
                name: "t".into(),
                quota: 10,
                window: Duration::from_secs(1),
                burst: 20,
            },
            1000,
        );
        for i in 0..20_000 {
            l.check(&format!("k{i}"));
        }
        assert!(l.len() <= 1100, "{} buckets kept", l.len());
    }
}
