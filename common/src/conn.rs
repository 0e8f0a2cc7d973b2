//! What the request path knows about the downstream connection a request arrived on, and the
//! activity clock the server's idle and header-read timers read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
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
    h2: AtomicBool,
    /// HTTP/1 request bodies hyper is still reading (see [`crate::server`]'s parking).
    open_bodies: AtomicUsize,
    /// Requests hyper has handed to the service whose handling has not ended: counted from
    /// the moment hyper parses the head, before the handler's first poll (which may wait for
    /// an earlier response to be written, with pipelining).
    dispatched: AtomicUsize,
    /// A request body was dropped before its end: hyper may still be draining it, so the
    /// connection is never parked again.
    unparkable: AtomicBool,
    /// What the socket answered during the last poll of the HTTP/1 connection
    /// ([`IO_READ_PENDING`], [`IO_WRITE_PENDING`]).
    io: AtomicU8,
}

/// The last poll of the connection ended waiting for the client to send.
pub(crate) const IO_READ_PENDING: u8 = 1;
/// The last poll of the connection left bytes unwritten (the client reads slowly).
pub(crate) const IO_WRITE_PENDING: u8 = 2;

impl Default for ConnActivity {
    fn default() -> Self {
        ConnActivity {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            // A new connection owes us a request head: a silent client is cut at the timeout.
            head_since: AtomicU64::new(1),
            h2: AtomicBool::new(false),
            open_bodies: AtomicUsize::new(0),
            dispatched: AtomicUsize::new(0),
            unparkable: AtomicBool::new(false),
            io: AtomicU8::new(0),
        }
    }
}

impl ConnActivity {
    pub fn request_started(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        self.touch();
    }

    /// Called when bytes were read from the client. While a request is in flight the idle
    /// clock is stopped anyway, so only reads between requests read the clock.
    pub(crate) fn bytes_read(&self) {
        if self.active.load(Ordering::Relaxed) > 0 {
            return;
        }
        let ms = self.origin.elapsed().as_millis() as u64;
        if self.head_since.load(Ordering::Relaxed) == 0 {
            self.head_since.store(ms + 1, Ordering::Relaxed);
        }
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// The connection speaks HTTP/2: no header-read timer (h2 bounds its frames).
    pub(crate) fn set_h2(&self) {
        self.h2.store(true, Ordering::Relaxed);
    }

    /// An HTTP/1 request body hyper has not finished reading.
    pub(crate) fn body_opened(&self) {
        self.open_bodies.fetch_add(1, Ordering::Relaxed);
    }

    /// That body ended (`complete`), or was dropped before its end. Runs on whatever task
    /// polls the body: the release pairs with [`ConnActivity::parkable`]'s acquire, so a
    /// connection that sees the count drop also sees `unparkable`.
    pub(crate) fn body_closed(&self, complete: bool) {
        if !complete {
            self.unparkable.store(true, Ordering::Relaxed);
        }
        self.open_bodies.fetch_sub(1, Ordering::Release);
    }

    /// hyper handed a request to the service (see `dispatched`).
    pub(crate) fn request_dispatched(&self) {
        self.dispatched.fetch_add(1, Ordering::Relaxed);
    }

    /// Its handling ended (answered, or dropped).
    pub(crate) fn request_undispatched(&self) {
        self.dispatched.fetch_sub(1, Ordering::Release);
    }

    /// Records what the socket answered, for [`ConnActivity::parkable`].
    pub(crate) fn io_pending(&self, flag: u8) {
        let now = self.io.load(Ordering::Relaxed);
        if now & flag == 0 {
            self.io.store(now | flag, Ordering::Relaxed);
        }
    }

    /// Forgets what the socket answered: called before each poll of the connection.
    pub(crate) fn clear_io(&self) {
        self.io.store(0, Ordering::Relaxed);
    }

    /// Whether an HTTP/1 connection holds nothing but the socket: no request handed over, in
    /// flight or arriving, no request body being read, and its last poll ended waiting for the client
    /// with every byte written. hyper's state can then be dropped and rebuilt later.
    pub(crate) fn parkable(&self) -> bool {
        self.dispatched.load(Ordering::Acquire) == 0
            && self.open_bodies.load(Ordering::Acquire) == 0
            && self.active.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
            && !self.unparkable.load(Ordering::Relaxed)
            && self.io.load(Ordering::Relaxed) == IO_READ_PENDING
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
