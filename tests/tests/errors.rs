//! Every error the proxy core answers itself: status, problem+json body with the request id,
//! or gRPC status for gRPC requests.

use std::time::Duration;

use gatehouse_common::body::{empty, full};
use gatehouse_tests::{Backend, Client, bodies, collect, start};
use http::{Request, Response, StatusCode};
use serde_json::Value;

/// A port that refuses connections: bound, then closed.
async fn closed_port() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr
}

async fn proxy_with_failures() -> (
    gatehouse_common::runtime::Running,
    gatehouse_tests::BackendHandle,
) {
    let slow = Backend::new()
        .handle("/", |_| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Response::new(full("too late"))
        })
        .run()
        .await;
    let dead = closed_port().await;
    let yaml = format!(
        r#"
listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
limits:
  max_request_body_bytes: 1KiB
  max_request_header_bytes: 4KiB
routes:
  - name: dead
    match: {{ path_prefix: /dead }}
    service: dead
  - name: slow
    match: {{ path_prefix: /slow }}
    service: slow
services:
  dead:
    endpoints: ["{dead}"]
  slow:
    endpoints: ["{slow}"]
    timeouts:
      request: 200ms
"#,
        slow = slow.addr
    );
    (start(&yaml).await, slow)
}

fn problem(status: StatusCode, headers: &http::HeaderMap, body: &[u8], want: StatusCode) -> Value {
    assert_eq!(status, want, "body: {}", String::from_utf8_lossy(body));
    assert_eq!(headers["content-type"], "application/problem+json");
    let v: Value = serde_json::from_slice(body).expect("problem body is JSON");
    assert_eq!(v["status"], want.as_u16());
    assert!(
        v["type"]
            .as_str()
            .unwrap_or("")
            .starts_with("urn:gatehouse:problem:")
    );
    assert!(v["title"].is_string() && v["detail"].is_string());
    let rid = headers["x-request-id"].to_str().expect("ascii");
    assert_eq!(
        v["request_id"], rid,
        "problem carries the response's request id"
    );
    v
}

