//! TLS and mTLS (rustls with the ring provider, TLS 1.2 and 1.3 only): server configs with ALPN
//! and SNI, SPIFFE identities and their authorization, verifiers for both sides, and certificate
//! rotation.
//!
//! - [`listener_config`] builds a listener's [`ServerConfig`] from its settings: several
//!   certificates selected by SNI ([`server::CertResolver`]), and with `client_ca` a
//!   mandatory client certificate checked by [`verify::SpiffeClientVerifier`] (chain, then one
//!   SPIFFE ID of the trust domain, then the `allow` policy).
//! - [`mesh_client_config`] / [`upstream_client_config`] build client configs that present an
//!   identity and require the server's SPIFFE ID ([`verify::SpiffeServerVerifier`]).
//! - Each refusal has a stable [`Reason`], logged with field `reason` by [`accept`].
//! - Files are polled ([`reload`]): a renewed pair serves new handshakes, a bad one is logged and
//!   the old one kept. Certificates are loaded while the plan is built, before anything is bound,
//!   so a binary never reports ready without them.

pub mod client;
mod files;
pub mod reason;
pub mod reload;
pub mod server;
pub mod spiffe;
pub mod verify;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

pub use client::{client_config, mesh_client_config, upstream_client_config};
pub use files::{load_certs, load_key, load_roots};
pub use reason::{Reason, Rejected};
pub use server::{accept, build_server_config, listener_config};
pub use spiffe::{Policy, SpiffeId};

/// ALPN for TCP listeners: HTTP/2 preferred, HTTP/1.1 accepted.
pub const ALPN_H2_H1: &[&[u8]] = &[b"h2", b"http/1.1"];

/// ALPN for QUIC listeners (HTTP/3). A config built with it is TLS 1.3 only, as QUIC requires.
pub const ALPN_H3: &[&[u8]] = &[b"h3"];

/// TLS set-up failures, each naming the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificates from {path}")]
    Certs {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("no certificate found in {path}")]
    NoCerts { path: PathBuf },
    #[error("cannot read a private key from {path}")]
    Key {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the key in {key} does not belong to the certificate in {cert}")]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("invalid TLS configuration")]
    Rustls(#[from] rustls::Error),
    #[error("invalid CA bundle {path}")]
    Verifier {
        path: PathBuf,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    #[error("invalid CA bundle {path}")]
    Roots {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    /// A setting is wrong; `key` is its name under the TLS block (e.g. `allow[1]`).
    #[error("{message}")]
    Setting { key: String, message: String },
}

impl TlsError {
    fn setting(key: impl Into<String>, message: impl Into<String>) -> Self {
        TlsError::Setting {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The setting at fault under the TLS block, when one is (for config error paths).
    pub fn key(&self) -> Option<&str> {
        match self {
            TlsError::Setting { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The one crypto provider of the workspace. Installing it is idempotent; every entry point that
/// builds TLS configs calls this first.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.3 and 1.2, nothing older.
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// TLS 1.3 alone (QUIC).
const VERSIONS_13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The SPIFFE ID in a certificate: its URI SAN when there is exactly one and it is a valid
/// `spiffe://` ID. On an mTLS listener the verifier has already required this.
pub fn spiffe_id(cert: &CertificateDer<'_>) -> Option<String> {
    SpiffeId::from_cert(cert).ok().map(|id| id.to_string())
}
