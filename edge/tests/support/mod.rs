//! Shared by the edge tests: start the edge in-process in front of a fake backend, and
//! build tokens (good and malicious).

#![allow(dead_code)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_certs::{JwtKeys, TokenRequest};
use gatehouse_common::body::{ProxyBody, empty};
use gatehouse_common::config;
use gatehouse_common::runtime::Running;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::{BackendHandle, Client, collect};
use http::{HeaderMap, Request, StatusCode};

pub const ISSUER: &str = "gatehouse-dev-idp";

/// A running edge and the backend behind it.
pub struct Edge {
    pub running: Running,
    pub base: String,
    pub backend: BackendHandle,
}

/// The edge config: one catch-all route to `backend`, plus `edge` (YAML of the section's
/// body, indented by two spaces).
pub fn config(backend: &BackendHandle, edge: &str) -> String {
    format!(
        "listeners:\n  - name: public\n    address: 127.0.0.1:0\nadmin:\n  address: 127.0.0.1:0\n\
         routes:\n  - name: all\n    service: internal\n\
         services:\n  internal:\n    endpoints: [{}]\n\
         edge:\n{edge}",
        backend.addr
    )
}

pub async fn start(backend: BackendHandle, edge: &str) -> Edge {
    start_with_env(backend, edge, |k| std::env::var(k).ok()).await
}

/// [`start`], reading `${VAR}`s of the config through `env` (secrets, without touching the
/// process environment).
pub async fn start_with_env(
    backend: BackendHandle,
    edge: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Edge {
    let yaml = config(&backend, edge);
    let loaded =
        config::parse_with_env::<ProxySettings>("edge.yaml", &yaml, env).expect("edge config");
    let running = gatehouse_edge::run(loaded, None).await.expect("edge start");
    let addr = running.addr("public").await.expect("public listener");
    Edge {
        running,
        base: format!("http://{addr}"),
        backend,
    }
}

impl Edge {
    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if self.running.is_ready() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("edge not ready");
    }

    /// Sends `method path` with `headers`; returns status, headers, body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        self.send_body(method, path, headers, empty()).await
    }

    /// Like [`Edge::send`], with a body.
    pub async fn send_body(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: ProxyBody,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req: Request<ProxyBody> = req.body(body).expect("request");
        let (status, h, body) = collect(Client::http1().send(req).await).await;
        (status, h, String::from_utf8_lossy(&body).into_owned())
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> (StatusCode, HeaderMap, String) {
        self.send(
            "GET",
            path,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }
}

/// A JWK Set file holding `keys`.
pub fn jwks(keys: &[&JwtKeys]) -> String {
    let list: Vec<_> = keys.iter().map(|k| k.jwk().clone()).collect();
    serde_json::json!({ "keys": list }).to_string()
}

pub fn token(keys: &JwtKeys, req: &TokenRequest) -> String {
    keys.issue_token(req).expect("sign")
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `alg: none`, no signature.
pub fn alg_none(req: &TokenRequest) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(req.claims().to_string().as_bytes())
    )
}

/// HS256 signed with `secret` and the given `kid`.
pub fn hs256(req: &TokenRequest, secret: &[u8], kid: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        &req.claims(),
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("hs256")
}

/// Signed by `signer` but claiming key `kid`.
pub fn signed_as(signer: &JwtKeys, kid: &str, req: &TokenRequest) -> String {
    let mut header = jsonwebtoken::Header::new(signer.alg().algorithm());
    header.kid = Some(kid.to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(signer.private_key_pem().as_bytes())
        .expect("rsa key");
    jsonwebtoken::encode(&header, &req.claims(), &key).expect("sign")
}

/// The PEM public key of `keys` (for the HS256-with-public-key attack).
pub fn public_pem(keys: &JwtKeys) -> String {
    rcgen::KeyPair::from_pem(keys.private_key_pem())
        .expect("key")
        .public_key_pem()
}
