//! A → sidecar-A → sidecar-B → B over real mTLS: identities, policy, spoofing, the callee's
//! identity check, unknown services, and a failing app behind its sidecar.

use std::path::Path;
use std::time::{Duration, Instant};

use gatehouse_certs::Kind;
use gatehouse_certs::test_util::TestPki;
use gatehouse_common::body::empty;
use gatehouse_common::config;
use gatehouse_common::runtime::Running;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::{Backend, BackendHandle, Client, collect};
use http::{Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TD: &str = "spiffe://gatehouse.local";

async fn start(yaml: &str) -> Running {
    let loaded = config::parse::<ProxySettings>("sidecar.yaml", yaml).expect("sidecar config");
    gatehouse_sidecar::run(loaded, None)
        .await
        .expect("sidecar start")
}

/// The sidecar in front of app `name` (inbound only).
fn inbound_yaml(dir: &Path, name: &str, app: &BackendHandle) -> String {
    let d = dir.display();
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    tls: {{ cert: "{d}/{name}.pem", key: "{d}/{name}-key.pem", client_ca: "{d}/ca.pem" }}
    trusted_gateways: ["{TD}/gateway/internal"]
admin: {{ address: "127.0.0.1:0" }}
routes: [{{ name: app, service: app }}]
services:
  app:
    endpoints: ["{app}"]
    outlier_detection: {{ consecutive_failures: 0 }}
    failure_breaker: {{ consecutive_failures: 3, cooldown: 1s, half_open_requests: 1 }}
sidecar:
  inbound_listener: inbound
  allow:
    - peers: ["{TD}/service/a", "{TD}/gateway/internal"]
"#,
        app = app.addr
    )
}

/// The sidecar of app `me`, whose outbound side reaches service `b` at `target`, expecting
/// the callee to be `expect`.
fn outbound_yaml(dir: &Path, me: &str, target: std::net::SocketAddr, expect: &str) -> String {
    let d = dir.display();
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    tls: {{ cert: "{d}/{me}.pem", key: "{d}/{me}-key.pem", client_ca: "{d}/ca.pem" }}
  - name: outbound
    address: 127.0.0.1:0
admin: {{ address: "127.0.0.1:0" }}
routes: [{{ name: b, match: {{ host: b, listeners: [outbound] }}, service: b }}]
services:
  b:
    endpoints: ["{target}"]
    protocol: https
    tls: {{ ca: "{d}/ca.pem", cert: "{d}/{me}.pem", key: "{d}/{me}-key.pem", expect_spiffe_id: "{TD}/service/{expect}" }}
sidecar:
  inbound_listener: inbound
  outbound_listener: outbound
  allow:
    - peers: ["{TD}/gateway/internal"]
"#
    )
}

fn pki(dir: &Path) -> TestPki {
    let pki = TestPki::new("gatehouse.local");
    pki.write_dir(dir);
    for name in ["a", "b", "c"] {
        pki.write_identity(dir, Kind::Service, name);
    }
    pki
}

