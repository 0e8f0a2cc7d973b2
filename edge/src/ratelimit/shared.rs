//! A limit shared by every edge replica: its buckets live in Redis ([`RedisStore`]); when the
//! store does not answer, a local bucket with this replica's share of the quota decides, or
//! the request is refused, as the limit says.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use sha2::{Digest, Sha256};

use super::redis::{FallbackLabels, RateLimitMetrics, RedisStore};
use super::{Checked, LocalLimiter, Quota};
use crate::settings::OnStoreFailure;

/// Keys longer than this are stored as a digest (128 bits of SHA-256).
const MAX_KEY_BYTES: usize = 128;
const HEX: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
];

#[derive(Debug)]
pub struct SharedLimiter {
    quota: Quota,
    store: Arc<RedisStore>,
    /// `{key_prefix}{limit name}:`, made once.
    prefix: String,
    /// Microseconds per token, as the script takes it.
    interval_us: f64,
    on_failure: OnStoreFailure,
    /// This replica's share while the store is unavailable (`on_store_failure: local`).
    fallback: LocalLimiter,
    /// Checks decided without the store, this limit's series.
    fallbacks: Counter,
}

impl SharedLimiter {
    pub fn new(
        quota: Quota,
        store: Arc<RedisStore>,
        max_keys: u64,
        on_failure: OnStoreFailure,
        metrics: &RateLimitMetrics,
    ) -> Self {
        let s = store.settings();
        let prefix = format!("{}{}:", s.key_prefix, quota.name);
        // Rounded up: while Redis is away, the replicas together allow a little more than the
        // quota rather than less (failing open is the point of this mode).
        let share = |n: u64| n.div_ceil(u64::from(s.replicas)).max(1);
        let fallback = LocalLimiter::new(
            Quota {
                quota: share(quota.quota),
                burst: share(quota.burst),
                ..quota.clone()
            },
            max_keys,
        );
        let interval_us = quota.window.as_micros() as f64 / quota.quota.max(1) as f64;
        let decided_by = match on_failure {
            OnStoreFailure::Local => "local",
            OnStoreFailure::Deny => "deny",
        };
        let fallbacks = metrics
            .store_fallbacks
            .get_or_create(&FallbackLabels {
                limit: quota.name.clone(),
                decided_by,
            })
            .clone();
        SharedLimiter {
            prefix,
            interval_us,
            quota,
            store,
            on_failure,
            fallback,
            fallbacks,
        }
    }

    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The store this limit counts in (a reload keeps the limit only with the same store).
    pub fn store(&self) -> &Arc<RedisStore> {
        &self.store
    }

    pub async fn check(&self, key: &str) -> Checked {
        let mut bucket = String::with_capacity(self.prefix.len() + key.len().min(MAX_KEY_BYTES));
        bucket.push_str(&self.prefix);
        if key.len() <= MAX_KEY_BYTES {
            bucket.push_str(key);
        } else {
            // A client-chosen key (`header:<name>`) may be kilobytes: Redis gets its digest.
            bucket.push_str("sha256:");
            for b in &Sha256::digest(key.as_bytes())[..16] {
                bucket.push(HEX[usize::from(b >> 4)]);
                bucket.push(HEX[usize::from(b & 15)]);
            }
        }
        match self
            .store
            .take(&bucket, self.interval_us, self.quota.burst)
            .await
        {
            Ok(d) => Checked::Decided(d),
            Err(_) => {
                // The store logs its own state changes; a count per limit is enough here.
                self.fallbacks.inc();
                match self.on_failure {
                    OnStoreFailure::Local => Checked::Decided(self.fallback.check(key)),
                    OnStoreFailure::Deny => Checked::StoreUnavailable,
                }
            }
        }
    }
}
