//! Identity headers over mTLS: `x-gatehouse-*` request headers pass (and drive identity
//! routes) only from a trusted gateway's SPIFFE ID; from any other peer they are removed
//! before routing. Response headers under the prefix are never touched.

#[path = "mtls/support.rs"]
#[allow(dead_code)]
mod support;

use gatehouse_certs::Kind;
use gatehouse_certs::test_util::TestPki;
use gatehouse_tests::named::{header, named};
use gatehouse_tests::{BackendHandle, start};
use http::StatusCode;
use support::{TempDir, get_as};

const EDGE: &str = "spiffe://gatehouse.local/gateway/edge";
const INTERNAL: &str = "spiffe://gatehouse.local/gateway/internal";

fn config(dir: &TempDir, pki: &TestPki, admins: &BackendHandle, app: &BackendHandle) -> String {
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
    trusted_gateways: [{EDGE}]
admin:
  address: 127.0.0.1:0
routes:
  - name: admin
    match: {{ path_prefix: /admin, scopes: [admin] }}
    service: admins
    response_headers: {{ add: {{ x-route: "{{route}}" }} }}
  - name: alice
    match: {{ path_prefix: /admin, subject: alice }}
    service: admins
    request_headers: {{ set: {{ x-user: "user:{{subject}}" }} }}
    response_headers: {{ add: {{ x-route: "{{route}}" }} }}
  - name: everyone
    service: app
    response_headers: {{ add: {{ x-route: "{{route}}" }} }}
services:
  admins: {{ endpoints: ["{admins}"] }}
  app: {{ endpoints: ["{app}"] }}
"#,
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
        admins = admins.addr,
        app = app.addr,
    )
}

#[tokio::test]
async fn identity_headers_pass_only_from_a_trusted_gateway() {
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("routing-identity");
    let admins = named("admins").await;
    let app = named("app").await;
    let proxy = start(&config(&dir, &pki, &admins, &app)).await;
    let addr = proxy.addr("main").await.expect("listener");
    let edge = pki.workload(Kind::Gateway, "edge");
    let orders = pki.workload(Kind::Service, "orders");
    let claims = [
        ("x-gatehouse-subject", "alice"),
        ("x-gatehouse-scopes", "read admin"),
        ("x-gatehouse-tenant", "t1"),
        ("x-gatehouse-deadline-ms", "5000"),
    ];

    // The edge: its claims route the request and reach the service.
    let (s, h, _) = get_as(addr, &pki, INTERNAL, &edge, "/admin/x", &claims).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "x-route"), "admin");
    assert_eq!(header(&h, "x-backend"), "admins");
    assert_eq!(header(&h, "x-echo-x-gatehouse-subject"), "alice");
    assert_eq!(header(&h, "x-echo-x-gatehouse-tenant"), "t1");

    // A subject alone routes by subject, and fills `{subject}`.
    let (_, h, _) = get_as(addr, &pki, INTERNAL, &edge, "/admin/x", &claims[..1]).await;
    assert_eq!(header(&h, "x-route"), "alice");
    assert_eq!(header(&h, "x-echo-x-user"), "user:alice");

    // Another mesh peer: the same claims are removed before routing.
    let (s, h, _) = get_as(addr, &pki, INTERNAL, &orders, "/admin/x", &claims).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "x-route"), "everyone");
    assert_eq!(header(&h, "x-backend"), "app");
    for k in ["subject", "scopes", "tenant"] {
        assert_eq!(
            header(&h, &format!("x-echo-x-gatehouse-{k}")),
            "",
            "{k} leaked"
        );
    }
    // The deadline is not an identity claim: it is honoured (and re-sent, smaller).
    let ms: u64 = header(&h, "x-echo-x-gatehouse-deadline-ms")
        .parse()
        .expect("deadline forwarded");
    assert!(ms <= 5000, "{ms}");
    // Response headers under the prefix are never stripped.
    assert_eq!(header(&h, "x-gatehouse-backend"), "app");
    let seen = app.last();
    assert!(seen.headers.get("x-gatehouse-subject").is_none());
}

#[tokio::test]
async fn trusted_gateways_need_an_mtls_listener() {
    let yaml = "listeners:\n  - name: main\n    address: 127.0.0.1:0\n    trusted_gateways: [spiffe://gatehouse.local/gateway/edge]\n";
    let loaded = gatehouse_common::config::parse::<gatehouse_common::settings::ProxySettings>(
        "test.yaml",
        yaml,
    )
    .expect("parses");
    let err = gatehouse_common::plan::Plan::build(loaded.value, &loaded.source, None)
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("at `listeners[0].trusted_gateways`") && err.contains("mTLS"),
        "{err}"
    );
}
