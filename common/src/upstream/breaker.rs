//! Circuit breaking per service: Envoy-style concurrency thresholds (answer 503 at once when
//! over), and a failure breaker that opens after consecutive failures or a failure ratio, then
//! lets a few probes through half-open before closing.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::window::Window;
use crate::config::Duration as ConfigDuration;

/// Concurrency limits of one service (Envoy's circuit-breaker thresholds).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Requests in flight to the service. Default 1024 (Envoy's default).
    pub max_requests: usize,
    /// Requests waiting for the upstream's response head. Default 1024.
    pub max_pending_requests: usize,
    /// Retries in flight at once. Default 3 (Envoy's default), so a struggling service is not
    /// hit by a retry storm.
    pub max_retries: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_requests: 1024,
            max_pending_requests: 1024,
            max_retries: 3,
        }
    }
}

/// When the failure breaker opens and how it recovers.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FailureBreakerSettings {
    /// Open after this many consecutive failures (5xx, connect error, timeout). Default 20;
    /// 0 disables this trigger.
    pub consecutive_failures: u32,
    /// Open when failures / requests over `window` reach this ratio. Default 0.5; 0 disables.
    pub failure_ratio: f64,
    /// Sliding window for the ratio. Default 10s.
    pub window: ConfigDuration,
    /// The ratio is judged only with at least this many requests in the window. Default 20.
    pub min_requests: u32,
    /// How long the breaker stays open before probing. Default 5s.
    pub cooldown: ConfigDuration,
    /// Probe requests let through half-open; that many successes close it. Default 3.
    pub half_open_requests: u32,
}

impl Default for FailureBreakerSettings {
    fn default() -> Self {
        FailureBreakerSettings {
            consecutive_failures: 20,
            failure_ratio: 0.5,
            window: ConfigDuration::from_secs(10),
            min_requests: 20,
            cooldown: ConfigDuration::from_secs(5),
            half_open_requests: 3,
        }
    }
}

/// Why a request was refused without trying the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overload {
    MaxRequests,
    MaxPending,
    BreakerOpen { retry_after: Duration },
}

/// Breaker state as shown on `/upstreams`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
/// The breaker of one service. Lock-free: every request touches it twice.
#[derive(Debug)]
pub struct Breaker {
    limits: LimitSettings,
    failure: FailureBreakerSettings,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) pending: AtomicUsize,
    pub(crate) retries: AtomicUsize,
    state: AtomicU8,
    /// When the breaker last opened, in the window's milliseconds ([`Window::now_ms`]).
    opened_at: AtomicU64,
    consecutive: AtomicU32,
    probes_sent: AtomicU32,
    probes_ok: AtomicU32,
    window: Window,
}

impl Breaker {
    pub fn new(limits: LimitSettings, failure: FailureBreakerSettings) -> Self {
        let window = Window::new(failure.window.get());
        Breaker {
            limits,
            failure,
            in_flight: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            retries: AtomicUsize::new(0),
            state: AtomicU8::new(CLOSED),
            opened_at: AtomicU64::new(0),
            consecutive: AtomicU32::new(0),
            probes_sent: AtomicU32::new(0),
            probes_ok: AtomicU32::new(0),
            window,
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            OPEN if self.cooldown_left().is_none() => BreakerState::HalfOpen,
            OPEN => BreakerState::Open,
            HALF_OPEN => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    fn cooldown_left(&self) -> Option<Duration> {
        let opened = self.opened_at.load(Ordering::Acquire);
        let cooldown = self.failure.cooldown.get().as_millis() as u64;
        let elapsed = self.window.now_ms().saturating_sub(opened);
        (elapsed < cooldown).then(|| Duration::from_millis(cooldown - elapsed))
    }

    /// Admits a request or says why not. An admitted request must end with [`Breaker::finish`].
    pub fn admit(&self) -> Result<(), Overload> {
        match self.state.load(Ordering::Acquire) {
            OPEN => match self.cooldown_left() {
                Some(left) => {
                    return Err(Overload::BreakerOpen {
                        retry_after: left.max(Duration::from_secs(1)),
                    });
                }
                None => {
                    // Cooldown over: the first request to notice moves us to half-open.
                    if self
                        .state
                        .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        self.probes_sent.store(0, Ordering::Release);
                        self.probes_ok.store(0, Ordering::Release);
                        tracing::info!("circuit breaker half-open: probing");
                    }
                    return self.admit();
                }
            },
            HALF_OPEN => {
                let sent = self.probes_sent.fetch_add(1, Ordering::AcqRel);
                if sent >= self.failure.half_open_requests.max(1) {
                    self.probes_sent.fetch_sub(1, Ordering::AcqRel);
                    return Err(Overload::BreakerOpen {
                        retry_after: Duration::from_secs(1),
                    });
                }
            }
            _ => {}
        }
        let n = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if n >= self.limits.max_requests {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Overload::MaxRequests);
        }
        Ok(())
    }

