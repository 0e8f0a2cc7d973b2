//! TLS and mTLS through the proxy with real handshakes on 127.0.0.1: SPIFFE client
//! authentication and each refusal's logged reason, the mesh client's identity check, SNI,
//! certificate rotation and readiness.

#[path = "mtls/support.rs"]
mod support;

use gatehouse_certs::Kind;
use gatehouse_certs::test_util::{LeafOptions, TestCert, TestPki};
use gatehouse_common::tls::Reason;
use gatehouse_tests::{Backend, BackendHandle, Client, start};
use http::StatusCode;
use rustls::version::{TLS12, TLS13};
use support::{Logs, TempDir, get_once, mesh_client, open, web_client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EDGE: &str = "spiffe://gatehouse.local/gateway/edge";
const INTERNAL: &str = "spiffe://gatehouse.local/gateway/internal";

/// A proxy in front of `backend` whose listener `main` is mTLS: server identity `internal`,
/// clients chained to `pki`'s CA and admitted by `allow`.
fn mtls_config(dir: &TempDir, pki: &TestPki, backend: &BackendHandle, allow: &str) -> String {
    let (cert, key) = pki
        .workload(Kind::Gateway, "internal")
        .write_to(dir.path(), "internal");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).expect("write CA");
    format!(
        r#"
listeners:
  - name: main
    address: 127.0.0.1:0
    tls:
      cert: {cert}
      key: {key}
      client_ca: {ca}
      allow: {allow}
admin:
  address: 127.0.0.1:0
routes:
  - name: all
    service: app
services:
  app:
    endpoints: ["{be}"]
"#,
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
        be = backend.addr,
    )
}

#[tokio::test]
async fn mtls_request_reaches_the_backend_with_the_peer_identity() {
    let (logs, _guard) = Logs::capture();
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("mtls-ok");
    let backend = Backend::new().route("/", "hello").run().await;
    let proxy = start(&mtls_config(&dir, &pki, &backend, &format!("[{EDGE}]"))).await;
    let addr = proxy.addr("main").await.expect("listener");

    for version in [&TLS13, &TLS12] {
        let edge = pki.workload(Kind::Gateway, "edge");
        let status = get_once(
            addr,
            mesh_client(&pki, INTERNAL, Some(&edge), version),
            "/hi",
        )
        .await;
        assert_eq!(status, Ok(StatusCode::OK), "{version:?}");
    }
    assert_eq!(backend.count(), 2);
    assert_eq!(backend.last().uri, "/hi");
    let access = logs
        .wait_for("the access log", |e| {
            e.get("target").map(String::as_str) == Some("access_log")
        })
        .await;
    assert_eq!(access.get("peer").map(String::as_str), Some(EDGE));
    assert!(logs.refusals().is_empty(), "{:?}", logs.refusals());
}

/// Each bad client is refused at the handshake with its own logged reason; the client sees a
/// failure (TLS 1.3 clients may finish their side first, then get the alert on the request).
#[tokio::test]
async fn mtls_refusals_each_log_their_reason() {
    let (logs, _guard) = Logs::capture();
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("mtls-refusals");
    let backend = Backend::new().route("/", "hello").run().await;
    let allow = format!("[{EDGE}, spiffe://gatehouse.local/service/*]");
    let proxy = start(&mtls_config(&dir, &pki, &backend, &allow)).await;
    let addr = proxy.addr("main").await.expect("listener");

    let opts = LeafOptions::new;
    let cases: Vec<(&str, Option<TestCert>, Reason)> = vec![
        ("no client certificate", None, Reason::NoClientCertificate),
        (
            "certificate from another CA",
            Some(TestPki::other().workload(Kind::Gateway, "edge")),
            Reason::UnknownCa,
        ),
        (
            "expired",
            Some(pki.workload_with(Kind::Gateway, "edge", opts().expired())),
            Reason::Expired,
        ),
        (
            "not yet valid",
            Some(pki.workload_with(Kind::Gateway, "edge", opts().not_yet_valid())),
            Reason::NotYetValid,
        ),
        (
            "identity not in the allow list",
            Some(pki.workload(Kind::Gateway, "intruder")),
            Reason::IdentityNotAllowed,
        ),
        (
            "two URI SANs",
            Some(pki.workload_with(
                Kind::Gateway,
                "edge",
                opts().second_uri("spiffe://gatehouse.local/service/orders"),
            )),
            Reason::MultipleUriSans,
        ),
        (
            "foreign trust domain",
            Some(pki.workload_with(Kind::Gateway, "edge", opts().trust_domain("evil.local"))),
            Reason::ForeignTrustDomain,
        ),
    ];
    for version in [&TLS13, &TLS12] {
        for (name, cert, reason) in &cases {
            logs.clear();
            let config = mesh_client(&pki, INTERNAL, cert.as_ref(), version);
            let result = get_once(addr, config, "/").await;
            assert!(
                result.is_err(),
                "{name} ({version:?}): must fail, got {result:?}"
            );
            let event = logs.wait_for(name, |e| e.contains_key("reason")).await;
            assert_eq!(
                event.get("reason").map(String::as_str),
                Some(reason.as_str()),
                "{name} ({version:?}): {event:?}"
            );
            assert_eq!(logs.refusals().len(), 1, "{name}: one line per refusal");
        }
    }
    // The refused peer's ID is logged when it had one.
    logs.clear();
    let intruder = pki.workload(Kind::Gateway, "intruder");
    let _ = get_once(
        addr,
        mesh_client(&pki, INTERNAL, Some(&intruder), &TLS13),
        "/",
    )
    .await;
    let event = logs.wait_for("peer_id", |e| e.contains_key("reason")).await;
    assert_eq!(
        event.get("peer_id").map(String::as_str),
        Some("spiffe://gatehouse.local/gateway/intruder")
    );

    // Nothing reached the backend, and the listener still serves good clients.
    assert_eq!(backend.count(), 0);
    let orders = pki.workload(Kind::Service, "orders");
    let ok = get_once(
        addr,
        mesh_client(&pki, INTERNAL, Some(&orders), &TLS13),
        "/",
    )
    .await;
    assert_eq!(ok, Ok(StatusCode::OK));
}

