//! JWT verification: the issuer is picked by `iss`, the key by `kid`, and the algorithm is
//! pinned by the key (never `none`; HS* only with the issuer's configured secret).

pub mod keys;
pub mod remote;

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use keys::{KeySet, VerifyKey};
use remote::RemoteKeys;

/// Why a token was refused. The text goes to `error_description` and the log; it never
/// contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed for this key")]
    AlgorithmNotAllowed,
    #[error("unknown issuer")]
    UnknownIssuer,
    #[error("unknown key id")]
    UnknownKid,
    #[error("signing keys not loaded yet")]
    KeysUnavailable,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong audience")]
    WrongAudience,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("missing claim {0}")]
    MissingClaim(String),
}

/// Where an issuer's asymmetric keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Static(Arc<KeySet>),
    Remote(Arc<RemoteKeys>),
}

/// One trusted issuer.
pub struct Issuer {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub keys: KeySource,
    pub hmac: Option<DecodingKey>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("keys", &self.keys)
            .field("hmac", &self.hmac.is_some())
            .finish()
    }
}

/// All issuers and the shared leeway.
#[derive(Debug)]
pub struct JwtVerifier {
    pub issuers: Vec<Issuer>,
    pub leeway_secs: u64,
}

const HMAC: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

fn map_err(e: &jsonwebtoken::errors::Error) -> JwtError {
    match e.kind() {
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidAudience => JwtError::WrongAudience,
        ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::InvalidAlgorithm => JwtError::AlgorithmNotAllowed,
        ErrorKind::MissingRequiredClaim(c) => JwtError::MissingClaim(c.clone()),
        _ => JwtError::Malformed,
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl JwtVerifier {
    /// Whether every JWKS URL has been fetched once.
    pub fn is_ready(&self) -> bool {
        self.issuers.iter().all(|i| match &i.keys {
            KeySource::Remote(r) => r.is_loaded(),
            KeySource::Static(_) => true,
        })
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Value, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        // Only to pick the issuer; nothing is believed before the signature is checked.
        let unverified: Value = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| JwtError::Malformed)?;
        let iss = unverified.get("iss").and_then(Value::as_str);
        let issuer = match iss {
            Some(iss) => self.issuers.iter().find(|i| i.issuer == iss),
            None => return Err(JwtError::MissingClaim("iss".into())),
        }
        .ok_or(JwtError::UnknownIssuer)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_audience(&issuer.audiences);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);

        if HMAC.contains(&header.alg) {
            let key = issuer.hmac.as_ref().ok_or(JwtError::AlgorithmNotAllowed)?;
            return self.decode(token, key, &validation);
        }
        let set = match &issuer.keys {
            KeySource::Static(set) => set.clone(),
            KeySource::Remote(r) => r.current().ok_or(JwtError::KeysUnavailable)?,
        };
        match header.kid.as_deref() {
            Some(kid) => {
                let set = match (set.get(kid), &issuer.keys) {
                    (Some(_), _) => set,
                    (None, KeySource::Remote(r)) if r.refetch_for_unknown_kid().await => {
                        r.current().ok_or(JwtError::KeysUnavailable)?
                    }
                    (None, _) => return Err(JwtError::UnknownKid),
                };
                let key = set.get(kid).ok_or(JwtError::UnknownKid)?;
                self.with_key(token, key, header.alg, &validation)
            }
            None => {
                let mut last = JwtError::UnknownKid;
                for key in set.candidates(header.alg) {
                    match self.with_key(token, key, header.alg, &validation) {
                        Ok(claims) => return Ok(claims),
                        Err(JwtError::BadSignature) => last = JwtError::BadSignature,
                        Err(e) => return Err(e),
                    }
                }
                Err(last)
            }
        }
    }

    fn with_key(
        &self,
        token: &str,
        key: &VerifyKey,
        alg: Algorithm,
        validation: &Validation,
    ) -> Result<Value, JwtError> {
        if !key.algs.contains(&alg) {
            return Err(JwtError::AlgorithmNotAllowed);
        }
        self.decode(token, &key.key, validation)
    }

    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        validation: &Validation,
    ) -> Result<Value, JwtError> {
        let data =
            jsonwebtoken::decode::<Value>(token, key, validation).map_err(|e| map_err(&e))?;
        let claims = data.claims;
        if let Some(iat) = claims.get("iat").and_then(Value::as_u64)
            && iat > now_secs() + self.leeway_secs
        {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }
}
