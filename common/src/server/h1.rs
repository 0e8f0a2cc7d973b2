//! HTTP/1 connections that hold only their socket while idle: between requests hyper's
//! connection state (two 8 KiB buffers and its dispatcher) is dropped and rebuilt when the
//! client sends again, so an idle keep-alive connection costs a few hundred bytes, not 30 KiB.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use pin_project_lite::pin_project;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{ActivityIo, ReadReady, check_period};
use crate::conn::ConnInfo;
use crate::plan::Limits;

/// How long a connection waits between requests before it is parked: a client sending its
/// next request at once (keep-alive under load) never pays for rebuilding the state, and the
/// buffers go back to the allocator while they are still the newest (kept longer, they are
/// pinned by what other connections allocated meanwhile, and the process's RSS stays high).
const PARK_AFTER: Duration = Duration::from_millis(50);

/// Serves an HTTP/1 connection until it closes, idles out or is drained, parking it whenever
/// it waits between requests for longer than [`PARK_AFTER`].
pub(super) async fn serve<I, S>(
    mut io: ActivityIo<I>,
    conn: Arc<ConnInfo>,
    svc: S,
    limits: Limits,
    drain: CancellationToken,
    parked: Gauge,
) where
    I: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Clone + Unpin + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as Body>::Data: Send,
    <S::ResBody as Body>::Error: Into<crate::BoxError>,
    S::Error: Into<crate::BoxError>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper answers 431 itself past its buffer; keep that well above our own limit so clients
    // get our problem+json 431 in all but absurd cases.
    builder
        .timer(TokioTimer::new())
        // Our own header-read timer (see `ConnActivity`) replaces hyper's.
        .header_read_timeout(None)
        .max_buf_size((limits.max_header_bytes * 2).max(16 * 1024))
        // 512, not hyper's 100 (which would keep its parse array on the stack): each Gatehouse
        // hop adds about 7 fields, so a tier behind another must accept more than the first one
        // did (docs/configuration.md, `limits`).
        .max_headers(super::MAX_HEADER_FIELDS)
        .keep_alive(true);
    let mut closing = false;
    loop {
        // Boxed: the task keeps only a pointer to hyper's state, which parking frees.
        let mut served = Box::new(builder.serve_connection(TokioIo::new(io), svc.clone()));
        // Boxed (like `park` below): each is the task's state only part of the time.
        if !Box::pin(drive(&mut served, &conn, limits, &drain, &mut closing)).await {
            return;
        }
        // Taken apart in a block: the box, what is left of `Parts` (the service) and hyper's
        // read buffer (which `read_buf` shares) must not live on into the park below.
        let (hyper_io, read_buf) = {
            let served = served;
            let parts = served.into_parts();
            (parts.io, parts.read_buf)
        };
        io = hyper_io.into_inner();
        // What hyper read but did not parse yet (a pipelined head's first bytes) comes first,
        // copied so that the buffer it was read into is freed now. Line breaks before a head
        // are skipped, as hyper does (some clients send CRLF after a body).
        let unparsed = match read_buf.iter().position(|b| !matches!(b, b'\r' | b'\n')) {
            Some(start) => &read_buf[start..],
            None => &[],
        };
        io.replay = Bytes::copy_from_slice(unparsed);
        drop(read_buf);
        if !io.replay.is_empty() {
            // A head has started: its header-read timer runs from now.
            conn.activity.bytes_read();
            continue;
        }
        let woken = {
            let _counted = Counted::new(&parked);
            Box::pin(park(&io, &conn, limits, &drain)).await
        };
        if !woken {
            // Idle past the timeout, or draining: nothing is in flight, close.
            let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
            return;
        }
    }
}