async fn get(
    client: &Client,
    addr: std::net::SocketAddr,
    host: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, bytes::Bytes) {
    let mut req = Request::get(format!("http://{addr}/hello")).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    collect(client.send(req.body(empty()).expect("request")).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn east_west_through_two_sidecars() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _pki = pki(dir.path());
    let app_b = Backend::new().route("/", "B").run().await;
    let side_b = start(&inbound_yaml(dir.path(), "b", &app_b)).await;
    let b_in = side_b.addr("inbound").await.expect("inbound");
    let side_a = start(&outbound_yaml(dir.path(), "a", b_in, "b")).await;
    let a_out = side_a.addr("outbound").await.expect("outbound");
    let client = Client::http1();

    // The app names the service in Host; the callee's app sees the caller's identity, and a
    // user identity header sent by a non-gateway caller never reaches it.
    let (s, h, body) = get(
        &client,
        a_out,
        "b",
        &[
            ("x-gatehouse-subject", "mallory"),
            ("x-request-id", "mesh-1"),
        ],
    )
    .await;
    assert_eq!((s, &body[..]), (StatusCode::OK, &b"B"[..]));
    assert_eq!(h["x-request-id"], "mesh-1");
    let seen = app_b.last();
    assert_eq!(
        seen.headers["x-gatehouse-peer"],
        format!("{TD}/service/a").as_str()
    );
    assert!(
        seen.headers.get("x-gatehouse-subject").is_none(),
        "spoofed subject reached the app"
    );
    assert_eq!(seen.headers["x-request-id"], "mesh-1");
    // The authority the app asked for survives the HTTP/2 hop between the sidecars.
    assert_eq!(seen.headers["host"], "b");

    // The callee's sidecar counts requests per caller identity.
    let (_, _, metrics) = client
        .get(&format!("http://{}/metrics", side_b.admin_addr))
        .await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(&format!("gatehouse_peer_requests_total{{listener=\"inbound\",peer=\"{TD}/service/a\",status_class=\"2xx\"}} 1")),
        "{metrics}"
    );

    // HTTP_PROXY style: an absolute-form request.
    let mut tcp = tokio::net::TcpStream::connect(a_out)
        .await
        .expect("connect");
    tcp.write_all(b"GET http://b/abs HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert_eq!(app_b.last().uri, "/abs");

    // An unknown service: 404 naming the ones that exist.
    let (s, _, body) = get(&client, a_out, "nosuch", &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let problem: serde_json::Value = serde_json::from_slice(&body).expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("known services: b"),
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_and_callee_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _pki = pki(dir.path());
    let app_b = Backend::new().route("/", "B").run().await;
    let side_b = start(&inbound_yaml(dir.path(), "b", &app_b)).await;
    let b_in = side_b.addr("inbound").await.expect("inbound");
    let client = Client::http1();

    // c is a valid mesh identity, but B's policy admits only a and the internal gateway.
    let side_c = start(&outbound_yaml(dir.path(), "c", b_in, "b")).await;
    let c_out = side_c.addr("outbound").await.expect("outbound");
    let (s, h, body) = get(&client, c_out, "b", &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body:?}");
    assert_eq!(h["content-type"], "application/problem+json");
    assert!(
        String::from_utf8_lossy(&body).contains("service/c"),
        "{body:?}"
    );
    // gRPC callers get PERMISSION_DENIED.
    let (s, h, _) = get(&client, c_out, "b", &[("content-type", "application/grpc")]).await;
    assert_eq!(
        (s, h["grpc-status"].as_bytes()),
        (StatusCode::OK, &b"7"[..])
    );
    assert_eq!(app_b.count(), 0, "a refused caller reached the app");

    // A's sidecar expects the callee to be `c`, but B's sidecar presents `b`: refused, 502.
    let side_a = start(&outbound_yaml(dir.path(), "a", b_in, "c")).await;
    let a_out = side_a.addr("outbound").await.expect("outbound");
    let (s, _, body) = get(&client, a_out, "b", &[]).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    let detail = String::from_utf8_lossy(&body).to_lowercase();
    assert!(
        detail.contains("spiffe") || detail.contains("identity"),
        "{detail}"
    );
    assert_eq!(app_b.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_app_behind_its_sidecar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _pki = pki(dir.path());
    let app_b = Backend::new().route("/", "B").run().await;
    let app_addr = app_b.addr;
    let side_b = start(&inbound_yaml(dir.path(), "b", &app_b)).await;
    let b_in = side_b.addr("inbound").await.expect("inbound");
    let side_a = start(&outbound_yaml(dir.path(), "a", b_in, "b")).await;
    let a_out = side_a.addr("outbound").await.expect("outbound");
    let client = Client::http1();
    assert_eq!(get(&client, a_out, "b", &[]).await.0, StatusCode::OK);

    // The app dies: quick 502s, then the breaker opens (3 failures) and answers 503 at once.
    app_b.kill();
    let t = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (s, h, _) = get(&client, a_out, "b", &[]).await;
        statuses.push((s.as_u16(), h.contains_key("x-gatehouse-overloaded")));
    }
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "failures were slow: {:?}",
        t.elapsed()
    );
    assert_eq!(
        &statuses[..3],
        &[(502, false), (502, false), (502, false)],
        "{statuses:?}"
    );
    assert!(
        statuses[3..].iter().all(|s| *s == (503, true)),
        "{statuses:?}"
    );

    // Back up: after the cooldown a probe succeeds and traffic flows again.
    let _app = Backend::new().route("/", "B").run_on(app_addr).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, _, body) = get(&client, a_out, "b", &[]).await;
    assert_eq!((s, &body[..]), (StatusCode::OK, &b"B"[..]));
}

/// A mesh caller cannot use a sidecar's inbound side to reach the services of its outbound side
/// (confused deputy): outbound routes are bound to the outbound listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_side_does_not_relay_to_outbound_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _pki = pki(dir.path());
    let app_b = Backend::new().route("/", "B").run().await;
    let side_b = start(&inbound_yaml(dir.path(), "b", &app_b)).await;
    let side_a = start(&outbound_yaml(
        dir.path(),
        "a",
        side_b.addr("inbound").await.expect("in"),
        "b",
    ))
    .await;
    // The internal gateway (admitted by a's policy) calls a's inbound side naming `b`.
    let a_in = side_a.addr("inbound").await.expect("inbound");
    let side_gw = start(&outbound_yaml(dir.path(), "internal", a_in, "a")).await;
    let gw_out = side_gw.addr("outbound").await.expect("outbound");
    let (s, _, body) = get(&Client::http1(), gw_out, "b", &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body:?}");
    assert_eq!(app_b.count(), 0, "a's inbound side relayed the call to b");
}
