//! The development identity provider: discovery, JWKS, and the client-credentials token endpoint
//! with both client authentication methods, RFC 6749 errors and scope narrowing.

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use gatehouse_topology::{DEMO_CLIENTS, Error, RunningService, ServeOptions, ServiceName, serve};
use http::{Method, StatusCode};
use http_body_util::Full;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use super::support::{Answer, get, jwt_key, request, send, start_with};

async fn idp() -> (tempfile::TempDir, RunningService) {
    let (dir, path, _) = jwt_key();
    let opts = ServeOptions {
        jwt_key: Some(path),
        ..ServeOptions::default()
    };
    (dir, start_with(ServiceName::Idp, opts).await)
}

/// `POST /oauth/token` with `form`, and `basic` credentials when given.
async fn token(addr: SocketAddr, basic: Option<(&str, &str)>, form: &str) -> Answer {
    let mut req = request(Method::POST, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        let creds = STANDARD.encode(format!("{id}:{secret}"));
        req = req.header("authorization", format!("Basic {creds}"));
    }
    let req = req
        .body(Full::new(Bytes::from(form.to_owned())))
        .expect("req");
    send(addr, req).await
}

/// Verifies `token` with the JWKS the idp serves, as a gateway would.
async fn verify(addr: SocketAddr, token: &str) -> Value {
    let jwks: JwkSet =
        serde_json::from_value(get(addr, "/.well-known/jwks.json").await.json).expect("jwks");
    let header = decode_header(token).expect("header");
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("key of the token in the JWKS");
    let key = DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["gatehouse"]);
    validation.set_issuer(&["gatehouse-dev-idp"]);
    decode::<Value>(token, &key, &validation)
        .expect("valid token")
        .claims
}

fn secret(id: &str) -> &'static str {
    DEMO_CLIENTS
        .iter()
        .find(|c| c.client_id == id)
        .map(|c| c.client_secret)
        .expect("demo client")
}

#[tokio::test]
async fn discovery_document_and_jwks() {
    let (_dir, idp) = idp().await;
    let d = get(idp.listen(), "/.well-known/openid-configuration").await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.json["issuer"], "gatehouse-dev-idp");
    let base = format!("http://{}", idp.listen());
    assert_eq!(d.json["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    assert_eq!(d.json["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(
        d.json["grant_types_supported"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(
        d.json["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    // Behind the gateways, the forwarded host and scheme make the URLs.
    let req = request(Method::GET, "/.well-known/openid-configuration")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "127.0.0.1:8443")
        .body(Full::default())
        .expect("req");
    let d = send(idp.listen(), req).await;
    assert_eq!(
        d.json["token_endpoint"],
        "https://127.0.0.1:8443/oauth/token"
    );

    let jwks = get(idp.listen(), "/.well-known/jwks.json").await;
    assert_eq!(jwks.json["keys"][0]["alg"], "ES256");
    assert!(jwks.json["keys"][0].get("d").is_none(), "no private part");
}

#[tokio::test]
async fn tokens_by_basic_and_post_verify_with_the_served_jwks() {
    let (_dir, idp) = idp().await;
    let a = token(
        idp.listen(),
        Some(("web-app", secret("web-app"))),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.json);
    assert_eq!(a.header("cache-control"), "no-store");
    assert_eq!(a.json["token_type"], "Bearer");
    assert_eq!(a.json["expires_in"], 900);
    assert_eq!(a.json["scope"], "users:read orders:read orders:write");
    let claims = verify(
        idp.listen(),
        a.json["access_token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(claims["sub"], "web-app");
    assert_eq!(claims["iss"], "gatehouse-dev-idp");
    assert_eq!(claims["aud"], "gatehouse");
    assert_eq!(claims["scope"], "users:read orders:read orders:write");

    let form = format!(
        "grant_type=client_credentials&client_id=mobile-app&client_secret={}",
        secret("mobile-app")
    );
    let a = token(idp.listen(), None, &form).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.json);
    let claims = verify(
        idp.listen(),
        a.json["access_token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(claims["sub"], "mobile-app");
    assert_eq!(claims["scope"], "orders:read");

    // `partner` has no scopes: a valid token without a scope claim.
    let a = token(
        idp.listen(),
        Some(("partner", secret("partner"))),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let claims = verify(
        idp.listen(),
        a.json["access_token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(claims["sub"], "partner");
    assert!(claims.get("scope").is_none());
}

#[tokio::test]
async fn bad_clients_get_invalid_client() {
    let (_dir, idp) = idp().await;
    let grant = "grant_type=client_credentials";
    let cases = [
        token(idp.listen(), Some(("web-app", "wrong")), grant).await,
        token(idp.listen(), Some(("nobody", "x")), grant).await,
        token(
            idp.listen(),
            None,
            "grant_type=client_credentials&client_id=web-app&client_secret=wrong",
        )
        .await,
        token(idp.listen(), None, grant).await,
    ];
    for a in cases {
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{:?}", a.json);
        assert_eq!(a.json["error"], "invalid_client");
        assert!(a.header("www-authenticate").starts_with("Basic"));
        assert!(a.json["error_description"].is_string());
    }
}

#[tokio::test]
async fn grant_type_scope_and_request_errors() {
    let (_dir, idp) = idp().await;
    let web = Some(("web-app", secret("web-app")));
    let a = token(
        idp.listen(),
        web,
        "grant_type=password&username=a&password=b",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json["error"], "unsupported_grant_type");

    // Asking for fewer scopes narrows the token; asking for more is refused.
    let a = token(
        idp.listen(),
        web,
        "grant_type=client_credentials&scope=orders:read",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["scope"], "orders:read");
    let claims = verify(
        idp.listen(),
        a.json["access_token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(claims["scope"], "orders:read");
    let mobile = Some(("mobile-app", secret("mobile-app")));
    let a = token(
        idp.listen(),
        mobile,
        "grant_type=client_credentials&scope=orders:read+orders:write",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json["error"], "invalid_scope");

    let a = token(idp.listen(), web, "scope=orders:read").await;
    assert_eq!(a.json["error"], "invalid_request");
    let form = format!(
        "grant_type=client_credentials&client_secret={}",
        secret("web-app")
    );
    let a = token(idp.listen(), web, &form).await;
    assert_eq!(
        a.json["error"], "invalid_request",
        "two authentication methods"
    );
    let req = request(Method::POST, "/oauth/token")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("req");
    let a = send(idp.listen(), req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json["error"], "invalid_request");
    assert_eq!(
        get(idp.listen(), "/oauth/token").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn idp_needs_its_signing_key() {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let err = serve(ServiceName::Idp, any, any, ServeOptions::default()).await;
    assert!(matches!(err, Err(Error::MissingJwtKey)));
    let opts = ServeOptions {
        jwt_key: Some("/nonexistent/key.pem".into()),
        ..ServeOptions::default()
    };
    let err = serve(ServiceName::Idp, any, any, opts).await;
    assert!(matches!(err, Err(Error::JwtKey { .. })));
}
