//! The downstream HTTP server: accepts TCP (optionally TLS) and serves HTTP/1.1 and HTTP/2 on the
//! same port, with header-read and idle timeouts and graceful draining.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::conn::{ConnActivity, ConnInfo, IO_READ_PENDING, IO_WRITE_PENDING};
use crate::metrics::ListenerLabels;
use crate::plan::Limits;
use crate::proxy::Shared;

mod h1;
pub mod proxy_protocol;
mod sniff;

/// Header fields an HTTP/1.1 head may carry, on our listeners and in upstream responses.
pub const MAX_HEADER_FIELDS: usize = 512;

pin_project! {
    /// IO wrapper that tells the connection's activity clock when bytes arrive and the parking
    /// logic when the socket is not ready, and replays bytes read ahead (the protocol sniff's,
    /// or hyper's unparsed input when a connection was parked).
    struct ActivityIo<T> {
        #[pin]
        inner: T,
        conn: Arc<ConnInfo>,
        replay: Bytes,
    }
}

impl<T> ActivityIo<T> {
    fn new(inner: T, conn: Arc<ConnInfo>) -> Self {
        ActivityIo {
            inner,
            conn,
            replay: Bytes::new(),
        }
    }
}

impl<T: AsyncRead> AsyncRead for ActivityIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay.split_to(n));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        match res {
            Poll::Pending => this.conn.activity.io_pending(IO_READ_PENDING),
            Poll::Ready(Ok(())) if buf.filled().len() > before => this.conn.activity.bytes_read(),
            Poll::Ready(_) => {}
        }
        res
    }
}

/// Marks a pending write for the parking logic: bytes may still sit in hyper's buffer.
fn write_pending<R>(conn: &ConnInfo, res: Poll<R>) -> Poll<R> {
    if res.is_pending() {
        conn.activity.io_pending(IO_WRITE_PENDING);
    }
    res
}

impl<T: AsyncWrite> AsyncWrite for ActivityIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        write_pending(this.conn, this.inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        write_pending(this.conn, this.inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        write_pending(this.conn, this.inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// A downstream stream whose socket can be waited on without reading: what a parked HTTP/1
/// connection waits on (see [`h1`]).
pub trait ReadReady {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl<T: ReadReady> ReadReady for Box<T> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_read_ready(cx)
    }
}

impl ReadReady for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
}

/// rustls decrypts every whole record a read brings, and hyper reads until the socket would
/// block, so once hyper waits, nothing is left inside the TLS session: the socket says when
/// more arrives.
impl ReadReady for tokio_rustls::server::TlsStream<TcpStream> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_ref().0.poll_read_ready(cx)
    }
}

/// A running accept loop.
#[derive(Debug)]
pub struct ListenerHandle {
    pub name: Arc<str>,
    pub local_addr: SocketAddr,
    /// Cancelled to stop accepting and drain this listener's connections.
    pub stop: CancellationToken,
}

/// Starts accepting on `listener`. Connections are tracked by `tracker` so shutdown can wait for
/// them; `stop` (a child of the process-wide drain token) closes this listener alone.
pub fn spawn_listener(
    listener: TcpListener,
    name: Arc<str>,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    stop: CancellationToken,
) -> io::Result<ListenerHandle> {
    let local_addr = listener.local_addr()?;
    let handle = ListenerHandle {
        name: name.clone(),
        local_addr,
        stop: stop.clone(),
    };
    let span = tracing::info_span!("listener", listener = %name, server.addr = %local_addr);
    let conns = tracker.clone();
    tracker.spawn(
        async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => break,
                    r = listener.accept() => r,
                };
                match accepted {
                    Ok((tcp, peer)) => {
                        let span = tracing::debug_span!("conn", client.addr = %peer);
                        conns.spawn(
                            serve_tcp(tcp, peer, name.clone(), shared.clone(), stop.clone())
                                .instrument(span),
                        );
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            tracing::info!("listener closed");
        }
        .instrument(span),
    );
    Ok(handle)
}

/// Decrements the open-connections gauge when the connection task ends, however it ends.
struct OpenConnGuard(prometheus_client::metrics::gauge::Gauge);

impl Drop for OpenConnGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn serve_tcp(
    mut tcp: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    shared: Arc<Shared>,
    drain: CancellationToken,
) {
    let gauge = shared
        .metrics
        .open_connections
        .get_or_create(&ListenerLabels {
            listener: listener.clone(),
        })
        .clone();
    gauge.inc();
    let _guard = OpenConnGuard(gauge);
    let _ = tcp.set_nodelay(true);
    // TLS settings and limits are read per connection, so a reload applies to new connections.
    let plan = shared.plan.load();
    let limits = plan.limits;
    let (tls, proxy) = match plan.listener(&listener) {
        Some(l) => (l.tls.clone(), l.proxy_protocol.clone()),
        None => (None, None),
    };
    drop(plan);
    let peer = match proxy {
        None => peer,
        Some(trusted) => match Box::pin(proxied_client(&mut tcp, peer, &trusted, limits)).await {
            Some(client) => client,
            None => return,
        },
    };
    match tls {
        None => {
            let conn = Arc::new(ConnInfo {
                client_addr: peer,
                listener,
                tls: false,
                peer_identity: None,
                activity: ConnActivity::default(),
            });
            serve_http(tcp, conn, shared, limits, drain).await;
        }
        // Boxed: a task is as large as its largest state, and plain connections should not
        // carry room for a handshake and a TLS session.
        Some(cfg) => Box::pin(serve_tls(cfg, tcp, peer, listener, shared, limits, drain)).await,
    }
}

