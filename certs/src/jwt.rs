//! Development JWT signing keys: generation, PKCS#8 PEM, JWKS, and signing with `jsonwebtoken`.

mod token;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rcgen::{KeyPair, PublicKeyData};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use token::{TokenRequest, parse_claim, parse_duration};

use crate::{Error, KeyAlg, Result};

/// A JWS algorithm for dev tokens. Default: ES256.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum JwtAlg {
    /// ECDSA P-256 with SHA-256.
    #[default]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit key.
    Rs256,
    /// Ed25519.
    EdDsa,
}

impl JwtAlg {
    /// The JOSE name: `ES256`, `RS256`, `EdDSA`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlg::Es256 => "ES256",
            JwtAlg::Rs256 => "RS256",
            JwtAlg::EdDsa => "EdDSA",
        }
    }

    /// The `jsonwebtoken` algorithm.
    pub fn algorithm(self) -> Algorithm {
        match self {
            JwtAlg::Es256 => Algorithm::ES256,
            JwtAlg::Rs256 => Algorithm::RS256,
            JwtAlg::EdDsa => Algorithm::EdDSA,
        }
    }

    fn key_alg(self) -> KeyAlg {
        match self {
            JwtAlg::Es256 => KeyAlg::EcdsaP256,
            JwtAlg::Rs256 => KeyAlg::Rsa2048,
            JwtAlg::EdDsa => KeyAlg::Ed25519,
        }
    }
}

impl fmt::Display for JwtAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JwtAlg {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Ok(JwtAlg::Es256),
            "RS256" => Ok(JwtAlg::Rs256),
            "EDDSA" => Ok(JwtAlg::EdDsa),
            _ => Err(Error::Parse {
                what: "JWT algorithm",
                value: s.to_owned(),
                expected: "ES256, RS256 or EdDSA",
            }),
        }
    }
}

/// A JWT signing key with its public JWK. `Debug` does not print the private key.
pub struct JwtKeys {
    alg: JwtAlg,
    private_pem: String,
    jwk: Value,
    encoding: EncodingKey,
}

impl JwtKeys {
    /// Generates a new signing key.
    pub fn generate(alg: JwtAlg) -> Result<Self> {
        Self::from_key_pair(&alg.key_alg().generate()?)
    }

    /// Loads a PKCS#8 PEM signing key; the algorithm follows from the key type.
    pub fn from_pem(pem: &str) -> Result<Self> {
        Self::from_key_pair(&KeyPair::from_pem(pem)?)
    }

    /// Loads a PKCS#8 PEM signing key from a file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_pem(&crate::pem::read_to_string(path)?)
    }

    fn from_key_pair(key: &KeyPair) -> Result<Self> {
        let alg = match KeyAlg::of(key) {
            Some(KeyAlg::EcdsaP256) => JwtAlg::Es256,
            Some(KeyAlg::Rsa2048) => JwtAlg::Rs256,
            Some(KeyAlg::Ed25519) => JwtAlg::EdDsa,
            None => return Err(Error::UnsupportedKey("JWT keys are P-256, RSA or Ed25519")),
        };
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let raw = key.public_key_raw();
        let mut jwk = match alg {
            JwtAlg::Es256 => match raw {
                [4, xy @ ..] if xy.len() == 64 => {
                    json!({"kty": "EC", "crv": "P-256", "x": b64(&xy[..32]), "y": b64(&xy[32..])})
                }
                _ => return Err(Error::UnsupportedKey("P-256 point is not uncompressed")),
            },
            JwtAlg::EdDsa => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}),
            JwtAlg::Rs256 => {
                let public =
                    rsa::RsaPublicKey::from_pkcs1_der(raw).map_err(|e| Error::Rsa(Box::new(e)))?;
                let (n, e) = (public.n().to_bytes_be(), public.e().to_bytes_be());
                json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)})
            }
        };
        // kid: the first 16 bytes of SHA-256 over the SubjectPublicKeyInfo, base64url.
        let kid = b64(&Sha256::digest(key.subject_public_key_info())[..16]);
        jwk["kid"] = kid.into();
        jwk["alg"] = alg.as_str().into();
        jwk["use"] = "sig".into();
        let private_pem = key.serialize_pem();
        let encoding = match alg {
            JwtAlg::Es256 => EncodingKey::from_ec_pem(private_pem.as_bytes())?,
            JwtAlg::Rs256 => EncodingKey::from_rsa_pem(private_pem.as_bytes())?,
            JwtAlg::EdDsa => EncodingKey::from_ed_pem(private_pem.as_bytes())?,
        };
        Ok(JwtKeys {
            alg,
            private_pem,
            jwk,
            encoding,
        })
    }

    /// The signing algorithm.
    pub fn alg(&self) -> JwtAlg {
        self.alg
    }

    /// The key ID put in the JWK and in every token header.
    pub fn kid(&self) -> &str {
        self.jwk["kid"].as_str().unwrap_or_default()
    }

    /// The private key, PKCS#8 PEM. Handle with care: it is not redacted.
    pub fn private_key_pem(&self) -> &str {
        &self.private_pem
    }

    /// The public JWK: `kty`, `crv`/`x`/`y` or `n`/`e`, `kid`, `alg`, `use: "sig"`.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The JWK Set `{"keys": [<jwk>]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// The JWK Set as pretty JSON text, newline-terminated (the contents of `jwks.json`).
    pub fn jwks_json(&self) -> String {
        format!("{:#}\n", self.jwks())
    }

    /// A key that verifies this key's tokens, built from the public JWK.
    pub fn decoding_key(&self) -> Result<DecodingKey> {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(self.jwk.clone())?;
        Ok(DecodingKey::from_jwk(&jwk)?)
    }

    /// Signs arbitrary claims; the header carries `alg` and `kid`.
    pub fn sign_token<T: Serialize>(&self, claims: &T) -> Result<String> {
        let mut header = Header::new(self.alg.algorithm());
        header.kid = Some(self.kid().to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// Signs the claims described by `req` (see [`TokenRequest::claims`]).
    pub fn issue_token(&self, req: &TokenRequest) -> Result<String> {
        self.sign_token(&req.claims())
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("alg", &self.alg)
            .field("kid", &self.kid())
            .field("private_key", &format_args!("<redacted>"))
            .finish()
    }
}