/// Runs hyper's connection until it ends (`false`) or can be parked (`true`).
async fn drive<I, S>(
    served: &mut hyper::server::conn::http1::Connection<TokioIo<ActivityIo<I>>, S>,
    conn: &ConnInfo,
    limits: Limits,
    drain: &CancellationToken,
    closing: &mut bool,
) -> bool
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Unpin + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as Body>::Data: Send,
    <S::ResBody as Body>::Error: Into<crate::BoxError>,
    S::Error: Into<crate::BoxError>,
{
    let period = check_period(limits).min(PARK_AFTER);
    let mut check = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if *closing {
        Pin::new(&mut *served).graceful_shutdown();
    }
    loop {
        tokio::select! {
            // The connection first: the checks below read what its last poll left.
            biased;
            res = std::future::poll_fn(|cx| {
                conn.activity.clear_io();
                Pin::new(&mut *served).poll(cx)
            }) => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return false;
            }
            _ = drain.cancelled(), if !*closing => {
                *closing = true;
                Pin::new(&mut *served).graceful_shutdown();
            }
            _ = check.tick() => {
                if conn.activity.head_pending_for().is_some_and(|t| t >= limits.header_read_timeout) {
                    // Slowloris: drop the connection; there is no request to answer.
                    tracing::debug!("request head not complete within the header-read timeout");
                    return false;
                }
                let idle = conn.activity.idle_for();
                if !*closing && idle >= limits.idle_timeout {
                    tracing::debug!("closing idle connection");
                    *closing = true;
                    Pin::new(&mut *served).graceful_shutdown();
                } else if !*closing && idle >= PARK_AFTER && conn.activity.parkable() {
                    return true;
                }
            }
        }
    }
}

/// Waits, holding only the socket, until the client sends again (`true`), or the idle
/// timeout passes or the gateway drains (`false`).
async fn park<I: ReadReady>(
    io: &ActivityIo<I>,
    conn: &ConnInfo,
    limits: Limits,
    drain: &CancellationToken,
) -> bool {
    let left = limits.idle_timeout.saturating_sub(conn.activity.idle_for());
    tokio::select! {
        // An error is hyper's to report: it reads next.
        _ = std::future::poll_fn(|cx| io.inner.poll_read_ready(cx)) => true,
        _ = tokio::time::sleep(left) => {
            tracing::debug!("closing idle connection");
            false
        }
        _ = drain.cancelled() => false,
    }
}

/// A request hyper handed to the service, counted until its handling ends however it ends.
pub(crate) struct Dispatched(Arc<ConnInfo>);

impl Dispatched {
    pub(crate) fn new(conn: Arc<ConnInfo>) -> Self {
        conn.activity.request_dispatched();
        Dispatched(conn)
    }
}

impl Drop for Dispatched {
    fn drop(&mut self) {
        self.0.activity.request_undispatched();
    }
}

/// Counts a parked connection for as long as it lives, however its wait ends.
struct Counted<'a>(&'a Gauge);

impl<'a> Counted<'a> {
    fn new(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Counted(gauge)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pin_project! {
    /// An HTTP/1 request body that tells the connection when it has been read to its end: a
    /// connection is parked only between messages, never while hyper still reads a body.
    pub(crate) struct ExchangeBody {
        #[pin]
        inner: Incoming,
        open: BodyOpen,
    }
}

/// Set while the body is counted in the connection's open bodies; dropped before the body
/// ended, it marks the connection unparkable (hyper may still drain the rest).
struct BodyOpen(Option<Arc<ConnInfo>>);

impl BodyOpen {
    fn close(&mut self, complete: bool) {
        if let Some(conn) = self.0.take() {
            conn.activity.body_closed(complete);
        }
    }
}

impl Drop for BodyOpen {
    fn drop(&mut self) {
        self.close(false);
    }
}

impl ExchangeBody {
    /// `track`: the connection, for HTTP/1 (HTTP/2 connections are never parked).
    pub(crate) fn new(inner: Incoming, track: Option<Arc<ConnInfo>>) -> Self {
        let track = track.filter(|_| !inner.is_end_stream());
        if let Some(conn) = &track {
            conn.activity.body_opened();
        }
        ExchangeBody {
            inner,
            open: BodyOpen(track),
        }
    }
}

impl Body for ExchangeBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let res = this.inner.as_mut().poll_frame(cx);
        match &res {
            Poll::Ready(None) => this.open.close(true),
            Poll::Ready(Some(Err(_))) => this.open.close(false),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.open.close(true),
            _ => {}
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