#[tokio::test]
async fn plaintext_to_a_tls_port_gets_400_and_not_tls() {
    let (logs, _guard) = Logs::capture();
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("mtls-plain");
    let backend = Backend::new().route("/", "hello").run().await;
    let proxy = start(&mtls_config(&dir, &pki, &backend, &format!("[{EDGE}]"))).await;
    let addr = proxy.addr("main").await.expect("listener");

    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let event = logs.wait_for("not_tls", |e| e.contains_key("reason")).await;
    assert_eq!(event.get("reason").map(String::as_str), Some("not_tls"));
    // The plain client too: hyper sees a 400, not a hang or a reset.
    let url = format!("http://{addr}/");
    let (status, _, _) = Client::http1().get(&url).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(backend.count(), 0);
}

#[tokio::test]
async fn client_refuses_a_valid_server_with_another_spiffe_id() {
    let (_logs, _guard) = Logs::capture();
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("mtls-client");
    let backend = Backend::new().route("/", "hello").run().await;
    let proxy = start(&mtls_config(&dir, &pki, &backend, &format!("[{EDGE}]"))).await;
    let addr = proxy.addr("main").await.expect("listener");
    let edge = pki.workload(Kind::Gateway, "edge");

    for version in [&TLS13, &TLS12] {
        let wrong = mesh_client(
            &pki,
            "spiffe://gatehouse.local/gateway/other",
            Some(&edge),
            version,
        );
        let err = open(addr, wrong, "localhost")
            .await
            .err()
            .expect("must be refused");
        assert_eq!(Reason::of_io(&err), Reason::UnexpectedIdentity, "{err}");
        assert_eq!(
            Reason::peer_id_of(&err).as_deref(),
            Some(INTERNAL),
            "the error names who answered"
        );
    }
    // Same chain, right ID, and dialled by IP: accepted (the DNS name is not what is checked).
    let right = mesh_client(&pki, INTERNAL, Some(&edge), &TLS13);
    let mut conn = open(addr, right, "127.0.0.1").await.expect("handshake");
    assert_eq!(conn.get("/").await, Ok(StatusCode::OK));
    assert_eq!(backend.count(), 1);
}

