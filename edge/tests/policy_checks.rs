//! A policy's own checks through real sockets: CORS (preflights answered at the edge, headers on
//! actual responses), per-policy URI/header/body limits, and JSON Schema validation of bodies.

mod support;

use gatehouse_certs::test_util::jwt_keys;
use gatehouse_certs::{JwtAlg, TokenRequest};
use gatehouse_common::body::full;
use gatehouse_tests::Backend;
use http::{HeaderMap, StatusCode};
use support::*;

const ORIGIN: &str = "https://app.example";

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["product_id", "quantity"],
  "properties": {
    "product_id": { "type": "string", "minLength": 1 },
    "quantity": { "type": "integer", "minimum": 1 }
  },
  "additionalProperties": false
}"#;

struct Fixture {
    edge: Edge,
    token: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("dir");
    let keys = jwt_keys(JwtAlg::Es256);
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks(&[&keys])).expect("write jwks");
    let schema = dir.path().join("order.schema.json");
    std::fs::write(&schema, SCHEMA).expect("write schema");
    let section = format!(
        r#"  jwt:
    issuers:
      - issuer: {ISSUER}
        audiences: [gatehouse]
        jwks_file: {jwks}
  policies:
    - name: app
      path_prefix: /api/app
      methods: [GET, POST]
      auth: jwt
      cors:
        allow_origins: ["{ORIGIN}", "https://admin.example"]
        allow_headers: [authorization, content-type]
        expose_headers: [x-request-id, ratelimit]
        allow_credentials: true
        max_age: 10m
    - name: any-origin
      path_prefix: /api/any
      auth: none
      cors: {{ allow_origins: ["*"] }}
    - name: orders
      path_prefix: /api/orders
      methods: [GET, POST]
      auth: none
      json_schema: {schema}
      max_body_bytes: 1KiB
    # One path, a reading and a writing policy.
    - {{ name: items-read, path_prefix: /api/items, methods: [GET], auth: none }}
    - {{ name: items-write, path_prefix: /api/items, methods: [POST], auth: jwt }}
    - {{ name: items-admin, path_prefix: /api/items/admin, methods: [GET], auth: jwt }}
    - name: upload
      path_prefix: /api/upload
      auth: none
      max_body_bytes: 64KiB
      max_uri_bytes: 100
      max_header_bytes: 2KiB
# Top level again: the listeners' own body limit, below the upload policy's.
limits:
  max_request_body_bytes: 16KiB
"#,
        jwks = jwks_file.display(),
        schema = schema.display(),
    );
    let backend = Backend::new().route("/", "ok").run().await;
    let edge = start(backend, &section).await;
    let token = token(&keys, &TokenRequest::new("alice"));
    Fixture {
        edge,
        token,
        _dir: dir,
    }
}

/// Two policies on one prefix, by method: each request gets the policy that allows its method;
/// a method neither allows is 405 with the first one's `Allow`.
#[tokio::test]
async fn one_prefix_can_have_a_policy_per_method() {
    let f = fixture().await;
    let bearer = format!("Bearer {}", f.token);
    #[rustfmt::skip]
    let table: [(&str, &str, Option<&str>, StatusCode); 6] = [
        ("GET", "/api/items/1", None, StatusCode::OK),
        ("POST", "/api/items", None, StatusCode::UNAUTHORIZED),
        ("POST", "/api/items", Some(bearer.as_str()), StatusCode::OK),
        ("DELETE", "/api/items/1", Some(bearer.as_str()), StatusCode::METHOD_NOT_ALLOWED),
        // A longer prefix that refuses the method is not bypassed by a shorter one.
        ("POST", "/api/items/admin", Some(bearer.as_str()), StatusCode::METHOD_NOT_ALLOWED),
        ("GET", "/api/items/admin", None, StatusCode::UNAUTHORIZED),
    ];
    for (method, path, auth, want) in table {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (status, h, body) = f.edge.send(method, path, &headers).await;
        assert_eq!(status, want, "{method} {path}: {body}");
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(get(&h, "allow"), Some("GET"), "{method} {path}");
        }
    }
}

