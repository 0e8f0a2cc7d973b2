//! A lock-free sliding window of two counters (requests and failures, or requests and
//! retries), cut into ten buckets: what the failure breaker and the retry budget count over.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Number of buckets the window is cut into: the window slides in tenths.
const BUCKETS: usize = 10;

/// One slice of the window: which slice number it holds and its counts.
#[derive(Debug, Default)]
struct Bucket {
    epoch: AtomicU64,
    first: AtomicU32,
    second: AtomicU32,
}

/// Two counters over the last `window`.
#[derive(Debug)]
pub struct Window {
    /// Time zero of the slice numbers: when the window was made. Tokio's clock is the
    /// system's monotonic clock (`std::time::Instant`, the same cost) unless a test paused
    /// it; being per window, a test's paused clock never meets another test's origin.
    origin: Instant,
    bucket_ms: u64,
    buckets: [Bucket; BUCKETS],
}

impl Window {
    pub fn new(window: Duration) -> Self {
        Window {
            origin: Instant::now(),
            bucket_ms: (window.as_millis() as u64 / BUCKETS as u64).max(1),
            buckets: Default::default(),
        }
    }

    /// Milliseconds since the window was made.
    pub(crate) fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Adds to the current bucket, first emptying it if it held an older slice.
    pub fn add(&self, first: u32, second: u32) {
        let epoch = self.now_ms() / self.bucket_ms;
        let b = &self.buckets[(epoch % BUCKETS as u64) as usize];
        let old = b.epoch.load(Ordering::Acquire);
        if old != epoch
            && b.epoch
                .compare_exchange(old, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            b.first.store(0, Ordering::Release);
            b.second.store(0, Ordering::Release);
        }
        if first > 0 {
            b.first.fetch_add(first, Ordering::Relaxed);
        }
        if second > 0 {
            b.second.fetch_add(second, Ordering::Relaxed);
        }
    }

    /// Both counters summed over the window.
    pub fn totals(&self) -> (u64, u64) {
        let epoch = self.now_ms() / self.bucket_ms;
        self.buckets
            .iter()
            .filter(|b| epoch.saturating_sub(b.epoch.load(Ordering::Acquire)) < BUCKETS as u64)
            .fold((0, 0), |(f, s), b| {
                (
                    f + u64::from(b.first.load(Ordering::Relaxed)),
                    s + u64::from(b.second.load(Ordering::Relaxed)),
                )
            })
    }

    /// Empties the window.
    pub fn reset(&self) {
        for b in &self.buckets {
            b.first.store(0, Ordering::Release);
            b.second.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::time::advance;

    // On Tokio's paused clock: time moves only by `advance`, to the millisecond.

    #[tokio::test(start_paused = true)]
    async fn counts_leave_the_window_a_tenth_at_a_time() {
        // One second cut into ten buckets of 100ms.
        let w = Window::new(Duration::from_secs(1));
        w.add(1, 0);
        advance(Duration::from_millis(500)).await;
        w.add(1, 1);
        assert_eq!(w.totals(), (2, 1));
        // 999ms: the first count is still inside the window.
        advance(Duration::from_millis(499)).await;
        assert_eq!(w.totals(), (2, 1));
        // 1000ms: its bucket has slid out; the bucket is reused for the new count.
        advance(Duration::from_millis(1)).await;
        assert_eq!(w.totals(), (1, 1));
        w.add(0, 1);
        assert_eq!(w.totals(), (1, 2));
        // 1500ms: only the count made at 1000ms is left.
        advance(Duration::from_millis(500)).await;
        assert_eq!(w.totals(), (0, 1));
        // Idle for longer than the window: nothing is left.
        advance(Duration::from_secs(5)).await;
        assert_eq!(w.totals(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn reset_empties_every_bucket() {
        let w = Window::new(Duration::from_secs(1));
        for _ in 0..5 {
            w.add(2, 1);
            advance(Duration::from_millis(100)).await;
        }
        assert_eq!(w.totals(), (10, 5));
        w.reset();
        assert_eq!(w.totals(), (0, 0));
        w.add(1, 0);
        assert_eq!(w.totals(), (1, 0));
    }
}
