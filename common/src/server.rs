//! The downstream HTTP server: accepts TCP (optionally TLS) and serves HTTP/1.1 and HTTP/2 on the
//! same port, with header-read and idle timeouts and graceful draining.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::conn::{ConnActivity, ConnInfo};
use crate::metrics::ListenerLabels;
use crate::plan::Limits;
use crate::proxy::Shared;

pin_project! {
    /// IO wrapper that marks the connection active whenever bytes move.
    struct ActivityIo<T> {
        #[pin]
        inner: T,
        conn: Arc<ConnInfo>,
    }
}

impl<T: AsyncRead> AsyncRead for ActivityIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.conn.activity.bytes_read(&buf.filled()[before..]);
        }
        res
    }
}

impl<T: AsyncWrite> AsyncWrite for ActivityIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.inner.poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.conn.activity.touch();
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.inner.poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.conn.activity.touch();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
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
    tcp: TcpStream,
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
    let tls = plan.listener(&listener).and_then(|l| l.tls.clone());
    drop(plan);
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
        Some(cfg) => {
            // Plaintext detection, handshake deadline and refusal logging (with `reason`).
            let Some(stream) =
                crate::tls::accept(cfg, tcp, peer, limits.tls_handshake_timeout).await
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
            serve_http(stream, conn, shared, limits, drain).await;
        }
    }
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
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper answers 431 itself past its buffer; keep that well above our own limit so clients
    // get our problem+json 431 in all but absurd cases.
    let h1_buf = (limits.max_header_bytes * 2).max(16 * 1024);
    builder
        .http1()
        .timer(TokioTimer::new())
        // Our own header-read timer (see `ConnActivity`) replaces hyper's.
        .header_read_timeout(None)
        .max_buf_size(h1_buf)
        .max_headers(512)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes * 2).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let svc_conn = conn.clone();
    let svc = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        let conn = svc_conn.clone();
        async move { Ok::<_, Infallible>(crate::proxy::handle(shared, conn, req).await) }
    });
    let io = TokioIo::new(ActivityIo {
        inner: io,
        conn: conn.clone(),
    });
    let served = builder.serve_connection(io, svc);
    tokio::pin!(served);
    let idle_timeout = limits.idle_timeout;
    let header_timeout = limits.header_read_timeout;
    let check_every = (idle_timeout.min(header_timeout) / 4).max(Duration::from_millis(10));
    let mut idle_check = tokio::time::interval(check_every);
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
                if conn.activity.head_pending_for().is_some_and(|t| t >= header_timeout) {
                    // Slowloris: drop the connection; there is no request to answer.
                    tracing::debug!("request head not complete within the header-read timeout");
                    break;
                }
                if !closing && conn.activity.idle_for() >= idle_timeout {
                    tracing::debug!("closing idle connection");
                    closing = true;
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
