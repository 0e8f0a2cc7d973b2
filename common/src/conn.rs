//! What the request path knows about the downstream connection a request arrived on, and the
//! activity clock the server's idle and header-read timers read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What the pipeline knows about a downstream connection.
#[derive(Debug)]
pub struct ConnInfo {
    pub client_addr: SocketAddr,
    pub listener: Arc<str>,
    pub tls: bool,
    /// SPIFFE ID from the client certificate, on mTLS listeners.
    pub peer_identity: Option<Arc<str>>,
    pub activity: ConnActivity,
}

/// Tracks requests in flight and the bytes moving on one connection, for the idle timeout and
/// the header-read timeout.
///
/// hyper's own HTTP/1 header timer also runs while a keep-alive connection waits for its next
/// request, which would cut idle connections at the (short) header timeout; so both timeouts
/// are kept here: idle = nothing in flight and no bytes; header read = bytes of a request head
/// arrived (or the connection opened) and the head is not complete yet.
#[derive(Debug)]
pub struct ConnActivity {
    origin: Instant,
    last_ms: AtomicU64,
    active: AtomicUsize,
    /// When the current request head started arriving, as ms since `origin` plus one; 0 when
    /// no head is pending.
    head_since: AtomicU64,
    /// HTTP/2 (preface seen): heads arrive in frames, hyper and h2 bound them; no header timer.
    h2: std::sync::atomic::AtomicBool,
    first_read: std::sync::atomic::AtomicBool,
}

impl Default for ConnActivity {
    fn default() -> Self {
        ConnActivity {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            // A new connection owes us a request head: a silent client is cut at the timeout.
            head_since: AtomicU64::new(1),
            h2: std::sync::atomic::AtomicBool::new(false),
            first_read: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl ConnActivity {
    pub fn request_started(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        self.touch();
    }

    /// Called with each chunk read from the client.
    pub(crate) fn bytes_read(&self, chunk: &[u8]) {
        if !self.first_read.swap(true, Ordering::Relaxed) && chunk.starts_with(b"PRI * HTTP/2.0") {
            self.h2.store(true, Ordering::Relaxed);
        }
        if self.active.load(Ordering::Relaxed) == 0 && self.head_since.load(Ordering::Relaxed) == 0
        {
            let ms = self.origin.elapsed().as_millis() as u64;
            self.head_since.store(ms + 1, Ordering::Relaxed);
        }
        self.touch();
    }

    /// How long an HTTP/1 request head has been arriving without completing, if one is.
    pub fn head_pending_for(&self) -> Option<Duration> {
        if self.h2.load(Ordering::Relaxed) || self.active.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = self.head_since.load(Ordering::Relaxed);
        if since == 0 {
            return None;
        }
        let now = self.origin.elapsed().as_millis() as u64;
        Some(Duration::from_millis(now.saturating_sub(since - 1)))
    }

    pub fn request_finished(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        self.touch();
    }

    pub(crate) fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has been idle: zero while a request is in flight.
    pub fn idle_for(&self) -> Duration {
        if self.active.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let now = self.origin.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}
