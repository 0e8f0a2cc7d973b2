//! `idp`: the development identity provider: OpenID discovery, the JWK Set, and an OAuth 2.0
//! client-credentials token endpoint for the documented demo clients.

mod token;

use std::time::Duration;

use bytes::Bytes;
use gatehouse_certs::JwtKeys;
use http::{HeaderMap, Request, Response};
use serde::Serialize;
use serde_json::json;

use super::{RestApp, only_get};
use crate::respond::{Body, not_found, ok};
use crate::{Error, Result, ServeOptions};

/// `iss` of every token, and the `issuer` of the discovery document.
pub const IDP_ISSUER: &str = "gatehouse-dev-idp";
/// `aud` of every token: what the gateways expect.
pub const TOKEN_AUDIENCE: &str = "gatehouse";
/// Lifetime of a token: 15 minutes (`expires_in` 900).
pub const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// A demo OAuth client of the idp. Part of the demo's documented contract: `up` writes these into
/// `.gatehouse/topology.json` as `{"client_id", "client_secret", "scopes": [..]}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DemoClient {
    pub client_id: &'static str,
    /// A development secret, public on purpose: never reuse it anywhere real.
    pub client_secret: &'static str,
    /// Every scope the client may get; a token request may ask for fewer.
    pub scopes: &'static [&'static str],
}

/// The demo clients: `web-app` (`users:read orders:read orders:write`), `mobile-app`
/// (`orders:read`), `partner` (no scopes).
pub const DEMO_CLIENTS: [DemoClient; 3] = [
    DemoClient {
        client_id: "web-app",
        client_secret: "web-app-dev-secret",
        scopes: &["users:read", "orders:read", "orders:write"],
    },
    DemoClient {
        client_id: "mobile-app",
        client_secret: "mobile-app-dev-secret",
        scopes: &["orders:read"],
    },
    DemoClient {
        client_id: "partner",
        client_secret: "partner-dev-secret",
        scopes: &[],
    },
];

/// The identity provider: the signing key and, when set, the public base URL.
pub(crate) struct Idp {
    keys: JwtKeys,
    public_url: Option<String>,
}

impl Idp {
    /// Loads the signing key named by `opts.jwt_key` (required).
    pub(crate) fn load(opts: &ServeOptions) -> Result<Self> {
        let path = opts.jwt_key.as_ref().ok_or(Error::MissingJwtKey)?;
        let keys = JwtKeys::load(path).map_err(|source| Error::JwtKey {
            path: path.clone(),
            source,
        })?;
        let public_url = opts
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_owned());
        Ok(Idp { keys, public_url })
    }

    /// The URL clients reach the idp at: `--public-url`, else what the gateways forwarded
    /// (`X-Forwarded-Proto`, `X-Forwarded-Host`), else `http://` and the `Host` it was called by.
    fn base_url(&self, req: &Request<Bytes>) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let first = |h: &HeaderMap, name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let headers = req.headers();
        let proto = first(headers, "x-forwarded-proto").unwrap_or_else(|| "http".into());
        let host = first(headers, "x-forwarded-host")
            .or_else(|| first(headers, "host"))
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".into());
        format!("{proto}://{host}")
    }

    fn discovery(&self, req: &Request<Bytes>) -> Response<Body> {
        let base = self.base_url(req);
        let mut scopes: Vec<&str> = DEMO_CLIENTS
            .iter()
            .flat_map(|c| c.scopes.iter().copied())
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        ok(&json!({
            "issuer": IDP_ISSUER,
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "token_endpoint": format!("{base}/oauth/token"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": scopes,
            "response_types_supported": ["token"],
            "id_token_signing_alg_values_supported": [self.keys.alg().as_str()],
        }))
    }
}

impl RestApp for Idp {
    fn handle(&self, req: &Request<Bytes>) -> Response<Body> {
        match req.uri().path() {
            "/oauth/token" => token::token(&self.keys, req),
            "/.well-known/jwks.json" => only_get(req).unwrap_or_else(|| ok(&self.keys.jwks())),
            "/.well-known/openid-configuration" => {
                only_get(req).unwrap_or_else(|| self.discovery(req))
            }
            path => not_found(&format!("no resource {path}")),
        }
    }
}
