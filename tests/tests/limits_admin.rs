//! Connection limits (slowloris header timeout, idle timeout) and the admin endpoints.

use std::time::{Duration, Instant};

use gatehouse_tests::Client;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn proxy(
    limits: &str,
) -> (
    gatehouse_common::runtime::Running,
    gatehouse_tests::BackendHandle,
) {
    gatehouse_tests::proxy::with_limits(limits).await
}

/// Reads until EOF or `limit`; returns what was read and when the connection closed.
async fn read_until_closed(
    s: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (Vec<u8>, Option<Instant>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (buf, Some(Instant::now())),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return (buf, None),
        }
    }
}

/// A client sending one header byte at a time is cut off at the header-read timeout.
#[tokio::test]
async fn slowloris_is_cut_off_at_header_timeout() {
    let (p, be) = proxy("header_read_timeout: 500ms").await;
    let addr = p.addr("main").await.expect("listener");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    let request =
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed_at = None;
    for byte in request {
        if s.write_all(&[*byte]).await.is_err() {
            closed_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let closed_at = match closed_at {
        Some(t) => t,
        None => read_until_closed(&mut s, Duration::from_secs(3))
            .await
            .1
            .expect("connection closed"),
    };
    let after = closed_at.duration_since(started);
    assert!(after < Duration::from_secs(2), "cut off after {after:?}");
    assert_eq!(be.count(), 0, "the slow request reached the backend");
}

/// A keep-alive connection with nothing in flight is closed after the idle timeout; a normal
/// request on it before then is served.
#[tokio::test]
async fn idle_connections_are_closed() {
    let (p, _be) = proxy("idle_timeout: 400ms, header_read_timeout: 10s").await;
    let addr = p.addr("main").await.expect("listener");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let idle_from = Instant::now();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    let idle = closed
        .expect("idle connection closed")
        .duration_since(idle_from);
    assert!(
        idle >= Duration::from_millis(300) && idle < Duration::from_secs(2),
        "closed after {idle:?}"
    );
}

#[tokio::test]
async fn admin_endpoints() {
    let (p, _be) = proxy("max_concurrent_streams: 50").await;
    let admin = p.admin_addr;
    let main = p.addr("main").await.expect("listener");
    let c = Client::http1();
    let _ = c.get(&format!("http://{main}/hello")).await;
    let _ = c.get(&format!("http://{main}/hello")).await;

    let (s, _, b) = c.get(&format!("http://{admin}/healthz")).await;
    assert_eq!(s, StatusCode::OK, "{b:?}");
    let (s, _, _) = c.get(&format!("http://{admin}/readyz")).await;
    assert_eq!(s, StatusCode::OK);

    let (s, h, b) = c.get(&format!("http://{admin}/metrics")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        h["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8_lossy(&b);
    assert!(
        text.contains("gatehouse_requests_total{route=\"all\",status_class=\"2xx\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("gatehouse_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains("gatehouse_open_connections{listener=\"main\"}"),
        "{text}"
    );
    assert!(text.contains("gatehouse_in_flight_requests 0"), "{text}");

    let (s, _, b) = c.get(&format!("http://{admin}/config")).await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
    assert_eq!(v["binary"], "gatehouse-test");
    assert_eq!(v["config"]["limits"]["max_concurrent_streams"], 50);

    let (s, _, b) = c.get(&format!("http://{admin}/routes")).await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
    assert_eq!(v[0]["name"], "all");
    assert_eq!(v[0]["service"], "app");

    // Draining: /readyz turns 503 so load balancers stop sending.
    p.shutdown();
    p.wait().await;
    assert!(!p.is_ready());
}

/// Secrets never leave through `/config`.
#[test]
fn config_redaction() {
    let mut v = serde_json::json!({
        "jwt": { "client_secret": "s3cr3t", "issuer": "idp" },
        "keys": [{ "api_key": "k", "name": "partner" }],
        "password": "hunter2"
    });
    gatehouse_common::admin::redact(&mut v);
    let text = v.to_string();
    assert!(
        !text.contains("s3cr3t") && !text.contains("hunter2") && !text.contains("\"k\""),
        "{text}"
    );
    assert!(text.contains("partner") && text.contains("idp"));
}

/// An idle keep-alive connection is governed by the idle timeout, not the (shorter) header-read
/// timeout: a second request after a pause longer than the header timeout is served.
#[tokio::test]
async fn keep_alive_outlives_the_header_timeout() {
    let (p, _be) = proxy("header_read_timeout: 300ms, idle_timeout: 5s").await;
    let addr = p.addr("main").await.expect("listener");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut buf = [0u8; 2048];
    for _ in 0..2 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let n = s.read(&mut buf).await.expect("read");
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
}

/// A request head is read as raw bytes: the status line of the answer.
async fn status_of(addr: std::net::SocketAddr, head: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write");
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// At most 512 header fields in a request head; the 513th is refused with 431 before anything
/// reaches the backend.
#[tokio::test]
async fn a_request_head_holds_at_most_512_header_fields() {
    // A raw backend: a hyper one would itself refuse more than its default of 100 fields.
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend_addr = backend.local_addr().expect("addr");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = backend.accept().await {
            let mut head = Vec::new();
            let mut chunk = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                }
            }
            let fields = String::from_utf8_lossy(&head)
                .lines()
                .skip(1)
                .filter(|l| l.contains(':'))
                .count();
            if let Ok(mut seen) = record.lock() {
                seen.push(fields);
            }
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        }
    });
    let yaml = format!(
        "listeners: [{{ name: main, address: \"127.0.0.1:0\" }}]\nadmin: {{ address: \"127.0.0.1:0\" }}\nroutes: [{{ name: all, service: app }}]\nservices:\n  app: {{ endpoints: [\"{backend_addr}\"] }}\n"
    );
    let p = gatehouse_tests::proxy::start(&yaml).await;
    let addr = p.addr("main").await.expect("listener");
    for (fields, want) in [(512, "HTTP/1.1 200 OK"), (513, "HTTP/1.1 431")] {
        // `Host` and `Connection` are two of them.
        let extra: String = (0..fields - 2).map(|i| format!("X-F-{i}: v\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
        let status = status_of(addr, &head).await;
        assert!(status.starts_with(want), "{fields} fields: {status}");
    }
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        seen.len(),
        1,
        "only the request with 512 fields was forwarded: {seen:?}"
    );
    // Its 511 fields but `Connection` (hop-by-hop), and the forwarding headers the proxy adds.
    assert!(seen[0] > 511, "{seen:?}");
}

/// An upstream response head over 512 header fields is a bad gateway, with a problem body.
#[tokio::test]
async fn an_upstream_response_over_512_header_fields_is_502() {
    let be = gatehouse_tests::Backend::new()
        .handle("/", |_| async {
            let mut res = http::Response::new(gatehouse_common::body::full("many"));
            for i in 0..513 {
                let name = http::HeaderName::try_from(format!("x-f-{i}")).expect("name");
                res.headers_mut()
                    .insert(name, http::HeaderValue::from_static("v"));
            }
            res
        })
        .run()
        .await;
    let yaml = format!(
        "listeners: [{{ name: main, address: \"127.0.0.1:0\" }}]\nadmin: {{ address: \"127.0.0.1:0\" }}\nroutes: [{{ name: all, service: app }}]\nservices:\n  app: {{ endpoints: [\"{}\"], retry: {{ max_attempts: 1 }} }}\n",
        be.addr
    );
    let p = gatehouse_tests::proxy::start(&yaml).await;
    let addr = p.addr("main").await.expect("listener");
    let (status, headers, _) = Client::http1().get(&format!("http://{addr}/")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/problem+json"[..])
    );
}
