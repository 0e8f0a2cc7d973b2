//! Start-up errors of a demo service: what could not be loaded or bound, with its cause.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a demo service could not start. Errors in flight are answered to the client instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound (address in use, not local, no permission).
    #[error("cannot bind the {listener} listener on {addr}")]
    Bind {
        /// `main` or `admin`.
        listener: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The `idp` needs `--jwt-key FILE`.
    #[error(
        "the idp needs a signing key: pass --jwt-key FILE (made by `gatehouse-certs jwt-keys`)"
    )]
    MissingJwtKey,
    /// The JWT signing key could not be read or parsed.
    #[error("cannot load the JWT signing key {path}")]
    JwtKey {
        path: PathBuf,
        #[source]
        source: gatehouse_certs::Error,
    },
    /// A service name that is not one of the demo services.
    #[error("unknown demo service `{0}` (expected one of: {list})", list = crate::ServiceName::list())]
    UnknownService(String),
}

/// Result of starting a demo service.
pub type Result<T, E = Error> = std::result::Result<T, E>;
