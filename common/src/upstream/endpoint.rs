//! One upstream endpoint's live state: requests in flight, peak-EWMA latency, passive outlier
//! detection (ejection with growing back-off, half-open return) and active health.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Latency assumed for an endpoint with no measurement yet (linkerd's default is similar):
/// optimistic enough that new endpoints get traffic, pessimistic enough not to flood them.
const DEFAULT_RTT: Duration = Duration::from_millis(30);

/// How fast old latency observations fade (linkerd2-proxy's default): an endpoint that was slow
/// and got no traffic is tried again after tens of seconds.
const EWMA_DECAY: Duration = Duration::from_secs(10);

/// Process-wide time origin, so times fit in atomics as milliseconds/nanoseconds.
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn now_nanos() -> u64 {
    origin().elapsed().as_nanos() as u64
}

/// Converts a time from [`now_nanos`] scale back to an `Instant`.
pub fn instant_from_nanos(n: u64) -> Instant {
    origin() + Duration::from_nanos(n)
}

/// What the admin table shows for an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    Healthy,
    /// Ejected by outlier detection until a time.
    Ejected,
    /// Ejection expired: the next request is a probe.
    HalfOpen,
    /// Failing active health checks.
    Unhealthy,
}

impl EndpointState {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointState::Healthy => "healthy",
            EndpointState::Ejected => "ejected",
            EndpointState::HalfOpen => "half_open",
            EndpointState::Unhealthy => "unhealthy",
        }
    }
}

/// Live state of one endpoint. Shared by every request; updated with atomics only.
#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// `addr` as text, made once: the metric label.
    pub label: std::sync::Arc<str>,
    /// `addr` as a URI authority, made once: each attempt's URI shares it.
    pub authority: http::uri::Authority,
    pub weight: u32,
    /// Its metric series, found once (see [`crate::metrics::EndpointStats`]).
    pub stats: crate::metrics::EndpointStats,
    in_flight: AtomicUsize,
    /// Peak-EWMA round-trip estimate in nanoseconds, and when it was last updated.
    rtt_ns: AtomicU64,
    rtt_stamp: AtomicU64,
    consecutive_failures: AtomicU32,
    /// 0 when not ejected; otherwise the [`now_nanos`] time the ejection ends.
    ejected_until: AtomicU64,
    /// Ejections so far: the next ejection lasts `base * (ejections + 1)`.
    ejections: AtomicU32,
    /// Set when an ejection has expired and the endpoint has not yet proven itself.
    half_open: AtomicBool,
    healthy: AtomicBool,
}

impl Endpoint {
    pub fn new(addr: SocketAddr, weight: u32) -> Self {
        let text = addr.to_string();
        Endpoint {
            addr,
            // A socket address always prints as a valid authority (`[v6]:port` included).
            authority: http::uri::Authority::try_from(text.as_str())
                .expect("a socket address is an authority"),
            label: std::sync::Arc::from(text),
            weight: weight.max(1),
            stats: Default::default(),
            in_flight: AtomicUsize::new(0),
            rtt_ns: AtomicU64::new(DEFAULT_RTT.as_nanos() as u64),
            rtt_stamp: AtomicU64::new(now_nanos()),
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            half_open: AtomicBool::new(false),
            healthy: AtomicBool::new(true),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Marks a request as started; the guard ends it and must be given the outcome.
    pub fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn finish(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// The latency estimate now, decayed toward zero for the time since the last observation.
    pub fn ewma(&self) -> Duration {
        let rtt = self.rtt_ns.load(Ordering::Relaxed) as f64;
        let elapsed = now_nanos().saturating_sub(self.rtt_stamp.load(Ordering::Relaxed)) as f64;
        let decay = (-elapsed / EWMA_DECAY.as_nanos() as f64).exp();
        Duration::from_nanos((rtt * decay) as u64)
    }

    /// Records an observed latency: a higher value is taken at once (peak), a lower one blends
    /// in with a weight that grows with the time since the last observation.
    pub fn observe_rtt(&self, rtt: Duration) {
        let now = now_nanos();
        let sample = rtt.as_nanos() as f64;
        let prev = self.rtt_ns.load(Ordering::Relaxed) as f64;
        let elapsed = now.saturating_sub(self.rtt_stamp.load(Ordering::Relaxed)) as f64;
        let next = if sample > prev {
            sample
        } else {
            let decay = (-elapsed / EWMA_DECAY.as_nanos() as f64).exp();
            prev * decay + sample * (1.0 - decay)
        };
        // Two racing updates may lose one sample: harmless for an estimate, and lock-free.
        self.rtt_ns.store(next as u64, Ordering::Relaxed);
        self.rtt_stamp.store(now, Ordering::Relaxed);
    }

    /// The balancing cost: latency times load (peak-EWMA "least request"), per unit of weight.
    pub fn cost(&self) -> f64 {
        let rtt = self.ewma().as_nanos().max(1) as f64;
        rtt * (self.in_flight() as f64 + 1.0) / self.weight as f64
    }

    /// Whether requests may be sent here now (not ejected, not failing health checks).
    pub fn is_available(&self) -> bool {
        if !self.healthy.load(Ordering::Relaxed) {
            return false;
        }
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        if now_nanos() >= until {
            // Ejection over: let traffic probe it (half-open). One success closes it.
            self.half_open.store(true, Ordering::Relaxed);
            self.ejected_until.store(0, Ordering::Relaxed);
            return true;
        }
        false
    }

    pub fn state(&self) -> EndpointState {
        if !self.healthy.load(Ordering::Relaxed) {
            EndpointState::Unhealthy
        } else if self.ejected_until.load(Ordering::Relaxed) > now_nanos() {
            EndpointState::Ejected
        } else if self.half_open.load(Ordering::Relaxed)
            || self.ejected_until.load(Ordering::Relaxed) != 0
        {
            EndpointState::HalfOpen
        } else {
            EndpointState::Healthy
        }
    }

    /// When the current ejection ends, if ejected.
    pub fn ejected_until(&self) -> Option<Instant> {
        let until = self.ejected_until.load(Ordering::Relaxed);
        (until > now_nanos()).then(|| instant_from_nanos(until))
    }

    pub fn is_ejected(&self) -> bool {
        self.ejected_until().is_some()
    }

    /// Records a success: resets the failure streak; a half-open endpoint is trusted again.
    pub fn record_success(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        if self.half_open.swap(false, Ordering::Relaxed) {
            self.ejections.store(0, Ordering::Relaxed);
            tracing::info!(endpoint = %self.addr, "endpoint recovered");
        }
    }

    /// Records a failure (5xx, connect error, timeout). Returns true when the caller should
    /// eject this endpoint: the streak reached `threshold`, or a half-open probe failed.
    pub fn record_failure(&self, threshold: u32) -> bool {
        let streak = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        self.half_open.load(Ordering::Relaxed) || (threshold > 0 && streak >= threshold)
    }

    /// Ejects for `base * (previous ejections + 1)`, capped at `max`.
    pub fn eject(&self, base: Duration, max: Duration) -> Duration {
        let n = self.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let time = base.saturating_mul(n).min(max);
        self.ejected_until
            .store(now_nanos() + time.as_nanos() as u64, Ordering::Relaxed);
        self.half_open.store(false, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        time
    }

    /// Active health-check verdict.
    pub fn set_healthy(&self, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            tracing::info!(endpoint = %self.addr, healthy, "endpoint health changed");
        }
    }
}
