//! HTTP/3: the edge serves the same pipeline over QUIC on the UDP port of each TLS listener, and
//! advertises it with `Alt-Svc` on its TCP responses.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use gatehouse_certs::test_util::TestPki;
use gatehouse_common::config;
use gatehouse_common::runtime::Running;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::{Backend, BackendHandle};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;

struct TlsEdge {
    running: Running,
    addr: SocketAddr,
    pki: TestPki,
    _backend: BackendHandle,
    _dir: tempfile::TempDir,
}

async fn start() -> TlsEdge {
    let backend = Backend::new()
        .route("/", "hello over any protocol")
        .run()
        .await;
    let pki = TestPki::new("gatehouse.test");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = pki
        .server(&["localhost", "127.0.0.1"])
        .write_to(dir.path(), "server");
    let yaml = format!(
        "listeners:\n  - name: public\n    address: 127.0.0.1:0\n    tls: {{ cert: {}, key: {} }}\n\
         admin:\n  address: 127.0.0.1:0\n\
         routes:\n  - name: all\n    service: internal\n\
         services:\n  internal:\n    endpoints: [{}]\n\
         edge:\n  policies: [{{ name: open, path_prefix: /, auth: none }}]\n",
        cert.display(),
        key.display(),
        backend.addr
    );
    let loaded = config::parse::<ProxySettings>("edge.yaml", &yaml).expect("edge config");
    let running = gatehouse_edge::run(loaded, None).await.expect("edge start");
    let addr = running.addr("public").await.expect("public listener");
    TlsEdge {
        running,
        addr,
        pki,
        _backend: backend,
        _dir: dir,
    }
}

fn client_tls(pki: &TestPki, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der()).expect("test CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    cfg
}

/// GET over HTTP/1.1 with TLS.
async fn get_tcp(edge: &TlsEdge, path: &str) -> (StatusCode, HeaderMap, Bytes) {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_tls(&edge.pki, &[]))
        .https_only()
        .enable_http1() // hyper-rustls sets ALPN `http/1.1` itself
        .build();
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(https);
    let uri = format!("https://localhost:{}{path}", edge.addr.port());
    let res = client
        .get(uri.parse().expect("uri"))
        .await
        .expect("TCP request");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("TCP body").to_bytes();
    (parts.status, parts.headers, body)
}

/// GET over HTTP/3.
async fn get_h3(edge: &TlsEdge, path: &str) -> (StatusCode, HeaderMap, Bytes) {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_tls(&edge.pki, &[b"h3"]))
        .expect("QUIC client config");
    let mut endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let quic = endpoint
        .connect(edge.addr, "localhost")
        .expect("connect")
        .await
        .expect("QUIC handshake");
    let (mut driver, mut send) = h3::client::new(h3_quinn::Connection::new(quic))
        .await
        .expect("h3 client");
    let drive = tokio::spawn(async move { driver.wait_idle().await });
    let req = Request::get(format!("https://localhost:{}{path}", edge.addr.port()))
        .body(())
        .expect("request");
    let mut stream = send.send_request(req).await.expect("send request");
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

#[tokio::test]
async fn h3_and_tcp_get_the_same_answer_and_tcp_advertises_h3() {
    let edge = start().await;
    let (tcp_status, tcp_headers, tcp_body) = get_tcp(&edge, "/hello").await;
    let (h3_status, h3_headers, h3_body) = get_h3(&edge, "/hello").await;

    assert_eq!(tcp_status, StatusCode::OK);
    assert_eq!(h3_status, tcp_status);
    assert_eq!(tcp_body, Bytes::from_static(b"hello over any protocol"));
    assert_eq!(h3_body, tcp_body);
    let expected = format!("h3=\":{}\"; ma=86400", edge.addr.port());
    assert_eq!(
        tcp_headers.get("alt-svc").and_then(|v| v.to_str().ok()),
        Some(expected.as_str())
    );
    assert!(
        h3_headers.get("alt-svc").is_none(),
        "HTTP/3 responses do not advertise HTTP/3"
    );
    edge.running.shutdown();
}

#[tokio::test]
async fn h3_endpoint_refuses_connections_after_shutdown() {
    let edge = start().await;
    let (status, _, _) = get_h3(&edge, "/hello").await;
    assert_eq!(status, StatusCode::OK);
    edge.running.shutdown();
    edge.running.wait().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_tls(&edge.pki, &[b"h3"]))
        .expect("QUIC client config");
    let mut endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client endpoint");
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(
        std::time::Duration::from_secs(1)
            .try_into()
            .expect("timeout"),
    ));
    cfg.transport_config(Arc::new(transport));
    endpoint.set_default_client_config(cfg);
    let result = endpoint
        .connect(edge.addr, "localhost")
        .expect("connect")
        .await;
    assert!(
        result.is_err(),
        "the QUIC endpoint is closed after shutdown"
    );
}