fn get<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn cors_preflights_are_answered_at_the_edge() {
    let f = fixture().await;
    let edge = &f.edge;
    let before = edge.backend.count();

    // Allowed: no credentials needed (browsers send none on a preflight).
    let (status, h, _) = edge
        .send(
            "OPTIONS",
            "/api/app/items",
            &[
                ("origin", ORIGIN),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "Content-Type, Authorization",
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(get(&h, "access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(get(&h, "access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(
        get(&h, "access-control-allow-headers"),
        Some("content-type, authorization")
    );
    assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
    assert_eq!(get(&h, "access-control-max-age"), Some("600"));
    assert_eq!(get(&h, "vary"), Some("Origin"));

    // Refused, each for its own reason, with a problem body.
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let refused: [(&str, &str, Headers); 3] = [
        ("origin", "https://evil.example", &[]),
        (
            "method",
            ORIGIN,
            &[("access-control-request-method", "DELETE")],
        ),
        (
            "header",
            ORIGIN,
            &[("access-control-request-headers", "x-custom")],
        ),
    ];
    for (why, origin, extra) in refused {
        let mut headers = vec![("origin", origin)];
        if !extra
            .iter()
            .any(|(k, _)| *k == "access-control-request-method")
        {
            headers.push(("access-control-request-method", "GET"));
        }
        headers.extend_from_slice(extra);
        let (status, h, body) = edge.send("OPTIONS", "/api/app/items", &headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{why}: {body}");
        assert_eq!(get(&h, "content-type"), Some("application/problem+json"));
        assert!(body.contains("cors-refused"), "{why}: {body}");
        assert_eq!(get(&h, "access-control-allow-origin"), None, "{why}");
    }

    // "*": any origin; the requested method is echoed when the policy allows any.
    let (status, h, _) = edge
        .send(
            "OPTIONS",
            "/api/any/x",
            &[
                ("origin", "https://whoever.example"),
                ("access-control-request-method", "PUT"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(get(&h, "access-control-allow-origin"), Some("*"));
    assert_eq!(get(&h, "access-control-allow-methods"), Some("PUT"));
    assert_eq!(get(&h, "vary"), None);
    assert_eq!(
        edge.backend.count(),
        before,
        "a preflight reached the backend"
    );

    // OPTIONS without Access-Control-Request-Method is an ordinary request.
    let (status, _, _) = edge
        .send(
            "OPTIONS",
            "/api/any/x",
            &[("origin", "https://whoever.example")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(edge.backend.count(), before + 1);
}

#[tokio::test]
async fn cors_headers_on_actual_responses_errors_included() {
    let f = fixture().await;
    let edge = &f.edge;
    let bearer = format!("Bearer {}", f.token);

    let (status, h, _) = edge
        .send(
            "GET",
            "/api/app/items",
            &[("origin", ORIGIN), ("authorization", &bearer)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get(&h, "access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        get(&h, "access-control-expose-headers"),
        Some("x-request-id, ratelimit")
    );
    assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
    assert_eq!(get(&h, "vary"), Some("Origin"));

    // A 401 is readable by the calling script too.
    let (status, h, _) = edge
        .send("GET", "/api/app/items", &[("origin", ORIGIN)])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&h, "access-control-allow-origin"), Some(ORIGIN));

    // Another origin is served (CORS binds browsers, not servers) but gets no allowance.
    let (status, h, _) = edge
        .send(
            "GET",
            "/api/app/items",
            &[
                ("origin", "https://evil.example"),
                ("authorization", &bearer),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get(&h, "access-control-allow-origin"), None);
    assert_eq!(get(&h, "vary"), Some("Origin"));

    // No CORS settings, no CORS headers.
    let (_, h, _) = edge
        .send("GET", "/api/orders/1", &[("origin", ORIGIN)])
        .await;
    assert_eq!(get(&h, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn json_bodies_are_checked_against_the_policy_schema() {
    let f = fixture().await;
    let edge = &f.edge;
    let json = [("content-type", "application/json")];

    let good = r#"{"product_id":"p-1","quantity":2}"#;
    let (status, _, body) = edge
        .send_body("POST", "/api/orders", &json, full(good))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = edge.backend.last();
    assert_eq!(
        seen.body_head,
        good.as_bytes(),
        "the body is forwarded unchanged"
    );
    assert_eq!(seen.body_len, good.len() as u64);

    let before = edge.backend.count();
    // (body, content type, status, text the problem body must contain)
    let table: [(&str, &str, StatusCode, &str); 6] = [
        (
            r#"{"quantity":2}"#,
            "application/json",
            StatusCode::BAD_REQUEST,
            "product_id",
        ),
        (
            r#"{"product_id":"p-1","quantity":"two"}"#,
            "application/json; charset=utf-8",
            StatusCode::BAD_REQUEST,
            "at /quantity",
        ),
        (
            r#"{"product_id":"p-1","quantity":0}"#,
            "application/vnd.shop+json",
            StatusCode::BAD_REQUEST,
            "at /quantity",
        ),
        (
            r#"{"product_id":"p-1","#,
            "application/json",
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            "",
            "application/json",
            StatusCode::BAD_REQUEST,
            "invalid-json",
        ),
        (
            good,
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        ),
    ];
    for (body, ct, status, text) in table {
        let (got, h, answer) = edge
            .send_body("POST", "/api/orders", &[("content-type", ct)], full(body))
            .await;
        assert_eq!(got, status, "{body} ({ct}): {answer}");
        assert_eq!(get(&h, "content-type"), Some("application/problem+json"));
        assert!(answer.contains(text), "{body}: {answer}");
    }
    assert_eq!(
        edge.backend.count(),
        before,
        "an invalid body reached the backend"
    );

    // GET carries no document: not checked.
    let (status, _, _) = edge.send("GET", "/api/orders/7", &[]).await;
    assert_eq!(status, StatusCode::OK);
}

/// A body without a length (chunked over HTTP/1.1) of `n` bytes.
fn streamed(n: usize) -> gatehouse_common::body::ProxyBody {
    use http_body_util::BodyExt;
    let chunks = (0..n.div_ceil(1024)).map(move |i| {
        let len = 1024.min(n - i * 1024);
        Ok::<_, gatehouse_common::BoxError>(http_body::Frame::data(bytes::Bytes::from(vec![
            b'a';
            len
        ])))
    });
    http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed_unsync()
}

#[tokio::test]
async fn policies_set_their_own_size_limits() {
    let f = fixture().await;
    let edge = &f.edge;
    let octets = [("content-type", "application/octet-stream")];

    // Upload allows 64 KiB, above the listeners' 16 KiB: with a length and streamed.
    let big = "a".repeat(40 * 1024);
    let (status, _, body) = edge
        .send_body("PUT", "/api/upload/f", &octets, full(big.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(edge.backend.last().body_len, 40 * 1024);
    let (status, _, body) = edge
        .send_body("PUT", "/api/upload/f", &octets, streamed(40 * 1024))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let before = edge.backend.count();
    let (status, _, _) = edge
        .send_body("PUT", "/api/upload/f", &octets, full("a".repeat(65 * 1024)))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Elsewhere the listeners' 16 KiB applies.
    let (status, _, _) = edge
        .send_body("PUT", "/api/any/f", &octets, full(big))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Orders take 1 KiB, also when the body has no length (it is read for the schema).
    let (status, _, _) = edge
        .send_body(
            "POST",
            "/api/orders",
            &[("content-type", "application/json")],
            streamed(2048),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        edge.backend.count(),
        before,
        "an oversized body was forwarded whole"
    );

    // URI: 100 bytes on upload, the edge's 8 KiB elsewhere.
    let query = format!("?q={}", "x".repeat(120));
    let (status, _, _) = edge
        .send("GET", &format!("/api/upload/f{query}"), &[])
        .await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    let (status, _, _) = edge.send("GET", &format!("/api/any/f{query}"), &[]).await;
    assert_eq!(status, StatusCode::OK);

    // Headers: 2 KiB on upload, the listeners' 32 KiB elsewhere.
    let cookie = "c".repeat(3000);
    let (status, h, _) = edge
        .send("GET", "/api/upload/f", &[("cookie", &cookie)])
        .await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(get(&h, "content-type"), Some("application/problem+json"));
    let (status, _, _) = edge.send("GET", "/api/any/f", &[("cookie", &cookie)]).await;
    assert_eq!(status, StatusCode::OK);
}

/// Settings that cannot work are refused at load, naming the key.
#[tokio::test]
async fn bad_policy_settings_are_refused_with_the_key() {
    let backend = Backend::new().route("/", "ok").run().await;
    let open = "  policies:\n    - name: p\n      path_prefix: /\n      auth: none\n";
    let dir = tempfile::tempdir().expect("dir");
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, r#"{"type": "object"}"#).expect("schema");
    // (extra policy keys or edge keys, the key path the error names)
    let table = [
        (
            format!("{open}      grpc_web: true\n      methods: [GET]\n"),
            "edge.policies[0].methods",
        ),
        (
            format!(
                "{open}      grpc_web: true\n      json_schema: {}\n",
                schema.display()
            ),
            "edge.policies[0].json_schema",
        ),
        (
            format!("{open}      cors: {{ allow_origins: [\"*\"], allow_credentials: true }}\n"),
            "edge.policies[0].cors.allow_credentials",
        ),
        (
            format!("{open}      cors: {{ allow_origins: [\"https://a.example/path\"] }}\n"),
            "edge.policies[0].cors.allow_origins",
        ),
        (
            format!("{open}      json_schema: /nonexistent/schema.json\n"),
            "edge.policies[0].json_schema",
        ),
        (
            format!("{open}      max_header_bytes: 64KiB\n"),
            "edge.policies[0].max_header_bytes",
        ),
        (
            format!("{open}  https_redirect: {{ listeners: [publik] }}\n"),
            "edge.https_redirect.listeners[0]",
        ),
    ];
    for (section, key) in table {
        let yaml = config(&backend, &section);
        let loaded = gatehouse_common::config::parse::<gatehouse_common::settings::ProxySettings>(
            "edge.yaml",
            &yaml,
        )
        .expect("parses");
        let err = match gatehouse_edge::run(loaded, None).await {
            Ok(_) => panic!("{section} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(key), "{key}: {err}");
        assert!(err.contains("edge.yaml:"), "{err}");
    }
}

/// Upstream failures reach public clients without internal names or addresses.
#[tokio::test]
async fn upstream_failures_name_nothing_internal() {
    let yaml = "listeners:\n  - name: public\n    address: 127.0.0.1:0\nadmin:\n  address: 127.0.0.1:0\n\
                routes:\n  - name: all\n    service: internal\n\
                services:\n  internal:\n    endpoints: [\"127.0.0.1:1\"]\n\
                edge:\n  policies: [{ name: open, path_prefix: /, auth: none }]\n";
    let loaded = gatehouse_common::config::parse::<gatehouse_common::settings::ProxySettings>(
        "edge.yaml",
        yaml,
    )
    .expect("config");
    let running = gatehouse_edge::run(loaded, None).await.expect("edge");
    let addr = running.addr("public").await.expect("listener");
    let (status, h, body) = gatehouse_tests::Client::http1()
        .get(&format!("http://{addr}/x"))
        .await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(get(&h, "content-type"), Some("application/problem+json"));
    assert!(body.contains("the service could not be reached"), "{body}");
    for leak in ["127.0.0.1", "internal", "refused"] {
        assert!(!body.contains(leak), "{leak} in {body}");
    }
    running.shutdown();
}
