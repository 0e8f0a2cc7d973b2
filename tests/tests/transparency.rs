//! Transparency through the proxy core: what the client sent ↔ what the backend saw ↔ what came
//! back, over HTTP/1.1 and HTTP/2, with real sockets on 127.0.0.1.

use bytes::Bytes;
use gatehouse_common::body::{ProxyBody, empty, full};
use gatehouse_tests::backend::header_map;
use gatehouse_tests::{Backend, BackendHandle, Client, bodies, collect, start};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;

fn config(backend: &BackendHandle, protocol: &str) -> String {
    format!(
        r#"
listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
routes:
  - name: all
    service: app
services:
  app:
    endpoints: ["{}"]
    protocol: {protocol}
"#,
        backend.addr
    )
}

/// A backend that answers `/echo` with the body length it saw and response headers/trailers.
async fn backend() -> BackendHandle {
    Backend::new()
        .handle("/trailers", |_seen| async move {
            let mut t = HeaderMap::new();
            t.insert("grpc-status", HeaderValue::from_static("0"));
            t.insert("x-checksum", HeaderValue::from_static("abc"));
            let mut res = Response::new(bodies::with_trailers(vec!["part1", "part2"], t));
            res.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/grpc"));
            res
        })
        .handle("/", |seen| async move {
            let mut res = Response::new(full(format!("saw {} bytes", seen.body_len)));
            let h = res.headers_mut();
            h.insert("x-backend", HeaderValue::from_static("yes"));
            h.insert("connection", HeaderValue::from_static("x-internal"));
            h.insert("x-internal", HeaderValue::from_static("secret-hop"));
            h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
            res
        })
        .run()
        .await
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: fn() -> ProxyBody,
    /// Headers the backend must see with these exact values.
    backend_sees: Vec<(&'static str, &'static str)>,
    /// Headers the backend must not see.
    backend_lacks: Vec<&'static str>,
    backend_body_len: u64,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "plain GET with query and custom headers",
            method: "GET",
            path: "/api/items?id=7&sort=asc",
            headers: vec![("x-custom", "1"), ("accept", "application/json")],
            body: empty,
            backend_sees: vec![("x-custom", "1"), ("accept", "application/json")],
            backend_lacks: vec![],
            backend_body_len: 0,
        },
        Case {
            name: "Connection names a header: it is removed, and so are hop-by-hop headers",
            method: "GET",
            path: "/hop",
            headers: vec![
                ("connection", "x-foo"),
                ("x-foo", "drop me"),
                ("x-bar", "keep me"),
                ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ],
            body: empty,
            backend_sees: vec![("x-bar", "keep me")],
            backend_lacks: vec!["x-foo", "connection", "proxy-authorization", "keep-alive"],
            backend_body_len: 0,
        },
        Case {
            name: "POST with a streamed body of unknown length (chunked on HTTP/1.1)",
            method: "POST",
            path: "/upload",
            headers: vec![("content-type", "application/octet-stream")],
            body: || bodies::generated(300_000, 16 * 1024),
            backend_sees: vec![("content-type", "application/octet-stream")],
            backend_lacks: vec![],
            backend_body_len: 300_000,
        },
        Case {
            name: "PUT with a fixed-length body",
            method: "PUT",
            path: "/items/7",
            headers: vec![("content-length", "11")],
            body: || full("hello world"),
            backend_sees: vec![("content-length", "11")],
            backend_lacks: vec![],
            backend_body_len: 11,
        },
        Case {
            name: "client request id is propagated; a valid traceparent keeps its trace id",
            method: "GET",
            path: "/ids",
            headers: vec![
                ("x-request-id", "req-12345"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
                ("tracestate", "vendor=abc"),
            ],
            body: empty,
            backend_sees: vec![("x-request-id", "req-12345"), ("tracestate", "vendor=abc")],
            backend_lacks: vec![],
            backend_body_len: 0,
        },
        Case {
            name: "an invalid traceparent is replaced and its tracestate dropped",
            method: "GET",
            path: "/badtrace",
            headers: vec![("traceparent", "garbage"), ("tracestate", "vendor=abc")],
            body: empty,
            backend_sees: vec![],
            backend_lacks: vec!["tracestate"],
            backend_body_len: 0,
        },
    ]
}

