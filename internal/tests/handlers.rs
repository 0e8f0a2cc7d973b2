//! Route handlers of the internal gateway, end to end: a route whose action is the `envelope`
//! handler (registered by `gatehouse-internal`'s extension) makes a child request through the
//! forward step. The fake service records what it saw: the parent's request id, the same trace
//! with a new span, the caller's identity claims and the remaining deadline. The child shows in
//! the access log with the parent's request id, in `/metrics` and in `/routes`.

#[path = "../../tests/tests/mtls/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use gatehouse_certs::Kind;
use gatehouse_certs::test_util::TestPki;
use gatehouse_common::body::full;
use gatehouse_common::config;
use gatehouse_common::runtime::Running;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::{Backend, BackendHandle, Client};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use support::{Logs, TempDir, get_as};

const EDGE: &str = "spiffe://gatehouse.local/gateway/edge";
const INTERNAL: &str = "spiffe://gatehouse.local/gateway/internal";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// A users service: `/users/<id>` answers JSON naming the id; `/users/text` plain text;
/// `/users/big` 4 KiB of JSON; `/users/missing` 404; `/users/slow` after 2 s.
async fn users() -> BackendHandle {
    Backend::new()
        .handle("/users/", |seen| async move {
            let id = seen.uri.trim_start_matches("/users/").to_owned();
            let (status, ct, body) = match id.as_str() {
                "text" => (StatusCode::OK, "text/plain", "plain".to_owned()),
                "big" => (
                    StatusCode::OK,
                    "application/json",
                    format!("\"{}\"", "x".repeat(4096)),
                ),
                "missing" => (
                    StatusCode::NOT_FOUND,
                    "application/problem+json",
                    r#"{"title":"no such user"}"#.to_owned(),
                ),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    (StatusCode::OK, "application/json", "{}".to_owned())
                }
                _ => (
                    StatusCode::OK,
                    "application/json; charset=utf-8",
                    format!(r#"{{"id":"{id}","name":"Ada"}}"#),
                ),
            };
            let mut res = Response::new(full(body));
            *res.status_mut() = status;
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            res
        })
        .run()
        .await
}

