//! A JWK Set turned into verification keys, each pinned to the algorithms its key type
//! allows: an RSA key never verifies an HS* or ES* token, whatever the token header says.

use std::collections::HashMap;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// A key and the only algorithms it may verify.
pub struct VerifyKey {
    pub key: DecodingKey,
    pub algs: Vec<Algorithm>,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("algs", &self.algs)
            .finish()
    }
}

/// The usable keys of a JWK Set.
#[derive(Debug, Default)]
pub struct KeySet {
    by_kid: HashMap<String, VerifyKey>,
    without_kid: Vec<VerifyKey>,
}

/// A JWK Set that is not JSON or has no `keys` array.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("JWK Set is not valid JSON")]
    Json(#[source] serde_json::Error),
    #[error("JWK Set has no `keys` array")]
    NoKeys,
}

/// The algorithms a key type allows, before narrowing by the JWK's own `alg`.
fn family(jwk: &Value) -> Vec<Algorithm> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    match (s("kty"), s("crv")) {
        (Some("RSA"), _) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        (Some("EC"), Some("P-256")) => vec![Algorithm::ES256],
        (Some("EC"), Some("P-384")) => vec![Algorithm::ES384],
        (Some("OKP"), Some("Ed25519")) => vec![Algorithm::EdDSA],
        // Symmetric (`oct`) keys are never taken from a JWK Set: HS* needs a configured secret.
        _ => Vec::new(),
    }
}

impl KeySet {
    /// Parses a JWK Set; keys that are unusable (unknown type, `use` other than `sig`,
    /// `alg` not matching the key type) are skipped and their index returned.
    pub fn parse(text: &[u8]) -> Result<(KeySet, Vec<usize>), JwksError> {
        let doc: Value = serde_json::from_slice(text).map_err(JwksError::Json)?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NoKeys)?;
        let mut set = KeySet::default();
        let mut skipped = Vec::new();
        for (i, raw) in keys.iter().enumerate() {
            match Self::key(raw) {
                Some(key) => match raw.get("kid").and_then(Value::as_str) {
                    Some(kid) => {
                        set.by_kid.insert(kid.to_owned(), key);
                    }
                    None => set.without_kid.push(key),
                },
                None => skipped.push(i),
            }
        }
        Ok((set, skipped))
    }

    fn key(raw: &Value) -> Option<VerifyKey> {
        if raw
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            return None;
        }
        let mut algs = family(raw);
        if let Some(alg) = raw.get("alg") {
            let alg: Algorithm = serde_json::from_value(alg.clone()).ok()?;
            if !algs.contains(&alg) {
                return None;
            }
            algs = vec![alg];
        }
        if algs.is_empty() {
            return None;
        }
        let jwk: Jwk = serde_json::from_value(raw.clone()).ok()?;
        let key = DecodingKey::from_jwk(&jwk).ok()?;
        Some(VerifyKey { key, algs })
    }

    /// The key named `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyKey> {
        self.by_kid.get(kid)
    }

    /// Keys to try for a token without `kid`: every key allowing `alg`.
    pub fn candidates(&self, alg: Algorithm) -> impl Iterator<Item = &VerifyKey> {
        self.by_kid
            .values()
            .chain(self.without_kid.iter())
            .filter(move |k| k.algs.contains(&alg))
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
