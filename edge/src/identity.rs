//! The verified identity of a request and its forwarding as `x-gatehouse-*` headers.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// Prefix of the identity headers; everything under it from a client is removed.
pub const PREFIX: &str = "x-gatehouse-";
pub const SUBJECT: &str = "x-gatehouse-subject";
pub const SCOPES: &str = "x-gatehouse-scopes";
pub const ISSUER: &str = "x-gatehouse-issuer";
pub const CLIENT_ID: &str = "x-gatehouse-client-id";
/// Prefix of forwarded claims: `x-gatehouse-claim-<name>`.
pub const CLAIM_PREFIX: &str = "x-gatehouse-claim-";

/// Who made the request, as verified by the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub subject: String,
    pub issuer: Option<String>,
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
    /// The JWT's claims (an empty object for API keys).
    pub claims: Value,
}

impl Identity {
    /// From verified JWT claims: scopes from `scope` (space-separated) or `scp` (array or
    /// string), client id from `client_id` or `azp`.
    pub fn from_claims(claims: Value) -> Self {
        let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut scopes: Vec<String> = Vec::new();
        for key in ["scope", "scp"] {
            match claims.get(key) {
                Some(Value::String(s)) => scopes.extend(s.split_whitespace().map(str::to_owned)),
                Some(Value::Array(a)) => {
                    scopes.extend(a.iter().filter_map(Value::as_str).map(str::to_owned))
                }
                _ => {}
            }
        }
        Identity {
            subject: s("sub").unwrap_or_default(),
            issuer: s("iss"),
            scopes,
            client_id: s("client_id").or_else(|| s("azp")),
            claims,
        }
    }

    /// The claim at a dotted path (`realm_access.roles`).
    pub fn claim(&self, path: &str) -> Option<&Value> {
        path.split('.').try_fold(&self.claims, |v, seg| v.get(seg))
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Removes every `x-gatehouse-*` header the client sent.
pub fn strip(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with(PREFIX))
        .cloned()
        .collect();
    for n in names {
        headers.remove(n);
    }
}

fn set(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(n, v);
    }
}

/// Sets the identity headers for the internal gateway (after [`strip`]). Values that are not
/// valid header text are left out rather than mangled.
pub fn forward(headers: &mut HeaderMap, id: &Identity, claims: &[String]) {
    set(headers, SUBJECT, &id.subject);
    if !id.scopes.is_empty() {
        set(headers, SCOPES, &id.scopes.join(" "));
    }
    if let Some(iss) = &id.issuer {
        set(headers, ISSUER, iss);
    }
    if let Some(client) = &id.client_id {
        set(headers, CLIENT_ID, client);
    }
    for name in claims {
        let value = match id.claim(name) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => continue,
        };
        let header = format!(
            "{CLAIM_PREFIX}{}",
            name.replace('.', "-").to_ascii_lowercase()
        );
        set(headers, &header, &value);
    }
}