/// Edge-like proxy → (mesh mTLS, `expect_spiffe_id`) → internal-like proxy → backend.
#[tokio::test]
async fn upstream_mesh_hop_checks_the_spiffe_id() {
    let (logs, _guard) = Logs::capture();
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("mtls-hop");
    pki.write_dir(dir.path());
    let backend = Backend::new().route("/", "deep").run().await;
    let inner_dir = TempDir::new("mtls-hop-inner");
    let inner = start(&mtls_config(
        &inner_dir,
        &pki,
        &backend,
        &format!("[{EDGE}]"),
    ))
    .await;
    let inner_addr = inner.addr("main").await.expect("inner listener");
    let p = |f: &str| dir.path().join(f).display().to_string();
    let outer = |expect: &str| {
        format!(
            r#"
listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
routes:
  - name: all
    service: inner
services:
  inner:
    endpoints: ["{inner_addr}"]
    protocol: https
    tls:
      ca: {ca}
      cert: {cert}
      key: {key}
      expect_spiffe_id: {expect}
"#,
            ca = p("ca.pem"),
            cert = p("edge.pem"),
            key = p("edge-key.pem"),
        )
    };
    let good = start(&outer(INTERNAL)).await;
    let url = format!("http://{}/x", good.addr("main").await.expect("addr"));
    let (status, _, body) = Client::http1().get(&url).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"deep"[..]));
    let access = logs
        .wait_for("inner access log", |e| {
            e.get("peer").map(String::as_str) == Some(EDGE)
        })
        .await;
    assert_eq!(access.get("path").map(String::as_str), Some("/x"));

    let bad = start(&outer("spiffe://gatehouse.local/gateway/impostor")).await;
    let url = format!("http://{}/x", bad.addr("main").await.expect("addr"));
    let (status, _, _) = Client::http1().get(&url).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(backend.count(), 1, "the refused hop sent nothing");
}

#[tokio::test]
async fn sni_selects_the_certificate() {
    let (_logs, _guard) = Logs::capture();
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("tls-sni");
    let backend = Backend::new().route("/", "hello").run().await;
    let api = pki.server(&["api.test", "127.0.0.1"]);
    let admin = pki.server(&["admin.test"]);
    let (api_cert, api_key) = api.write_to(dir.path(), "api");
    let (admin_cert, admin_key) = admin.write_to(dir.path(), "admin");
    let proxy = start(&format!(
        r#"
listeners:
  - name: main
    address: 127.0.0.1:0
    tls:
      certificates:
        - {{cert: {}, key: {}}}
        - {{cert: {}, key: {}}}
admin:
  address: 127.0.0.1:0
routes:
  - name: all
    service: app
services:
  app:
    endpoints: ["{}"]
"#,
        api_cert.display(),
        api_key.display(),
        admin_cert.display(),
        admin_key.display(),
        backend.addr
    ))
    .await;
    let addr = proxy.addr("main").await.expect("listener");
    for (name, want) in [
        ("api.test", &api),
        ("admin.test", &admin),
        ("127.0.0.1", &api),
    ] {
        // An IP sends no SNI: the first certificate is the default.
        let mut conn = open(addr, web_client(&pki), name).await.expect(name);
        assert_eq!(conn.server_certs[0], want.cert_der_chain()[0], "{name}");
        assert_eq!(conn.get("/").await, Ok(StatusCode::OK));
    }
}

