//! The crate's error type: every failure of the PKI library, with its cause kept.

use std::path::PathBuf;

/// Everything the PKI library can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// rcgen refused to build or sign a certificate or key.
    #[error("certificate or key generation failed")]
    Rcgen(#[from] rcgen::Error),

    /// RSA key generation or encoding (the `rsa` crate) failed.
    #[error("RSA key generation failed")]
    Rsa(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// Reading or writing a file failed.
    #[error("{action} {path}")]
    Io {
        /// What we were doing: "cannot read", "cannot create", ...
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The input held no PEM block of the expected kind, or a malformed one.
    #[error("invalid PEM: expected {expected}")]
    Pem {
        /// What was expected ("CERTIFICATE", "PRIVATE KEY").
        expected: &'static str,
        #[source]
        source: Option<rustls_pki_types::pem::Error>,
    },

    /// A DER certificate could not be parsed.
    #[error("cannot parse X.509 certificate")]
    X509(#[source] x509_parser::error::X509Error),

    /// A name (trust domain, identity name, DNS name) is not acceptable.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// "trust domain", "identity name", ...
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A string naming an algorithm, a duration or a claim did not parse.
    #[error("invalid {what} {value:?}; expected {expected}")]
    Parse {
        /// What was being parsed ("key algorithm", "duration", ...).
        what: &'static str,
        /// The offending input.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },

    /// A validity period reaches outside the years 1950 to 9999.
    #[error("validity period outside the years 1950 to 9999")]
    Validity,

    /// The directory has no CA to sign with.
    #[error("no CA in {dir} (missing {missing}); run `gatehouse-certs init --dir {dir}` first")]
    NoCa {
        /// The directory searched.
        dir: PathBuf,
        /// The file that is absent.
        missing: PathBuf,
    },

    /// The directory has no JWT signing key.
    #[error("no JWT signing key at {path}; run `gatehouse-certs jwt-keys --dir {dir}` first")]
    NoJwtKey {
        /// The directory searched.
        dir: PathBuf,
        /// The file that is absent.
        path: PathBuf,
    },

    /// One file of a pair (certificate, key) exists and the other does not.
    #[error("{present} exists but {missing} does not; remove {present} to regenerate it")]
    Incomplete {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },

    /// The CA certificate does not name a trust domain, or names another one.
    #[error("CA trust domain: {reason}")]
    TrustDomain {
        /// What is wrong.
        reason: String,
    },

    /// Two requested identities would be written to the same files.
    #[error("identity {name:?} requested as both {first} and {second}")]
    DuplicateIdentity {
        /// The clashing name.
        name: String,
        /// The first kind it was requested as.
        first: crate::Kind,
        /// The second kind.
        second: crate::Kind,
    },

    /// A private key does not belong to the certificate it was loaded with.
    #[error("the private key does not match the certificate")]
    KeyMismatch,

    /// The key is of an algorithm this operation does not support.
    #[error("unsupported key: {0}")]
    UnsupportedKey(&'static str),

    /// An existing key is not of the algorithm that was asked for.
    #[error("{path} holds a key for {found}, not {wanted}; remove it to generate a new one")]
    AlgorithmMismatch {
        /// The key file.
        path: PathBuf,
        /// Its algorithm.
        found: String,
        /// The algorithm asked for.
        wanted: String,
    },

    /// Signing a JWT failed.
    #[error("cannot sign JWT")]
    Jwt(#[from] jsonwebtoken::errors::Error),

    /// Serializing JSON (claims, JWKS) failed.
    #[error("cannot serialize JSON")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