/// The internal gateway on an mTLS listener that trusts the edge's claims, plus a plain one.
async fn gateway(dir: &TempDir, pki: &TestPki, users: &BackendHandle) -> Running {
    let (cert, key) = pki
        .workload(Kind::Gateway, "internal")
        .write_to(dir.path(), "internal");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).expect("write CA");
    let yaml = format!(
        r#"
listeners:
  - name: mesh
    address: 127.0.0.1:0
    tls: {{ cert: {cert}, key: {key}, client_ca: {ca} }}
    trusted_gateways: [{EDGE}]
  - name: plain
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
internal:
  max_handler_body_bytes: 1KiB
routes:
  - name: user
    match: {{ path_template: "/api/users/{{id}}" }}
    timeout: 800ms
    handler:
      envelope: {{ service: users, path: "/users/{{id}}", key: user }}
services:
  users: {{ endpoints: ["{users}"] }}
"#,
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
        users = users.addr,
    );
    let loaded = config::parse::<ProxySettings>("internal.yaml", &yaml).expect("config");
    gatehouse_internal::run(loaded, None)
        .await
        .expect("internal gateway starts")
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn a_handler_route_sends_a_child_request_with_the_parents_context() {
    let (logs, _guard) = Logs::capture();
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("internal-handlers");
    let users = users().await;
    let gw = gateway(&dir, &pki, &users).await;
    let mesh = gw.addr("mesh").await.expect("mesh listener");
    let edge = pki.workload(Kind::Gateway, "edge");
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");

    let (status, h, body) = get_as(
        mesh,
        &pki,
        INTERNAL,
        &edge,
        "/api/users/42",
        &[
            ("x-request-id", "parent-req-1"),
            ("traceparent", &traceparent),
            ("x-gatehouse-subject", "alice"),
            ("x-gatehouse-tenant", "t1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(header(&h, "content-type"), "application/json");
    assert_eq!(header(&h, "x-request-id"), "parent-req-1");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v, serde_json::json!({"user": {"id": "42", "name": "Ada"}}));

    // What the service saw of the child request.
    let seen = users.last();
    assert_eq!(seen.method, http::Method::GET);
    assert_eq!(seen.uri, "/users/42");
    assert_eq!(header(&seen.headers, "x-request-id"), "parent-req-1");
    let tp: Vec<&str> = header(&seen.headers, "traceparent").split('-').collect();
    assert_eq!(tp.len(), 4, "{tp:?}");
    assert_eq!(tp[1], TRACE_ID, "same trace");
    assert_ne!(tp[2], CALLER_SPAN, "a span of its own");
    assert_eq!(header(&seen.headers, "x-gatehouse-subject"), "alice");
    assert_eq!(header(&seen.headers, "x-gatehouse-tenant"), "t1");
    let left: u64 = header(&seen.headers, "x-gatehouse-deadline-ms")
        .parse()
        .expect("remaining deadline sent");
    assert!((1..=800).contains(&left), "{left}");

    // The child's access-log line carries the parent's request id and the child's span's
    // trace; the parent's line follows with the route.
    let child = logs
        .wait_for("the child's access-log line", |e| {
            e.get("message").map(String::as_str) == Some("child request")
        })
        .await;
    assert_eq!(child["request_id"], "parent-req-1");
    assert_eq!(child["trace_id"], TRACE_ID);
    assert_eq!(child["child"], "envelope");
    assert_eq!(child["service"], "users");
    assert_eq!(child["route"], "user");
    assert_eq!(child["status"], "200");
    assert_eq!(child["path"], "/users/42");
    let parent = logs
        .wait_for("the parent's access-log line", |e| {
            e.get("message").map(String::as_str) == Some("request")
                && e.get("request_id").map(String::as_str) == Some("parent-req-1")
        })
        .await;
    assert_eq!(parent["route"], "user");
    assert_eq!(parent["status"], "200");

    // Metrics and /routes.
    let admin = gw.admin_addr;
    let client = Client::http1();
    let (_, _, metrics) = client.get(&format!("http://{admin}/metrics")).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(
            r#"gatehouse_child_requests_total{route="user",service="users",origin="envelope",status_class="2xx"} 1"#
        ),
        "{metrics}"
    );
    let (_, _, routes) = client.get(&format!("http://{admin}/routes")).await;
    let routes: serde_json::Value = serde_json::from_slice(&routes).expect("routes json");
    assert_eq!(routes[0]["action"], "envelope");
    assert_eq!(routes[0]["handler"]["envelope"]["service"], "users");
    let (_, _, cfg) = client.get(&format!("http://{admin}/config")).await;
    let cfg: serde_json::Value = serde_json::from_slice(&cfg).expect("config json");
    assert_eq!(cfg["config"]["internal"]["max_handler_body_bytes"], "1KiB");

    // A captured value is one path segment at the service, whatever it holds.
    let (status, _, body) = get_as(mesh, &pki, INTERNAL, &edge, "/api/users/..", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(users.last().uri, "/users/%2E%2E");

    // From a peer that is not a trusted gateway, the claims never reach the child.
    let orders = pki.workload(Kind::Service, "orders");
    let (status, _, _) = get_as(
        mesh,
        &pki,
        INTERNAL,
        &orders,
        "/api/users/7",
        &[("x-gatehouse-subject", "mallory")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(users.last().headers.get("x-gatehouse-subject").is_none());
}

/// What the service answered ↔ what the client gets.
#[tokio::test]
async fn a_handler_answers_service_failures_by_the_contract() {
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("internal-handler-errors");
    let users = users().await;
    let gw = gateway(&dir, &pki, &users).await;
    let plain = gw.addr("plain").await.expect("plain listener");
    let client = Client::http1();
    let cases = [
        // (path, status, problem type slug or "" for the service's own body)
        ("/api/users/missing", StatusCode::NOT_FOUND, ""),
        (
            "/api/users/text",
            StatusCode::BAD_GATEWAY,
            "bad-upstream-response",
        ),
        (
            "/api/users/big",
            StatusCode::BAD_GATEWAY,
            "bad-upstream-response",
        ),
        (
            "/api/users/slow",
            StatusCode::GATEWAY_TIMEOUT,
            "upstream-timeout",
        ),
    ];
    for (path, want, slug) in cases {
        let started = std::time::Instant::now();
        let (status, h, body) = client.get(&format!("http://{plain}{path}")).await;
        assert_eq!(status, want, "{path}: {body:?}");
        let text = String::from_utf8_lossy(&body);
        if slug.is_empty() {
            assert_eq!(text, r#"{"title":"no such user"}"#, "{path}: relayed as is");
        } else {
            assert_eq!(
                header(&h, "content-type"),
                "application/problem+json",
                "{path}"
            );
            let v: serde_json::Value = serde_json::from_slice(&body).expect("problem json");
            let ty = v["type"].as_str().unwrap_or_default();
            assert!(ty.ends_with(slug), "{path}: {v}");
        }
        // The route's 800ms deadline bounds the whole handler (the slow service takes 2s).
        assert!(started.elapsed() < Duration::from_millis(1800), "{path}");
    }
}