#[tokio::test]
async fn rotated_files_serve_new_handshakes_and_old_connections_continue() {
    let (_logs, _guard) = Logs::capture();
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("tls-rotate");
    let backend = Backend::new().route("/", "hello").run().await;
    let first = pki.server(&["localhost"]);
    let (cert, key) = first.write_to(dir.path(), "server");
    let proxy = start(&format!(
        r#"
listeners:
  - name: main
    address: 127.0.0.1:0
    tls: {{cert: {}, key: {}, reload_interval: 50ms}}
admin:
  address: 127.0.0.1:0
routes:
  - name: all
    service: app
services:
  app:
    endpoints: ["{}"]
"#,
        cert.display(),
        key.display(),
        backend.addr
    ))
    .await;
    let addr = proxy.addr("main").await.expect("listener");
    let mut old = open(addr, web_client(&pki), "localhost")
        .await
        .expect("first handshake");
    assert_eq!(old.server_certs[0], first.cert_der_chain()[0]);
    assert_eq!(old.get("/").await, Ok(StatusCode::OK));

    // A broken file is ignored: the current certificate keeps serving.
    dir.replace(&cert, "-----BEGIN CERTIFICATE-----\ntruncated");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let conn = open(addr, web_client(&pki), "localhost")
        .await
        .expect("still serving");
    assert_eq!(conn.server_certs[0], first.cert_der_chain()[0]);

    // The renewed pair (key first, then certificate) is picked up by the next handshakes.
    let renewed = pki.server(&["localhost"]);
    assert_ne!(renewed.serial_hex, first.serial_hex);
    dir.replace(&key, &renewed.key_pem);
    dir.replace(&cert, &renewed.cert_pem);
    let mut seen = None;
    for _ in 0..100 {
        let conn = open(addr, web_client(&pki), "localhost")
            .await
            .expect("handshake");
        if conn.server_certs[0] == renewed.cert_der_chain()[0] {
            seen = Some(conn);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut new = seen.expect("the renewed certificate is served within 5s");
    assert_eq!(new.get("/").await, Ok(StatusCode::OK));
    // The connection opened before the rotation still works.
    assert_eq!(old.get("/again").await, Ok(StatusCode::OK));
    assert!(proxy.is_ready());
}

#[tokio::test]
async fn ready_only_with_certificates_loaded() {
    let (_logs, _guard) = Logs::capture();
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("tls-ready");
    let backend = Backend::new().route("/", "hello").run().await;
    let yaml = mtls_config(&dir, &pki, &backend, &format!("[{EDGE}]"));
    let proxy = start(&yaml).await;
    let (status, _, _) = Client::http1()
        .get(&format!("http://{}/readyz", proxy.admin_addr))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Without its key the listener cannot be built: the binary does not start (so it never
    // binds, let alone answers /readyz 200), and the error names the file.
    std::fs::remove_file(dir.path().join("internal-key.pem")).expect("remove key");
    let loaded = gatehouse_common::config::parse("test.yaml", &yaml).expect("config");
    let err = gatehouse_common::runtime::run("gatehouse-test", loaded, None)
        .await
        .expect_err("start must fail");
    let msg = gatehouse_common::error::chain(&err);
    assert!(
        msg.contains("internal-key.pem") && msg.contains("listeners[0].tls"),
        "{msg}"
    );
}

#[tokio::test]
async fn rotated_client_ca_applies_to_new_handshakes() {
    let (logs, _guard) = Logs::capture();
    let old_pki = TestPki::new("gatehouse.local");
    let new_pki = TestPki::other();
    let dir = TempDir::new("tls-ca-rotate");
    let backend = Backend::new().route("/", "hello").run().await;
    let yaml = mtls_config(&dir, &old_pki, &backend, &format!("[{EDGE}]"))
        .replace("      allow:", "      reload_interval: 50ms\n      allow:");
    let proxy = start(&yaml).await;
    let addr = proxy.addr("main").await.expect("listener");
    let client = |pki: &TestPki| {
        let edge = pki.workload(Kind::Gateway, "edge");
        // The server keeps its certificate from the old CA.
        mesh_client(&old_pki, INTERNAL, Some(&edge), &TLS13)
    };
    assert_eq!(
        get_once(addr, client(&old_pki), "/").await,
        Ok(StatusCode::OK)
    );

    // Trust moves to the new CA: its clients get in, the old CA's are refused as unknown.
    dir.replace(&dir.path().join("ca.pem"), new_pki.ca_pem());
    let mut admitted = false;
    for _ in 0..100 {
        if get_once(addr, client(&new_pki), "/").await == Ok(StatusCode::OK) {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(admitted, "the new bundle is used within 5s");
    logs.clear();
    assert!(get_once(addr, client(&old_pki), "/").await.is_err());
    let event = logs
        .wait_for("unknown_ca", |e| e.contains_key("reason"))
        .await;
    assert_eq!(event.get("reason").map(String::as_str), Some("unknown_ca"));
}

/// An idle TLS connection is parked between requests (hyper's state dropped, the socket and
/// the TLS session kept) and serves the next request after the pause.
#[tokio::test]
async fn a_parked_tls_connection_serves_the_next_request() {
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("tls-park");
    let backend = Backend::new().route("/", "hello").run().await;
    let (cert, key) = pki.server(&["localhost"]).write_to(dir.path(), "server");
    let proxy = start(&format!(
        "listeners: [{{name: main, address: 127.0.0.1:0, tls: {{cert: {}, key: {}}}}}]\n\
         admin: {{address: 127.0.0.1:0}}\n\
         routes: [{{name: all, service: app}}]\n\
         services: {{app: {{endpoints: [\"{}\"]}}}}\n",
        cert.display(),
        key.display(),
        backend.addr
    ))
    .await;
    let addr = proxy.addr("main").await.expect("listener");
    let parked = || async {
        let (_, _, body) = gatehouse_tests::Client::http1()
            .get(&format!("http://{}/metrics", proxy.admin_addr))
            .await;
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix("gatehouse_parked_connections "))
            .map(|v| v.trim().to_owned())
    };
    let mut conn = open(addr, web_client(&pki), "localhost")
        .await
        .expect("handshake");
    for round in 0..3 {
        assert_eq!(conn.get("/").await, Ok(StatusCode::OK), "round {round}");
        tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
        assert_eq!(parked().await.as_deref(), Some("1"), "round {round}");
    }
    assert_eq!(conn.get("/").await, Ok(StatusCode::OK));
    assert_eq!(parked().await.as_deref(), Some("0"));
    assert_eq!(backend.count(), 4);
}
