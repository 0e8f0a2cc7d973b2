//! Authentication and authorization through real sockets: the JWT attack table (every case
//! 401, none reaching the backend), scopes, API keys, identity forwarding, JWKS from a URL.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gatehouse_certs::test_util::jwt_keys;
use gatehouse_certs::{JwtAlg, TokenRequest};
use gatehouse_common::body::full;
use gatehouse_edge::api_key::hash_hex;
use gatehouse_tests::Backend;
use http::{Response, StatusCode};
use support::*;

fn edge_yaml(jwks_file: &str) -> String {
    format!(
        r#"  jwt:
    issuers:
      - issuer: {ISSUER}
        audiences: [gatehouse]
        jwks_file: {jwks_file}
  api_keys:
    keys:
      - name: partner
        sha256: {}
        scopes: [orders:read]
  policies:
    - name: orders
      path_prefix: /orders
      auth: jwt
      authorize:
        scopes: {{ all_of: [orders:read] }}
      forward_claims: [tenant]
    - name: admin
      path_prefix: /admin
      auth: jwt
      authorize:
        scopes: {{ any_of: [admin] }}
        roles: {{ claim: realm_access.roles, any_of: [ops] }}
    - name: mixed
      path_prefix: /mixed
      auth: {{ any_of: [jwt, api_key] }}
      forward_authorization: true
    - name: query
      path_prefix: /query
      auth: jwt
      token_in_query: true
"#,
        hash_hex("s3cret-partner-key")
    )
}

#[tokio::test]
async fn jwt_attack_table_all_401_none_reach_the_backend() {
    let dir = tempfile::tempdir().expect("dir");
    let good = jwt_keys(JwtAlg::Rs256);
    let other = jwt_keys(JwtAlg::Rs256);
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[&good])).expect("write");
    let backend = Backend::new().route("/", "ok").run().await;
    let edge = start(backend, &edge_yaml(&path.display().to_string())).await;

    let base = || TokenRequest::new("alice").scope("orders:read");
    let hour_ago = SystemTime::now() - Duration::from_secs(7200);
    let future = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("time")
        .as_secs()
        + 3600;
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", alg_none(&base()), "malformed token"),
        (
            "HS256 with the RSA public key as secret",
            hs256(&base(), public_pem(&good).as_bytes(), good.kid()),
            "algorithm not allowed",
        ),
        (
            "HS256 with the JWK as secret",
            hs256(&base(), jwks(&[&good]).as_bytes(), good.kid()),
            "algorithm not allowed",
        ),
        (
            "expired",
            token(&good, &base().issued_at(hour_ago)),
            "token expired",
        ),
        (
            "nbf in the future",
            token(&good, &base().claim("nbf", future)),
            "token not yet valid",
        ),
        (
            "wrong aud",
            token(&good, &base().aud("someone-else")),
            "wrong audience",
        ),
        (
            "wrong iss",
            token(&good, &base().iss("evil-idp")),
            "unknown issuer",
        ),
        ("unknown kid", token(&other, &base()), "unknown key id"),
        (
            "signature of another key",
            signed_as(&other, good.kid(), &base()),
            "bad signature",
        ),
        ("garbage", "not.a.token".to_owned(), "malformed token"),
        (
            "truncated",
            {
                let t = token(&good, &base());
                t[..t.len() - 10].to_owned()
            },
            "bad signature",
        ),
    ];
    for (name, tok, reason) in &cases {
        let (status, headers, body) = edge.get_with_token("/orders/1", tok).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        let challenge = headers["www-authenticate"].to_str().expect("ascii");
        assert!(
            challenge.contains("error=\"invalid_token\"")
                && challenge.contains(&format!("error_description=\"{reason}")),
            "{name}: {challenge}"
        );
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{name}"
        );
        assert!(!body.contains(tok.as_str()), "{name}: token echoed");
    }
    // Token in the query string where the policy does not allow it.
    let valid = token(&good, &base());
    let (status, headers, _) = edge
        .send("GET", &format!("/orders/1?access_token={valid}"), &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .is_ok_and(|c| c.contains("token in query string not allowed"))
    );
    // No credentials at all: a bare challenge (RFC 6750 §3.1).
    let (status, headers, _) = edge.send("GET", "/orders/1", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"gatehouse\"");
    assert_eq!(
        edge.backend.count(),
        0,
        "a refused request reached the backend"
    );

    // The same token in the header passes; so does a query token where allowed.
    let (status, _, _) = edge.get_with_token("/orders/1", &valid).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = edge
        .send("GET", &format!("/query?access_token={valid}&x=1"), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(edge.backend.last().uri, "/query?x=1", "token not forwarded");
}