    /// A request is waiting for the upstream's response head; refused over the pending limit.
    pub fn enter_pending(&self) -> Result<(), Overload> {
        let n = self.pending.fetch_add(1, Ordering::AcqRel);
        if n >= self.limits.max_pending_requests {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Overload::MaxPending);
        }
        Ok(())
    }

    pub fn leave_pending(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// Takes a retry slot (concurrent retries are capped); false when none is free.
    pub fn try_retry(&self) -> bool {
        let n = self.retries.fetch_add(1, Ordering::AcqRel);
        if n >= self.limits.max_retries {
            self.retries.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    pub fn retry_done(&self) {
        self.retries.fetch_sub(1, Ordering::AcqRel);
    }

    /// Ends an admitted request with its outcome (`failed`: 5xx, connect error or timeout).
    pub fn finish(&self, failed: bool) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.window.add(1, u32::from(failed));
        match self.state.load(Ordering::Acquire) {
            HALF_OPEN => {
                if failed {
                    self.open("a half-open probe failed");
                } else {
                    let ok = self.probes_ok.fetch_add(1, Ordering::AcqRel) + 1;
                    if ok >= self.failure.half_open_requests.max(1)
                        && self
                            .state
                            .compare_exchange(
                                HALF_OPEN,
                                CLOSED,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok()
                    {
                        self.consecutive.store(0, Ordering::Release);
                        self.window.reset();
                        tracing::info!("circuit breaker closed: the service recovered");
                    }
                }
            }
            CLOSED => {
                if !failed {
                    self.consecutive.store(0, Ordering::Release);
                    return;
                }
                let streak = self.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
                let f = &self.failure;
                if f.consecutive_failures > 0 && streak >= f.consecutive_failures {
                    self.open("consecutive failures");
                } else if f.failure_ratio > 0.0 {
                    let (total, failures) = self.window.totals();
                    if total >= u64::from(f.min_requests)
                        && failures as f64 / total as f64 >= f.failure_ratio
                    {
                        self.open("failure ratio");
                    }
                }
            }
            _ => {}
        }
    }

    fn open(&self, why: &'static str) {
        self.opened_at
            .store(self.window.now_ms(), Ordering::Release);
        let prev = self.state.swap(OPEN, Ordering::AcqRel);
        if prev != OPEN {
            tracing::warn!(reason = why, cooldown = ?self.failure.cooldown.get(), "circuit breaker opened");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(consecutive: u32, cooldown_ms: u64) -> Breaker {
        Breaker::new(
            LimitSettings::default(),
            FailureBreakerSettings {
                consecutive_failures: consecutive,
                failure_ratio: 0.0,
                cooldown: ConfigDuration::from_millis(cooldown_ms),
                half_open_requests: 2,
                ..Default::default()
            },
        )
    }

    // The timed tests run on Tokio's paused clock: `advance` moves it at once, and nothing
    // else moves it, so a slow machine cannot make a cooldown end early or late.

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_recovers_half_open() {
        let b = breaker(3, 50);
        for _ in 0..3 {
            b.admit().expect("closed");
            b.finish(true);
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(matches!(b.admit(), Err(Overload::BreakerOpen { .. })));
        tokio::time::advance(Duration::from_millis(60)).await;
        b.admit().expect("probe 1");
        b.admit().expect("probe 2");
        assert!(b.admit().is_err(), "only two probes half-open");
        b.finish(false);
        b.finish(false);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens() {
        let b = breaker(1, 30);
        b.admit().expect("closed");
        b.finish(true);
        tokio::time::advance(Duration::from_millis(40)).await;
        b.admit().expect("probe");
        b.finish(true);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn ratio_trigger() {
        let b = Breaker::new(
            LimitSettings::default(),
            FailureBreakerSettings {
                consecutive_failures: 0,
                failure_ratio: 0.5,
                min_requests: 10,
                ..Default::default()
            },
        );
        for i in 0..10 {
            b.admit().expect("closed");
            b.finish(i % 2 == 1);
        }
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn concurrency_limits() {
        let b = Breaker::new(
            LimitSettings {
                max_requests: 2,
                max_pending_requests: 1,
                max_retries: 1,
            },
            FailureBreakerSettings::default(),
        );
        b.admit().expect("1");
        b.admit().expect("2");
        assert_eq!(b.admit(), Err(Overload::MaxRequests));
        b.enter_pending().expect("pending 1");
        assert_eq!(b.enter_pending(), Err(Overload::MaxPending));
        assert!(b.try_retry());
        assert!(!b.try_retry());
    }
}
