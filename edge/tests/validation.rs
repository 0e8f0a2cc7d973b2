//! Validation through real sockets: path traversal and encoding table, method allow-lists,
//! URI length, request smuggling; the backend never sees a refused request.

mod support;

use gatehouse_certs::JwtAlg;
use gatehouse_certs::test_util::jwt_keys;
use gatehouse_tests::Backend;
use http::StatusCode;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn edge() -> (Edge, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[&jwt_keys(JwtAlg::Es256)])).expect("write");
    let section = format!(
        r#"  jwt:
    issuers:
      - issuer: {ISSUER}
        audiences: [gatehouse]
        jwks_file: {}
  policies:
    - name: public
      path_prefix: /api/public
      methods: [GET, POST]
      auth: none
    - name: admin
      path_prefix: /admin
      auth: jwt
"#,
        path.display()
    );
    let backend = Backend::new().route("/", "ok").run().await;
    (start(backend, &section).await, dir)
}

#[tokio::test]
async fn path_and_method_table() {
    let (edge, _dir) = edge().await;
    // (method, path, status, what the backend saw when forwarded)
    let table: &[(&str, &str, StatusCode, Option<&str>)] = &[
        (
            "GET",
            "/api/public/ok",
            StatusCode::OK,
            Some("/api/public/ok"),
        ),
        (
            "GET",
            "/api/public/./x//y?q=1",
            StatusCode::OK,
            Some("/api/public/x/y?q=1"),
        ),
        (
            "GET",
            "/api/public/%61bc",
            StatusCode::OK,
            Some("/api/public/abc"),
        ),
        ("GET", "/api/public/../admin", StatusCode::NOT_FOUND, None),
        (
            "GET",
            "/api/public/../../admin",
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            "GET",
            "/api/public/%2e%2e/%2E%2E/admin",
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            "GET",
            "/api/public/%2E%2E/%2e%2e/admin/x",
            StatusCode::UNAUTHORIZED,
            None,
        ),
        ("GET", "//admin", StatusCode::UNAUTHORIZED, None),
        ("GET", "/api/public/a%2Fb", StatusCode::BAD_REQUEST, None),
        ("GET", "/api/public/a%2fb", StatusCode::BAD_REQUEST, None),
        ("GET", "/api/public/a%00b", StatusCode::BAD_REQUEST, None),
        ("GET", "/api/public/a%zz", StatusCode::BAD_REQUEST, None),
        ("GET", "/api/publicity", StatusCode::NOT_FOUND, None),
        ("GET", "/elsewhere", StatusCode::NOT_FOUND, None),
        (
            "DELETE",
            "/api/public/x",
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        ),
    ];
    for (method, path, status, seen) in table {
        let before = edge.backend.count();
        let (got, headers, body) = edge.send(method, path, &[]).await;
        assert_eq!(got, *status, "{method} {path}: {body}");
        match seen {
            Some(uri) => assert_eq!(edge.backend.last().uri, *uri, "{path}"),
            None => {
                assert_eq!(edge.backend.count(), before, "{path} reached the backend");
                assert_eq!(headers["content-type"], "application/problem+json");
            }
        }
        if *status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(headers["allow"], "GET, POST");
        }
    }
    // URI longer than 8 KiB → 414.
    let long = format!("/api/public/{}", "a".repeat(9000));
    let (status, _, _) = edge.send("GET", &long, &[]).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
}

/// Sends raw bytes and returns everything the edge answered until it closed.
async fn raw(edge: &Edge, request: &str) -> String {
    let addr = edge.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut buf))
        .await
        .expect("the edge closes the connection");
    String::from_utf8_lossy(&buf).into_owned()
}

/// hyper resolves Content-Length + Transfer-Encoding itself (RFC 9112 §6.1): chunked wins,
/// Content-Length is removed, and the connection is closed after the response, so the
/// request smuggled behind the chunked body is never read. Conflicting Content-Lengths → 400.
#[tokio::test]
async fn smuggling_is_refused() {
    let (edge, _dir) = edge().await;
    let both = "POST /api/public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\
                Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
    let answer = raw(&edge, both).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "smuggled request answered"
    );
    assert_eq!(edge.backend.count(), 1);
    let seen = edge.backend.last();
    assert_eq!((seen.uri.as_str(), seen.body_len), ("/api/public/x", 0));
    assert!(seen.headers.get("content-length").is_none());

    let dup = "POST /api/public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\
               Content-Length: 7\r\n\r\nhello";
    let answer = raw(&edge, dup).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(edge.backend.count(), 1);
}