#[tokio::test]
async fn error_statuses_have_problem_bodies() {
    let (proxy, _slow) = proxy_with_failures().await;
    let addr = proxy.addr("main").await.expect("listener");
    for client in [Client::http1(), Client::h2c()] {
        // 404: no route, with the client's request id echoed.
        let req = Request::get(format!("http://{addr}/nowhere"))
            .header("x-request-id", "trace-me-404")
            .body(empty())
            .expect("req");
        let (s, h, b) = collect(client.send(req).await).await;
        let v = problem(s, &h, &b, StatusCode::NOT_FOUND);
        assert_eq!(v["request_id"], "trace-me-404");
        assert_eq!(v["instance"], "/nowhere");

        // 502: connection refused.
        let (s, h, b) = client.get(&format!("http://{addr}/dead/x")).await;
        let v = problem(s, &h, &b, StatusCode::BAD_GATEWAY);
        assert!(v["detail"].as_str().unwrap_or("").contains("dead"), "{v}");

        // 504: the service takes longer than its request timeout.
        let started = std::time::Instant::now();
        let (s, h, b) = client.get(&format!("http://{addr}/slow")).await;
        problem(s, &h, &b, StatusCode::GATEWAY_TIMEOUT);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "timeout not applied"
        );

        // 413: declared length over the limit, refused before contacting anything.
        let req = Request::post(format!("http://{addr}/dead"))
            .header("content-length", "2048")
            .body(full(vec![b'a'; 2048]))
            .expect("req");
        let (s, h, b) = collect(client.send(req).await).await;
        problem(s, &h, &b, StatusCode::PAYLOAD_TOO_LARGE);

        // 431: headers over the limit.
        let req = Request::get(format!("http://{addr}/dead"))
            .header("x-big", "b".repeat(5000))
            .body(empty())
            .expect("req");
        let (s, h, b) = collect(client.send(req).await).await;
        problem(s, &h, &b, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
}

/// `error_details: public`: upstream failures say what happened, not where.
#[tokio::test]
async fn public_error_details_name_nothing_internal() {
    let dead = closed_port().await;
    let yaml = format!(
        "listeners: [{{ name: main, address: \"127.0.0.1:0\" }}]\nadmin: {{ address: \"127.0.0.1:0\" }}\n\
         error_details: public\nroutes: [{{ name: all, service: secret-svc }}]\n\
         services:\n  secret-svc:\n    endpoints: [\"{dead}\"]\n"
    );
    let proxy = start(&yaml).await;
    let addr = proxy.addr("main").await.expect("listener");
    let (s, h, b) = Client::http1().get(&format!("http://{addr}/x")).await;
    let v = problem(s, &h, &b, StatusCode::BAD_GATEWAY);
    assert_eq!(v["detail"], "the service could not be reached");
    let text = String::from_utf8_lossy(&b);
    for leak in ["secret-svc", "127.0.0.1", "refused"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

/// A streamed body of unknown length that grows past the limit is cut off with 413, whether
/// the service is reached over HTTP/1.1 or HTTP/2 (where the upstream only sees a reset), and
/// the service is not held responsible for it.
#[tokio::test]
async fn streamed_body_over_limit_is_413() {
    let sink = Backend::new().route("/", "ok").run().await;
    let yaml = format!(
        r#"
listeners: [{{ name: main, address: "127.0.0.1:0" }}]
admin: {{ address: "127.0.0.1:0" }}
limits: {{ max_request_body_bytes: 64KiB }}
routes:
  - {{ name: h1, match: {{ path_prefix: /h1 }}, service: sink }}
  - {{ name: h2, match: {{ path_prefix: /h2 }}, service: sink-h2 }}
services:
  sink: {{ endpoints: ["{0}"], failure_breaker: {{ consecutive_failures: 1 }} }}
  sink-h2: {{ endpoints: ["{0}"], protocol: h2c, failure_breaker: {{ consecutive_failures: 1 }} }}
"#,
        sink.addr
    );
    let proxy = start(&yaml).await;
    let addr = proxy.addr("main").await.expect("listener");
    for service in ["h1", "h2"] {
        for client in [Client::http1(), Client::h2c()] {
            let req = Request::post(format!("http://{addr}/{service}/upload"))
                .body(bodies::generated(1024 * 1024, 8 * 1024))
                .expect("req");
            // The proxy may answer before it has read the whole upload; either the 413 arrives
            // or, on HTTP/1.1, the connection closes under the client's feet after it.
            match client.try_send(req).await {
                Ok(res) => {
                    let (s, h, b) = collect(res).await;
                    problem(s, &h, &b, StatusCode::PAYLOAD_TOO_LARGE);
                }
                Err(e) => panic!("{service}: client {} got no answer: {e:?}", client.h2),
            }
        }
        // The breaker would have opened on one failure counted against the service.
        let (s, _, b) = Client::http1()
            .get(&format!("http://{addr}/{service}/after"))
            .await;
        assert_eq!(s, StatusCode::OK, "{service}: {b:?}");
    }
    assert!(
        sink.seen()
            .iter()
            .all(|s| s.body_len <= 64 * 1024 + 8 * 1024)
    );
}

/// gRPC requests get a trailers-only gRPC status instead of a problem body.
#[tokio::test]
async fn grpc_errors_are_grpc_statuses() {
    let (proxy, _slow) = proxy_with_failures().await;
    let addr = proxy.addr("main").await.expect("listener");
    for (path, code) in [
        ("/dead/pkg.Svc/Call", "14"),
        ("/pkg.Nope/Call", "12"),
        ("/slow/pkg.Svc/Call", "4"),
    ] {
        let req = Request::post(format!("http://{addr}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(empty())
            .expect("req");
        let (s, h, _) = collect(Client::h2c().send(req).await).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(h["grpc-status"], code, "{path}");
        assert!(h.get("grpc-message").is_some(), "{path}");
        assert!(h.get("x-request-id").is_some(), "{path}");
    }
}
