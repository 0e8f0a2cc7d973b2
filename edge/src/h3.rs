//! HTTP/3 for the edge: a QUIC endpoint on the UDP port of every TLS listener, feeding the same
//! proxy pipeline ([`gatehouse_common::proxy::handle`]) as the TCP listeners.
//!
//! The endpoint reuses the listener's rustls config (certificate resolver and client
//! verifier, so certificate reloads and mTLS apply) with ALPN `h3`; QUIC itself allows only
//! TLS 1.3. TCP responses of a listener with a running endpoint advertise it with `Alt-Svc`
//! (see [`AltSvc`]). Endpoints are bound once at start; on shutdown they refuse new connections,
//! send GOAWAY on the open ones and are drained with the TCP listeners (`drain_timeout`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use gatehouse_common::conn::{ConnActivity, ConnInfo};
use gatehouse_common::proxy::{Shared, handle};
use gatehouse_common::runtime::{Running, StartError};
use gatehouse_common::tls::ALPN_H3;
use h3::server::RequestStream;
use http::header::{CONNECTION, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderName, HeaderValue, Request, Response, Version};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use gatehouse_common::error::chain;

/// `Alt-Svc` values by listener name, set once the listener's QUIC endpoint is bound.
#[derive(Debug, Default)]
pub struct AltSvc(RwLock<HashMap<Arc<str>, HeaderValue>>);

impl AltSvc {
    /// The `Alt-Svc` value for TCP responses of `listener`, if it serves HTTP/3.
    pub fn get(&self, listener: &str) -> Option<HeaderValue> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(listener)
            .cloned()
    }

    fn set(&self, listener: Arc<str>, port: u16) {
        let value = HeaderValue::from_str(&format!("h3=\":{port}\"; ma=86400"))
            .expect("Alt-Svc value is ASCII");
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(listener, value);
    }
}

/// Binds a QUIC endpoint on the bound address of every TLS listener and serves HTTP/3 on it
/// until `running` shuts down. Returns the endpoints' addresses by listener name.
pub async fn start(
    running: &Running,
    alt_svc: &AltSvc,
) -> Result<Vec<(Arc<str>, SocketAddr)>, StartError> {
    let shared = running.shared().clone();
    let plan = shared.plan.load_full();
    let mut out = Vec::new();
    for l in &plan.listeners {
        let Some(tls) = &l.tls else { continue };
        let Some(addr) = running.addr(&l.name).await else {
            continue;
        };
        let bind_err = |source: std::io::Error| StartError::Bind {
            name: l.name.to_string(),
            addr,
            source,
        };
        let mut tls = (**tls).clone();
        tls.alpn_protocols = ALPN_H3.iter().map(|p| p.to_vec()).collect();
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| bind_err(std::io::Error::other(e)))?;
        let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let endpoint = quinn::Endpoint::server(config, addr).map_err(bind_err)?;
        let local = endpoint.local_addr().map_err(bind_err)?;
        tracing::info!(listener = %l.name, address = %local, "HTTP/3 listening");
        alt_svc.set(l.name.clone(), local.port());
        out.push((l.name.clone(), local));
        let (tracker, stop) = (running.tracker(), running.shutdown_token());
        tokio::spawn(accept_loop(
            endpoint.clone(),
            shared.clone(),
            l.name.clone(),
            tracker.clone(),
            stop.clone(),
        ));
        let running = running.clone();
        tokio::spawn(async move {
            // Drain like the TCP listeners: refuse new connections, let every connection
            // finish its requests after a GOAWAY (in `serve_conn`), then close what is left
            // once the runtime's drain is over (done, or `drain_timeout` passed).
            stop.cancelled().await;
            endpoint.set_server_config(None);
            running.wait().await;
            endpoint.close(0u32.into(), b"shutting down");
        });
    }
    Ok(out)
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    listener: Arc<str>,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    while let Some(incoming) = endpoint.accept().await {
        if stop.is_cancelled() {
            incoming.refuse();
            continue;
        }
        let client_addr = incoming.remote_address();
        let conn = Arc::new(ConnInfo {
            client_addr,
            listener: listener.clone(),
            tls: true,
            peer_identity: None,
            activity: ConnActivity::default(),
        });
        let (shared, requests, stop) = (shared.clone(), tracker.clone(), stop.clone());
        tracker.spawn(async move {
            let quic = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(client = %client_addr, error = %chain(&e), "QUIC handshake failed");
                    return;
                }
            };
            if let Err(e) = serve_conn(quic, shared, conn, requests, stop).await
                && !e.is_h3_no_error()
            {
                tracing::debug!(client = %client_addr, error = %chain(&e), "HTTP/3 connection ended");
            }
        });
    }
}

