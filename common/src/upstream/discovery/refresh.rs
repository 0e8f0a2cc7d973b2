//! The background task that keeps a DNS-discovered endpoint set fresh, and its timing rules.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::dns::{Answer, DnsError, DnsResolver};
use super::{Discovered, normalize};
use crate::error::chain;

/// A TTL shorter than this is re-resolved after this long (TTL 0 included).
pub(super) const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// A TTL longer than this is re-resolved after this long, so changes show within 5 minutes.
pub(super) const MAX_INTERVAL: Duration = Duration::from_secs(300);
/// The first retry after a failure; it doubles on each failure in a row.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The retry cap before any answer arrived and without `refresh`.
const RETRY_CAP_BEFORE_ANSWER: Duration = Duration::from_secs(30);

/// What is looked up.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// A and AAAA of `name`, on `port`.
    Ip { name: String, port: u16 },
    /// SRV of `name`.
    Srv { name: String },
}

impl Target {
    fn name(&self) -> &str {
        match self {
            Target::Ip { name, .. } | Target::Srv { name } => name,
        }
    }

    async fn resolve(&self, resolver: &DnsResolver) -> Result<Answer, DnsError> {
        match self {
            Target::Ip { name, port } => resolver.lookup_ip(name, *port).await,
            Target::Srv { name } => resolver.lookup_srv(name).await,
        }
    }
}

/// The time until the next resolution after an answer: the TTL clamped to
/// [`MIN_INTERVAL`]..=[`MAX_INTERVAL`], or `refresh` (itself at least 1s) when smaller.
pub(super) fn next_interval(ttl: Duration, refresh: Option<Duration>) -> Duration {
    let by_ttl = ttl.clamp(MIN_INTERVAL, MAX_INTERVAL);
    match refresh {
        Some(refresh) => by_ttl.min(refresh.max(MIN_INTERVAL)),
        None => by_ttl,
    }
}

/// Retry delays after failures: 1s, doubling, up to a cap.
#[derive(Debug)]
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Backoff { next: FIRST_RETRY }
    }

    /// The delay before the next retry, never above `cap` (nor below 1s).
    pub(super) fn next(&mut self, cap: Duration) -> Duration {
        let cap = cap.max(FIRST_RETRY);
        let wait = self.next.min(cap);
        self.next = (wait * 2).min(cap);
        wait
    }

    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

/// Resolves `target` until `stop`, publishing each new set on `tx`; keeps the last good set
/// through failures, warning once per failure streak.
pub(super) async fn run(
    target: Target,
    resolver: DnsResolver,
    refresh: Option<Duration>,
    tx: watch::Sender<Arc<[Discovered]>>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new();
    let mut last_interval = None;
    let mut failures = 0u32;
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = target.resolve(&resolver) => outcome,
        };
        let wait = match outcome {
            Ok(answer) => {
                if failures > 0 {
                    tracing::info!(
                        dns.name = target.name(),
                        failures,
                        "DNS discovery recovered"
                    );
                    failures = 0;
                }
                backoff.reset();
                publish(&tx, &target, normalize(answer.endpoints));
                let interval = next_interval(answer.ttl, refresh);
                last_interval = Some(interval);
                interval
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let error = chain(&error);
                let kept = tx.borrow().len();
                if failures == 1 {
                    tracing::warn!(dns.name = target.name(), error = %error, endpoints.kept = kept, "DNS discovery failed; keeping the last good endpoints");
                } else {
                    tracing::debug!(dns.name = target.name(), error = %error, failures, "DNS discovery still failing");
                }
                backoff.next(refresh.or(last_interval).unwrap_or(RETRY_CAP_BEFORE_ANSWER))
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends `set` if it differs from the current one.
fn publish(tx: &watch::Sender<Arc<[Discovered]>>, target: &Target, set: Arc<[Discovered]>) {
    let changed = tx.send_if_modified(|current| {
        if **current == *set {
            false
        } else {
            *current = set;
            true
        }
    });
    if changed {
        let endpoints = tx.borrow().len();
        tracing::info!(
            dns.name = target.name(),
            endpoints,
            "DNS discovery: endpoints changed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_follows_the_ttl_within_bounds_and_refresh() {
        let s = Duration::from_secs;
        assert_eq!(next_interval(s(0), None), s(1));
        assert_eq!(next_interval(s(30), None), s(30));
        assert_eq!(next_interval(s(86_400), None), s(300));
        assert_eq!(next_interval(s(30), Some(s(10))), s(10));
        assert_eq!(next_interval(s(5), Some(s(10))), s(5));
        assert_eq!(next_interval(s(5), Some(Duration::ZERO)), s(1));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let s = Duration::from_secs;
        let mut backoff = Backoff::new();
        let waits: Vec<_> = (0..6).map(|_| backoff.next(s(10))).collect();
        assert_eq!(waits, [s(1), s(2), s(4), s(8), s(10), s(10)]);
        backoff.reset();
        assert_eq!(backoff.next(s(10)), s(1));
        assert_eq!(backoff.next(Duration::ZERO), s(1));
    }
}
