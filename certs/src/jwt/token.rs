//! What goes into a dev token ([`TokenRequest`]) and the CLI's duration and claim syntax.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::key::{hex, random_bytes};
use crate::{Error, Result};

/// Default audience.
pub const DEFAULT_AUDIENCE: &str = "gatehouse";
/// Default issuer.
pub const DEFAULT_ISSUER: &str = "gatehouse-dev-idp";
/// Default lifetime: 15 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// The claims of a dev token. Build with [`TokenRequest::new`] and the setters.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest {
    /// `sub`.
    pub sub: String,
    /// Scopes, written to claim `scope` space-separated; no claim when empty.
    pub scope: Vec<String>,
    /// `aud`. Default: `gatehouse`.
    pub aud: String,
    /// `iss`. Default: `gatehouse-dev-idp`.
    pub iss: String,
    /// Lifetime: `exp = iat + ttl`. Default: 15 minutes.
    pub ttl: Duration,
    /// `iat` and `nbf`. Default (`None`): now. Set it in the past to make expired tokens.
    pub issued_at: Option<SystemTime>,
    /// Further claims; they are applied last, so they may override the ones above.
    pub extra: Map<String, Value>,
}

impl TokenRequest {
    /// A request for subject `sub` with the defaults.
    pub fn new(sub: impl Into<String>) -> Self {
        TokenRequest {
            sub: sub.into(),
            scope: Vec::new(),
            aud: DEFAULT_AUDIENCE.to_owned(),
            iss: DEFAULT_ISSUER.to_owned(),
            ttl: DEFAULT_TTL,
            issued_at: None,
            extra: Map::new(),
        }
    }

    /// Adds the space-separated scopes in `scopes`.
    pub fn scope(mut self, scopes: &str) -> Self {
        self.scope
            .extend(scopes.split_whitespace().map(str::to_owned));
        self
    }

    /// Sets the audience.
    pub fn aud(mut self, aud: impl Into<String>) -> Self {
        self.aud = aud.into();
        self
    }

    /// Sets the issuer.
    pub fn iss(mut self, iss: impl Into<String>) -> Self {
        self.iss = iss.into();
        self
    }

    /// Sets the lifetime.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets `iat`/`nbf` (and so `exp`).
    pub fn issued_at(mut self, at: SystemTime) -> Self {
        self.issued_at = Some(at);
        self
    }

    /// Adds (or overrides) a claim.
    pub fn claim(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// The claims: `sub`, `scope`, `aud`, `iss`, `iat`, `nbf`, `exp`, `jti` (random), then `extra`.
    pub fn claims(&self) -> Value {
        let at = self.issued_at.unwrap_or_else(SystemTime::now);
        let iat = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut claims = Map::new();
        claims.insert("sub".into(), self.sub.clone().into());
        if !self.scope.is_empty() {
            claims.insert("scope".into(), self.scope.join(" ").into());
        }
        claims.insert("aud".into(), self.aud.clone().into());
        claims.insert("iss".into(), self.iss.clone().into());
        claims.insert("iat".into(), iat.into());
        claims.insert("nbf".into(), iat.into());
        claims.insert("exp".into(), iat.saturating_add(self.ttl.as_secs()).into());
        claims.insert("jti".into(), hex(&random_bytes::<16>()).into());
        claims.extend(self.extra.clone());
        Value::Object(claims)
    }
}

/// Parses `30s`, `15m`, `1h`, `2d` into a duration.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::Parse {
        what: "duration",
        value: s.to_owned(),
        expected: "a number with unit s, m, h or d, e.g. 30s, 15m, 1h",
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

/// Parses `key=value`; the value is read as JSON if it parses (`n=3`, `admin=true`,
/// `roles=["a","b"]`), otherwise taken as a string.
pub fn parse_claim(kv: &str) -> Result<(String, Value)> {
    let (key, value) = kv
        .split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| Error::Parse {
            what: "claim",
            value: kv.to_owned(),
            expected: "key=value",
        })?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_claims() {
        assert_eq!(parse_duration("30s").ok(), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m").ok(), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h").ok(), Some(Duration::from_secs(3600)));
        for bad in ["", "15", "m", "1x", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_claim("n=3").ok(), Some(("n".into(), Value::from(3))));
        assert_eq!(
            parse_claim("tenant=acme").ok(),
            Some(("tenant".into(), Value::from("acme")))
        );
        assert!(parse_claim("=x").is_err());
        let c = TokenRequest::new("alice").scope("a:r  b:w").claims();
        assert_eq!(c["scope"], "a:r b:w");
        assert_eq!(c["aud"], DEFAULT_AUDIENCE);
        assert_eq!(c["exp"].as_u64(), c["iat"].as_u64().map(|i| i + 900));
    }
}