/// Serves one connection's requests (each on the drain tracker). When the shutdown begins it
/// sends GOAWAY (RFC 9114 §5.2) and keeps serving the requests already accepted.
async fn serve_conn(
    quic: quinn::Connection,
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    tracker: TaskTracker,
    stop: CancellationToken,
) -> Result<(), h3::error::ConnectionError> {
    // No grease: aioquic (Python's HTTP/3 client) drops the end of a response stream whose
    // last frame is a reserved one, and hangs waiting for it.
    let mut h3 = h3::server::builder()
        .send_grease(false)
        .build::<_, Bytes>(h3_quinn::Connection::new(quic))
        .await?;
    let mut going_away = false;
    loop {
        let accepted = if going_away {
            h3.accept().await?
        } else {
            tokio::select! {
                a = h3.accept() => a?,
                () = stop.cancelled() => {
                    going_away = true;
                    h3.shutdown(0).await?;
                    continue;
                }
            }
        };
        let Some(resolver) = accepted else { break };
        let shared = shared.clone();
        let conn = conn.clone();
        tracker.spawn(async move {
            let client = conn.client_addr;
            let result = match resolver.resolve_request().await {
                Ok((req, stream)) => serve_request(req, stream, shared, conn).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result
                && !e.is_h3_no_error()
            {
                tracing::debug!(client = %client, error = %chain(&e), "HTTP/3 request failed");
            }
        });
    }
    Ok(())
}

/// Headers that are connection-specific in HTTP/1.1 and malformed in HTTP/3 (RFC 9114 §4.2).
const HOP_BY_HOP: [&str; 2] = ["keep-alive", "proxy-connection"];

async fn serve_request(
    req: Request<()>,
    stream: RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
) -> Result<(), h3::error::StreamError> {
    let (mut send, recv) = stream.split();
    let (mut parts, ()) = req.into_parts();
    parts.version = Version::HTTP_3;
    let req = Request::from_parts(
        parts,
        RecvBody {
            stream: recv,
            data_done: false,
        },
    );
    let (mut parts, mut body) = handle(shared, conn, req).await.into_parts();
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        parts.headers.remove(name);
    }
    for name in HOP_BY_HOP {
        parts.headers.remove(HeaderName::from_static(name));
    }
    send.send_response(Response::from_parts(parts, ())).await?;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "response body failed; resetting the HTTP/3 stream");
                send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
                return Ok(());
            }
        };
        match frame.into_data() {
            Ok(data) if data.is_empty() => {}
            Ok(data) => send.send_data(data).await?,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    // Ends the stream.
                    return send.send_trailers(trailers).await;
                }
            }
        }
    }
    send.finish().await
}

/// The receive side of an HTTP/3 request stream as an [`http_body::Body`].
pub struct RecvBody {
    stream: RequestStream<h3_quinn::RecvStream, Bytes>,
    data_done: bool,
}

impl Body for RecvBody {
    type Data = Bytes;
    type Error = h3::error::StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if !this.data_done {
            match this.stream.poll_recv_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Ok(Some(mut buf))) => {
                    let data = buf.copy_to_bytes(buf.remaining());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Ok(None)) => this.data_done = true,
            }
        }
        match this.stream.poll_recv_trailers(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(Some(trailers))) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Poll::Ready(Ok(None)) => Poll::Ready(None),
        }
    }
}