#[tokio::test]
async fn identity_is_forwarded_and_spoofing_stripped() {
    let dir = tempfile::tempdir().expect("dir");
    let good = jwt_keys(JwtAlg::Es256);
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[&good])).expect("write");
    let backend = Backend::new().route("/", "ok").run().await;
    let edge = start(backend, &edge_yaml(&path.display().to_string())).await;

    let tok = token(
        &good,
        &TokenRequest::new("alice")
            .scope("orders:read orders:write")
            .claim("tenant", "acme")
            .claim("azp", "web-app"),
    );
    let auth = format!("Bearer {tok}");
    let (status, _, _) = edge
        .send(
            "GET",
            "/orders/7",
            &[
                ("authorization", &auth),
                ("x-gatehouse-subject", "root"),
                ("x-gatehouse-evil", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let seen = edge.backend.last().headers;
    assert_eq!(seen["x-gatehouse-subject"], "alice");
    assert_eq!(seen.get_all("x-gatehouse-subject").iter().count(), 1);
    assert_eq!(seen["x-gatehouse-scopes"], "orders:read orders:write");
    assert_eq!(seen["x-gatehouse-issuer"], ISSUER);
    assert_eq!(seen["x-gatehouse-client-id"], "web-app");
    assert_eq!(seen["x-gatehouse-claim-tenant"], "acme");
    assert!(seen.get("x-gatehouse-evil").is_none());
    assert!(
        seen.get("authorization").is_none(),
        "Authorization dropped by default"
    );

    // Scopes: 403 insufficient_scope vs 200.
    let (status, headers, _) = edge.get_with_token("/admin", &tok).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .is_ok_and(|c| c.contains("error=\"insufficient_scope\""))
    );
    let admin = token(
        &good,
        &TokenRequest::new("bob")
            .scope("admin")
            .claim("realm_access", serde_json::json!({"roles": ["ops"]})),
    );
    assert_eq!(
        edge.get_with_token("/admin", &admin).await.0,
        StatusCode::OK
    );
    let no_role = token(&good, &TokenRequest::new("bob").scope("admin"));
    assert_eq!(
        edge.get_with_token("/admin", &no_role).await.0,
        StatusCode::FORBIDDEN
    );
    let no_scope = token(&good, &TokenRequest::new("carol"));
    assert_eq!(
        edge.get_with_token("/orders/1", &no_scope).await.0,
        StatusCode::FORBIDDEN
    );

    // API keys (any_of), Authorization forwarded where the policy says so.
    let (status, _, _) = edge
        .send("GET", "/mixed", &[("x-api-key", "s3cret-partner-key")])
        .await;
    assert_eq!(status, StatusCode::OK);
    let seen = edge.backend.last().headers;
    assert_eq!(seen["x-gatehouse-subject"], "api-key:partner");
    assert_eq!(seen["x-gatehouse-client-id"], "partner");
    assert_eq!(seen["x-gatehouse-scopes"], "orders:read");
    assert!(seen.get("x-api-key").is_none(), "API key not forwarded");
    let (status, _, _) = edge.send("GET", "/mixed", &[("x-api-key", "wrong")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(edge.get_with_token("/mixed", &tok).await.0, StatusCode::OK);
    assert_eq!(edge.backend.last().headers["authorization"], auth.as_str());
}

#[tokio::test]
async fn jwks_url_fetched_before_ready_rotated_rate_limited_and_kept() {
    let key1 = jwt_keys(JwtAlg::Es256);
    let key2 = jwt_keys(JwtAlg::Es256);
    let key3 = jwt_keys(JwtAlg::Es256);
    let current = Arc::new(Mutex::new(jwks(&[&key1])));
    let served = current.clone();
    // Reserve a port for the IdP, closed at first: the edge is not ready until it answers.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let backend = Backend::new().route("/", "ok").run().await;
    let edge_section = format!(
        r#"  jwt:
    issuers:
      - issuer: {ISSUER}
        audiences: [gatehouse]
        jwks_url: http://{port}/jwks
        refresh_interval: 1h
        min_refetch_interval: 1h
  policies:
    - name: all
      path_prefix: /
      auth: jwt
"#
    );
    let edge = start(backend, &edge_section).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !edge.running.is_ready(),
        "ready before the JWKS was fetched"
    );
    let tok1 = token(&key1, &TokenRequest::new("alice"));
    let (status, headers, _) = edge.get_with_token("/x", &tok1).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(format!("{headers:?}").contains("signing keys not loaded yet"));

    let idp = Backend::new()
        .handle("/jwks", move |_| {
            let body = served.lock().map(|s| s.clone()).unwrap_or_default();
            async move {
                let mut r = Response::new(full(body));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().expect("ct"));
                r
            }
        })
        .run_on(port)
        .await;
    edge.wait_ready().await;
    assert_eq!(idp.count(), 1);
    assert_eq!(edge.get_with_token("/x", &tok1).await.0, StatusCode::OK);

    // Rotation: a token of the new key makes one refetch, and then works.
    *current.lock().expect("lock") = jwks(&[&key1, &key2]);
    let tok2 = token(&key2, &TokenRequest::new("alice"));
    assert_eq!(edge.get_with_token("/x", &tok2).await.0, StatusCode::OK);
    assert_eq!(idp.count(), 2);

    // A flood of unknown kids: all 401, and no further refetch within the interval.
    for _ in 0..20 {
        let tok3 = token(&key3, &TokenRequest::new("mallory"));
        assert_eq!(
            edge.get_with_token("/x", &tok3).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(idp.count(), 2, "unknown-kid refetch not rate limited");

    // IdP down: the last good keys keep verifying.
    idp.kill();
    assert_eq!(edge.get_with_token("/x", &tok1).await.0, StatusCode::OK);
    assert_eq!(edge.get_with_token("/x", &tok2).await.0, StatusCode::OK);
    assert!(edge.running.is_ready());
}
