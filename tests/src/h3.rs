//! A one-shot HTTP/3 client (quinn + h3) for tests: connect, send one request, read the whole
//! response, close.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use http::{HeaderMap, Request, StatusCode};

/// Sends `req` (its URI names the authority) over a fresh QUIC connection to `addr`, verifying
/// the server as `server_name` with `tls` (ALPN `h3` is set here). Panics on transport errors:
/// a test wants to see them.
pub async fn request(
    addr: SocketAddr,
    server_name: &str,
    tls: rustls::ClientConfig,
    req: Request<()>,
) -> (StatusCode, HeaderMap, Bytes) {
    let (parts, ()) = req.into_parts();
    request_with_body(
        addr,
        server_name,
        tls,
        Request::from_parts(parts, Bytes::new()),
    )
    .await
}

/// Like [`request`], with a request body (sent as one DATA frame when not empty).
pub async fn request_with_body(
    addr: SocketAddr,
    server_name: &str,
    mut tls: rustls::ClientConfig,
    req: Request<Bytes>,
) -> (StatusCode, HeaderMap, Bytes) {
    let (parts, req_body) = req.into_parts();
    let req = Request::from_parts(parts, ());
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC client config");
    let bind: SocketAddr = if addr.is_ipv6() {
        "[::1]:0".parse().expect("addr")
    } else {
        "127.0.0.1:0".parse().expect("addr")
    };
    let mut endpoint = quinn::Endpoint::client(bind).expect("client endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let quic = endpoint
        .connect(addr, server_name)
        .expect("connect")
        .await
        .expect("QUIC handshake");
    let (mut driver, mut send) = h3::client::new(h3_quinn::Connection::new(quic))
        .await
        .expect("h3 client");
    let drive = tokio::spawn(async move { driver.wait_idle().await });
    let mut stream = send.send_request(req).await.expect("send request");
    if !req_body.is_empty() {
        stream.send_data(req_body).await.expect("send body");
    }
    stream.finish().await.expect("finish request");
    let res = stream.recv_response().await.expect("response head");
    let mut body = Vec::new();
    while let Some(mut chunk) = stream.recv_data().await.expect("response body") {
        body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
    }
    drop(stream);
    drop(send);
    let _ = drive.await;
    endpoint.close(0u32.into(), b"done");
    let (parts, ()) = res.into_parts();
    (parts.status, parts.headers, Bytes::from(body))
}
