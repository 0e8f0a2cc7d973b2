//! `POST /oauth/token`: the client-credentials grant (RFC 6749 §4.4) with `client_secret_basic`
//! or `client_secret_post` (§2.3.1), answering errors as §5.2 says.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use gatehouse_certs::{JwtKeys, TokenRequest};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::json;

use super::{DEMO_CLIENTS, DemoClient, IDP_ISSUER, TOKEN_AUDIENCE, TOKEN_TTL};
use crate::respond::{Body, json, method_not_allowed};

/// An RFC 6749 §5.2 error: status, `error` code and a human-readable description.
struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn bad(code: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
        }
    }

    /// `invalid_client`: 401 with `WWW-Authenticate`, whichever way the client authenticated.
    fn client(description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: description.into(),
        }
    }

    fn into_response(self) -> Response<Body> {
        let body = json!({"error": self.code, "error_description": self.description});
        let mut resp = no_store(json(self.status, &body));
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse-dev-idp\""),
            );
        }
        resp
    }
}

/// Token answers must not be cached (RFC 6749 §5.1).
fn no_store(mut resp: Response<Body>) -> Response<Body> {
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// Answers a token request.
pub(super) fn token(keys: &JwtKeys, req: &Request<Bytes>) -> Response<Body> {
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    match grant(keys, req) {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

fn grant(keys: &JwtKeys, req: &Request<Bytes>) -> Result<Response<Body>, OAuthError> {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::bad(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut form: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(req.body()) {
        if form.iter().any(|(seen, _)| *seen == k) {
            return Err(OAuthError::bad(
                "invalid_request",
                format!("parameter {k} repeated"),
            ));
        }
        form.push((k.into_owned(), v.into_owned()));
    }
    let param = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let grant_type = param("grant_type")
        .ok_or_else(|| OAuthError::bad("invalid_request", "grant_type is missing"))?;
    let client = authenticate(req, param("client_id"), param("client_secret"))?;
    if grant_type != "client_credentials" {
        return Err(OAuthError::bad(
            "unsupported_grant_type",
            format!("grant type {grant_type} is not supported; use client_credentials"),
        ));
    }
    let granted = narrow(client, param("scope"))?;
    let request = TokenRequest::new(client.client_id)
        .iss(IDP_ISSUER)
        .aud(TOKEN_AUDIENCE)
        .ttl(TOKEN_TTL)
        .scope(&granted)
        .claim("client_id", client.client_id);
    let token = keys.issue_token(&request).map_err(|e| OAuthError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "server_error",
        description: format!("cannot sign the token: {e}"),
    })?;
    tracing::info!(client_id = client.client_id, scope = %granted, "token issued");
    Ok(no_store(json(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL.as_secs(),
            "scope": granted,
        }),
    )))
}

/// The client, from exactly one of `Authorization: Basic` or the `client_id`/`client_secret` form
/// parameters, with its secret checked.
fn authenticate(
    req: &Request<Bytes>,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<&'static DemoClient, OAuthError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, creds)| creds.trim());
    let (id, secret) = match (basic, form_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::bad(
                "invalid_request",
                "use one client authentication method, not both",
            ));
        }
        (Some(creds), None) => {
            let decoded = STANDARD
                .decode(creds)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| OAuthError::client("malformed Basic credentials"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| OAuthError::client("malformed Basic credentials"))?;
            // §2.3.1: the id and secret are form-encoded before Basic encoding.
            let (id, secret) = (form_decode(id), form_decode(secret));
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::bad(
                    "invalid_request",
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, secret)
        }
        (None, Some(secret)) => {
            let id =
                form_id.ok_or_else(|| OAuthError::client("client_secret without client_id"))?;
            (id.to_owned(), secret.to_owned())
        }
        (None, None) => return Err(OAuthError::client("client authentication is required")),
    };
    DEMO_CLIENTS
        .iter()
        .find(|c| c.client_id == id)
        .filter(|c| constant_time_eq(c.client_secret.as_bytes(), secret.as_bytes()))
        .ok_or_else(|| OAuthError::client("unknown client or wrong secret"))
}

/// The scopes to grant: all of the client's when none are asked for, else the ones asked for,
/// each of which the client must have.
fn narrow(client: &DemoClient, requested: Option<&str>) -> Result<String, OAuthError> {
    let Some(requested) = requested.filter(|s| !s.trim().is_empty()) else {
        return Ok(client.scopes.join(" "));
    };
    let mut granted: Vec<&str> = Vec::new();
    for scope in requested.split_whitespace() {
        if !client.scopes.contains(&scope) {
            return Err(OAuthError::bad(
                "invalid_scope",
                format!("client {} may not have scope {scope}", client.client_id),
            ));
        }
        if !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    Ok(granted.join(" "))
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` and `%XX`).
fn form_decode(s: &str) -> String {
    let input = format!("v={}", s.replace('&', "%26").replace('=', "%3D"));
    form_urlencoded::parse(input.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Compares secrets without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