async fn run_table(client: Client, protocol: &str) {
    let be = backend().await;
    let proxy = start(&config(&be, protocol)).await;
    let addr = proxy.addr("main").await.expect("listener");
    for case in cases() {
        let mut req = Request::builder()
            .method(case.method)
            .uri(format!("http://{addr}{}", case.path));
        for (k, v) in &case.headers {
            req = req.header(*k, *v);
        }
        let req = req.body((case.body)()).expect("request");
        let (status, headers, body) = collect(client.send(req).await).await;
        let ctx = format!(
            "[{} / client h2={} / upstream {protocol}]",
            case.name, client.h2
        );
        assert_eq!(status, StatusCode::OK, "{ctx}");
        assert_eq!(
            body,
            Bytes::from(format!("saw {} bytes", case.backend_body_len)),
            "{ctx}"
        );
        // What came back: the backend's header, without its hop-by-hop ones; our Via and id.
        assert_eq!(
            headers.get("x-backend").map(|v| v.as_bytes()),
            Some(&b"yes"[..]),
            "{ctx}"
        );
        assert!(
            headers.get("x-internal").is_none(),
            "{ctx}: Connection-named response header leaked"
        );
        assert!(headers.get("keep-alive").is_none(), "{ctx}");
        assert!(headers.get("via").is_some(), "{ctx}");
        assert!(headers.get("x-request-id").is_some(), "{ctx}");

        // What the backend saw.
        let seen = be.last();
        assert_eq!(seen.method.as_str(), case.method, "{ctx}");
        assert_eq!(seen.uri, case.path, "{ctx}");
        assert_eq!(seen.body_len, case.backend_body_len, "{ctx}");
        let h = header_map(&seen.headers);
        for (k, v) in &case.backend_sees {
            assert_eq!(h.get(*k), Some(&vec![v.to_string()]), "{ctx}: header {k}");
        }
        for k in &case.backend_lacks {
            assert!(!h.contains_key(*k), "{ctx}: backend saw {k}");
        }
        assert_eq!(
            h.get("x-forwarded-for"),
            Some(&vec!["127.0.0.1".to_string()]),
            "{ctx}"
        );
        assert_eq!(
            h.get("x-forwarded-proto"),
            Some(&vec!["http".to_string()]),
            "{ctx}"
        );
        assert_eq!(
            h.get("x-forwarded-host"),
            Some(&vec![addr.to_string()]),
            "{ctx}"
        );
        let via = &h["via"][0];
        assert!(via.ends_with("gatehouse"), "{ctx}: via {via}");
        let rid = &h["x-request-id"][0];
        assert_eq!(
            headers
                .get("x-request-id")
                .map(|v| v.to_str().unwrap_or_default()),
            Some(rid.as_str()),
            "{ctx}: response carries the request id the backend saw"
        );
        let tp = &h["traceparent"][0];
        assert_eq!(tp.len(), 55, "{ctx}: traceparent {tp}");
        if case.name.starts_with("client request id") {
            assert!(
                tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{ctx}"
            );
            assert!(
                !tp.contains("00f067aa0ba902b7"),
                "{ctx}: parent id must be replaced"
            );
        }
    }
}

#[tokio::test]
async fn transparency_http1_to_http1() {
    run_table(Client::http1(), "http1").await;
}

#[tokio::test]
async fn transparency_h2_to_http1() {
    run_table(Client::h2c(), "http1").await;
}

#[tokio::test]
async fn transparency_h2_to_h2c() {
    run_table(Client::h2c(), "h2c").await;
}

#[tokio::test]
async fn transparency_http1_to_h2c() {
    run_table(Client::http1(), "h2c").await;
}

/// Trailers pass both ways over HTTP/2 (what gRPC needs).
#[tokio::test]
async fn trailers_pass_through_h2() {
    let be = backend().await;
    let proxy = start(&config(&be, "h2c")).await;
    let addr = proxy.addr("main").await.expect("listener");
    let mut req_trailers = HeaderMap::new();
    req_trailers.insert("x-req-trailer", HeaderValue::from_static("t1"));
    let req = Request::post(format!("http://{addr}/trailers"))
        .header("te", "trailers")
        .header("content-type", "application/grpc")
        .body(bodies::with_trailers(vec!["a", "b"], req_trailers))
        .expect("request");
    let res = Client::h2c().send(req).await;
    assert_eq!(res.status(), StatusCode::OK);
    let collected = res.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned().expect("response trailers");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-checksum"], "abc");
    assert_eq!(collected.to_bytes(), Bytes::from_static(b"part1part2"));
    let seen = be.last();
    assert_eq!(seen.body_len, 2);
    assert_eq!(
        seen.headers.get("te").map(|v| v.as_bytes()),
        Some(&b"trailers"[..])
    );
    let t = seen.trailers.expect("backend saw request trailers");
    assert_eq!(t["x-req-trailer"], "t1");
}

/// A 100 MiB upload streams through without the process growing by more than a few MiB.
#[tokio::test]
async fn streams_100_mib_without_buffering() {
    const TOTAL: u64 = 100 * 1024 * 1024;
    let be = backend().await;
    let yaml = config(&be, "http1").replace(
        "routes:",
        "limits:\n  max_request_body_bytes: 200MiB\nroutes:",
    );
    let proxy = start(&yaml).await;
    let addr = proxy.addr("main").await.expect("listener");
    // Warm up pools and allocator so the measurement sees the streaming, not first-use costs.
    let _ = Client::http1().get(&format!("http://{addr}/warm")).await;
    let before = gatehouse_tests::rss_bytes();
    for client in [Client::http1(), Client::h2c()] {
        let req = Request::post(format!("http://{addr}/big"))
            .body(bodies::generated(TOTAL, 64 * 1024))
            .expect("request");
        let (status, _, body) = collect(client.send(req).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, Bytes::from(format!("saw {TOTAL} bytes")));
    }
    let after = gatehouse_tests::rss_bytes();
    let growth_mib = after.saturating_sub(before) as f64 / (1024.0 * 1024.0);
    println!(
        "RSS before {before} after {after}: grew {growth_mib:.1} MiB for 2 x 100 MiB streamed"
    );
    assert!(
        growth_mib < 16.0,
        "process grew {growth_mib:.1} MiB while streaming 100 MiB: the body is being buffered"
    );
}