/// The client a trusted balancer's PROXY protocol header names (the balancer itself for a
/// header that names none: its health checks); `None`, logged, when the connection is refused:
/// an untrusted peer, or no valid header in time.
async fn proxied_client(
    tcp: &mut TcpStream,
    peer: SocketAddr,
    trusted: &[proxy_protocol::IpNet],
    limits: Limits,
) -> Option<SocketAddr> {
    if !trusted.iter().any(|n| n.contains(peer.ip())) {
        tracing::info!(
            reason = "untrusted_proxy",
            client.addr = %peer,
            "connection refused: the listener takes PROXY protocol connections from its trusted balancers only"
        );
        return None;
    }
    match proxy_protocol::read_header(tcp, limits.tls_handshake_timeout).await {
        Ok(client) => Some(client.unwrap_or(peer)),
        Err(e) => {
            tracing::info!(reason = "proxy_protocol", client.addr = %peer, error = %e, "connection refused");
            None
        }
    }
}

/// The TLS handshake, then HTTP over the session.
async fn serve_tls(
    cfg: Arc<rustls::ServerConfig>,
    tcp: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    shared: Arc<Shared>,
    limits: Limits,
    drain: CancellationToken,
) {
    // Plaintext detection, handshake deadline and refusal logging (with `reason`); boxed, so
    // the handshake's state is freed once it is done.
    let Some(stream) = Box::pin(crate::tls::accept(
        cfg,
        tcp,
        peer,
        limits.tls_handshake_timeout,
    ))
    .await
    else {
        return;
    };
    let peer_identity = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(crate::tls::spiffe_id)
        .map(Arc::from);
    let conn = Arc::new(ConnInfo {
        client_addr: peer,
        listener,
        tls: true,
        peer_identity,
        activity: ConnActivity::default(),
    });
    // Boxed: the session (1.2 KiB) moves as a pointer through the task's states instead of
    // being copied into several of them.
    serve_http(Box::new(stream), conn, shared, limits, drain).await;
}

/// Serves HTTP/1.1 and HTTP/2 (detected from the preface) on one connection until it closes,
/// idles out, or `drain` asks it to finish gracefully.
pub async fn serve_http<I>(
    io: I,
    conn: Arc<ConnInfo>,
    shared: Arc<Shared>,
    limits: Limits,
    drain: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static,
{
    let mut io = ActivityIo::new(io, conn.clone());
    let Some(proto) = Box::pin(sniff::protocol(&mut io, limits, &drain)).await else {
        return;
    };
    let shared_metrics = shared.metrics.clone();
    let svc_conn = conn.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        let conn = svc_conn.clone();
        // HTTP/1 bodies are tracked so the connection is parked only between messages.
        let track = (req.version() < http::Version::HTTP_2).then(|| conn.clone());
        let req = req.map(|body| h1::ExchangeBody::new(body, track));
        // Counted now, not at the handler's first poll: hyper may hold this future unpolled
        // behind an earlier response (pipelining), and a parked connection would drop it.
        let dispatched = h1::Dispatched::new(conn.clone());
        async move {
            let _dispatched = dispatched;
            Ok::<_, Infallible>(crate::proxy::handle(shared, conn, req).await)
        }
    });
    match proto {
        sniff::Protocol::Http1 => {
            let parked = shared_metrics.parked_connections.clone();
            h1::serve(io, conn, svc, limits, drain, parked).await
        }
        sniff::Protocol::Http2 => {
            conn.activity.set_h2();
            Box::pin(serve_h2(io, conn, svc, limits, drain)).await
        }
    }
}

/// HTTP/2: one hyper connection for the connection's whole life (its HPACK tables and stream
/// state cannot be dropped between requests, unlike HTTP/1's).
async fn serve_h2<I, S>(
    io: ActivityIo<I>,
    conn: Arc<ConnInfo>,
    svc: S,
    limits: Limits,
    drain: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as http_body::Body>::Data: Send,
    <S::ResBody as http_body::Body>::Error: Into<crate::BoxError>,
    S::Error: Into<crate::BoxError>,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes * 2).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    // Boxed: inline, hyper's HTTP/2 state would size every connection task, HTTP/1 ones
    // parked with nothing else included.
    let mut served = Box::pin(builder.serve_connection(TokioIo::new(io), svc));
    let idle_timeout = limits.idle_timeout;
    let mut idle_check = tokio::time::interval(check_period(limits));
    idle_check.tick().await;
    let mut closing = false;
    loop {
        tokio::select! {
            res = served.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = drain.cancelled(), if !closing => {
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            _ = idle_check.tick() => {
                if !closing && conn.activity.idle_for() >= idle_timeout {
                    tracing::debug!("closing idle connection");
                    closing = true;
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// How often a busy connection checks its idle and header-read timeouts.
fn check_period(limits: Limits) -> Duration {
    (limits.idle_timeout.min(limits.header_read_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_millis(500))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what an async fn returns, from the fn item alone.
    fn future_size<F, A, B, C, D, E, R>(_: F) -> usize
    where
        F: FnOnce(A, B, C, D, E) -> R,
    {
        std::mem::size_of::<R>()
    }

    /// A connection's task is allocated at its largest state's size for the connection's whole
    /// life, parked or not: states only some connections pass through (TLS handshake, HTTP/2,
    /// a busy HTTP/1 exchange) are boxed. This budget keeps one from slipping back inline
    /// (HTTP/2 inline made every task 8.8 KiB).
    #[test]
    fn a_connection_task_stays_small() {
        let size = future_size(serve_tcp);
        assert!(size <= 2048, "serve_tcp's future is {size} bytes");
        let tls = future_size(serve_http::<Box<tokio_rustls::server::TlsStream<TcpStream>>>);
        assert!(tls <= 2048, "serve_http over TLS is {tls} bytes");
    }
}
