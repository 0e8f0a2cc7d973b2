//! Key algorithms and key generation (rcgen/ring for ECDSA and Ed25519, the `rsa` crate for RSA).

use std::fmt;
use std::str::FromStr;

use rand_core::{OsRng, RngCore};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, PKCS_RSA_SHA256};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};

use crate::{Error, Result};

/// The algorithm of a certificate key. Default: ECDSA P-256.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    /// ECDSA on P-256 with SHA-256 (`ecdsa-p256`).
    #[default]
    EcdsaP256,
    /// Ed25519 (`ed25519`).
    Ed25519,
    /// RSA 2048-bit, PKCS#1 v1.5 with SHA-256 (`rsa-2048`).
    Rsa2048,
}

impl KeyAlg {
    /// The CLI spelling: `ecdsa-p256`, `ed25519`, `rsa-2048`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlg::EcdsaP256 => "ecdsa-p256",
            KeyAlg::Ed25519 => "ed25519",
            KeyAlg::Rsa2048 => "rsa-2048",
        }
    }

    /// Generates a fresh key pair of this algorithm.
    pub fn generate(self) -> Result<KeyPair> {
        match self {
            KeyAlg::EcdsaP256 => Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?),
            KeyAlg::Ed25519 => Ok(KeyPair::generate_for(&PKCS_ED25519)?),
            // ring (rcgen's backend here) cannot generate RSA keys; ring can sign with one.
            KeyAlg::Rsa2048 => {
                let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048)
                    .map_err(|e| Error::Rsa(Box::new(e)))?;
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| Error::Rsa(Box::new(e)))?;
                Ok(KeyPair::from_pem(&pem)?)
            }
        }
    }

    /// The algorithm of an existing key pair, if it is one we issue.
    pub fn of(key: &KeyPair) -> Option<KeyAlg> {
        let alg = key.algorithm();
        if alg == &PKCS_ECDSA_P256_SHA256 {
            Some(KeyAlg::EcdsaP256)
        } else if alg == &PKCS_ED25519 {
            Some(KeyAlg::Ed25519)
        } else if alg == &PKCS_RSA_SHA256 {
            Some(KeyAlg::Rsa2048)
        } else {
            None
        }
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlg {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsa-p256" | "p256" | "ecdsa" => Ok(KeyAlg::EcdsaP256),
            "ed25519" => Ok(KeyAlg::Ed25519),
            "rsa-2048" | "rsa" => Ok(KeyAlg::Rsa2048),
            _ => Err(Error::Parse {
                what: "key algorithm",
                value: s.to_owned(),
                expected: "ecdsa-p256, ed25519 or rsa-2048",
            }),
        }
    }
}

/// Parses a PKCS#8 PEM private key.
pub fn key_pair_from_pem(pem: &str) -> Result<KeyPair> {
    Ok(KeyPair::from_pem(pem)?)
}

/// `N` bytes from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    OsRng.fill_bytes(&mut buf);
    buf
}

/// A random 16-byte positive certificate serial with no leading zero byte,
/// so its DER encoding is exactly these bytes (and `serial_hex` is their hex).
pub(crate) fn random_serial() -> [u8; 16] {
    let mut serial = random_bytes::<16>();
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial
}

/// Lowercase hex without separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_generate() {
        for alg in [KeyAlg::EcdsaP256, KeyAlg::Ed25519, KeyAlg::Rsa2048] {
            assert_eq!(alg.as_str().parse::<KeyAlg>().ok(), Some(alg));
            let key = alg.generate().expect("generate");
            assert_eq!(KeyAlg::of(&key), Some(alg));
            let again = key_pair_from_pem(&key.serialize_pem()).expect("reload");
            assert_eq!(KeyAlg::of(&again), Some(alg));
        }
        assert!("dsa".parse::<KeyAlg>().is_err());
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
    }
}
