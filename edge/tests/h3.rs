//! The edge's listeners: HTTP/3 serves the same pipeline over QUIC on the UDP port of each
//! TLS listener, advertised with `Alt-Svc` on TCP responses; a plain listener redirects to
//! HTTPS; HSTS on TLS responses.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
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
    /// The plain listener that redirects to HTTPS.
    http: SocketAddr,
    pki: TestPki,
    backend: BackendHandle,
    _dir: tempfile::TempDir,
}

async fn start() -> TlsEdge {
    let backend = Backend::new()
        .handle("/slow", |_| async {
            tokio::time::sleep(std::time::Duration::from_millis(600)).await;
            http::Response::new(gatehouse_common::body::full("slow but whole"))
        })
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
         \x20 - name: http\n    address: 127.0.0.1:0\n\
         admin:\n  address: 127.0.0.1:0\n\
         drain_timeout: 10s\n\
         routes:\n  - name: all\n    service: internal\n\
         services:\n  internal:\n    endpoints: [{}]\n\
         edge:\n  policies: [{{ name: open, path_prefix: /, auth: none }}]\n\
         \x20 https_redirect: {{ listeners: [http], https_port: 8443, pass_acme_challenge: true }}\n\
         \x20 hsts: {{ max_age: 1d, include_subdomains: true }}\n",
        cert.display(),
        key.display(),
        backend.addr
    );
    let loaded = config::parse::<ProxySettings>("edge.yaml", &yaml).expect("edge config");
    let running = gatehouse_edge::run(loaded, None).await.expect("edge start");
    let addr = running.addr("public").await.expect("public listener");
    let http = running.addr("http").await.expect("http listener");
    TlsEdge {
        running,
        addr,
        http,
        pki,
        backend,
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
    let req = Request::get(format!("https://localhost:{}{path}", edge.addr.port()))
        .body(())
        .expect("request");
    gatehouse_tests::h3::request(edge.addr, "localhost", client_tls(&edge.pki, &[]), req).await
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

/// Sends a raw HTTP/1.1 request to the plain listener; returns the response head.
async fn plain(edge: &TlsEdge, request: &str) -> String {
    gatehouse_tests::client::raw_first_read(edge.http, request).await
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn plain_listener_redirects_to_https_and_tls_responses_carry_hsts() {
    let edge = start().await;
    let before = edge.backend.count();
    // (request, Location)
    let table = [
        (
            "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: shop.example:8080\r\n\r\n",
            "https://shop.example:8443/a/b?x=1&y=2",
        ),
        (
            "POST /orders HTTP/1.1\r\nHost: Shop.Example\r\nContent-Length: 0\r\n\r\n",
            "https://shop.example:8443/orders",
        ),
        (
            "GET /x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
            "https://[::1]:8443/x",
        ),
        // Not a challenge once normalized: redirected, with the client's own target.
        (
            "GET /.well-known/acme-challenge/../admin HTTP/1.1\r\nHost: a.example\r\n\r\n",
            "https://a.example:8443/.well-known/acme-challenge/../admin",
        ),
    ];
    for (request, location) in table {
        let head = plain(&edge, request).await;
        assert!(head.starts_with("HTTP/1.1 308"), "{request}: {head}");
        assert_eq!(header(&head, "location"), Some(location), "{request}");
        assert_eq!(header(&head, "strict-transport-security"), None, "{head}");
    }
    assert_eq!(
        edge.backend.count(),
        before,
        "a redirected request reached the backend"
    );

    // HTTP-01 challenges go through to the routes.
    let head = plain(
        &edge,
        "GET /.well-known/acme-challenge/tok3n HTTP/1.1\r\nHost: a.example\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(edge.backend.last().uri, "/.well-known/acme-challenge/tok3n");

    // No host to redirect to.
    let head = plain(&edge, "GET / HTTP/1.0\r\n\r\n").await;
    assert!(
        head.starts_with("HTTP/1.0 400") || head.starts_with("HTTP/1.1 400"),
        "{head}"
    );

    // HSTS on TLS responses, over TCP and QUIC.
    let (status, headers, _) = get_tcp(&edge, "/hello").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=86400; includeSubDomains")
    );
    let (_, headers, _) = get_h3(&edge, "/hello").await;
    assert!(headers.contains_key("strict-transport-security"));
    edge.running.shutdown();
}

/// Shutdown drains HTTP/3 like TCP: a request in flight gets its whole answer (after GOAWAY),
/// new connections are refused, and the drain ends as soon as the request is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_requests_in_flight_finish_during_the_drain() {
    let edge = start().await;
    let req = Request::get(format!("https://localhost:{}/slow", edge.addr.port()))
        .body(())
        .expect("request");
    let in_flight = tokio::spawn(gatehouse_tests::h3::request(
        edge.addr,
        "localhost",
        client_tls(&edge.pki, &[]),
        req,
    ));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let t = std::time::Instant::now();
    edge.running.shutdown();
    let (status, _, body) = in_flight.await.expect("request task");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Bytes::from_static(b"slow but whole"));
    tokio::time::timeout(std::time::Duration::from_secs(5), edge.running.wait())
        .await
        .expect("the drain ends once the request is done, well before drain_timeout (10s)");
    eprintln!("drained in {:?}", t.elapsed());
}
