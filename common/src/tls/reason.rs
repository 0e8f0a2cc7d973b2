//! Why a TLS handshake was refused: one stable name per cause, for the `reason` log field (and
//! any metric label), recovered from whatever error rustls or the socket returned.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::{CertificateError, OtherError};

/// A handshake refusal's cause. [`Reason::as_str`] is stable: dashboards and tests rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// mTLS listener, and the client sent no certificate.
    NoClientCertificate,
    /// The chain does not lead to the trust bundle (another CA, or a bad signature).
    UnknownCa,
    /// The certificate (or one in its chain) is past its `notAfter`.
    Expired,
    /// The certificate (or one in its chain) is before its `notBefore`.
    NotYetValid,
    /// Unparseable, wrong key usage, or otherwise unusable certificate.
    BadCertificate,
    /// More than one URI SAN: not a valid SVID.
    MultipleUriSans,
    /// No URI SAN, or one that is not `spiffe://`.
    NoSpiffeId,
    /// A `spiffe://` URI that breaks the SPIFFE ID rules (or names no workload).
    InvalidSpiffeId,
    /// A SPIFFE ID of another trust domain.
    ForeignTrustDomain,
    /// A SPIFFE ID of the trust domain that the listener's `allow` policy does not admit.
    IdentityNotAllowed,
    /// Client side: the server's SPIFFE ID is not the one expected.
    UnexpectedIdentity,
    /// The first byte is not a TLS handshake record (plaintext HTTP to a TLS port).
    NotTls,
    /// The handshake did not finish within `limits.tls_handshake_timeout`.
    HandshakeTimeout,
    /// The peer closed the connection before finishing the handshake.
    ConnectionClosed,
    /// The peer refused our certificate or parameters with an alert.
    PeerAlert,
    /// Anything else (protocol violation, no common version or cipher suite, I/O error).
    HandshakeFailed,
}

impl Reason {
    /// The stable name, e.g. `foreign_trust_domain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoClientCertificate => "no_client_certificate",
            Reason::UnknownCa => "unknown_ca",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::BadCertificate => "bad_certificate",
            Reason::MultipleUriSans => "multiple_uri_sans",
            Reason::NoSpiffeId => "no_spiffe_id",
            Reason::InvalidSpiffeId => "invalid_spiffe_id",
            Reason::ForeignTrustDomain => "foreign_trust_domain",
            Reason::IdentityNotAllowed => "identity_not_allowed",
            Reason::UnexpectedIdentity => "unexpected_identity",
            Reason::NotTls => "not_tls",
            Reason::HandshakeTimeout => "handshake_timeout",
            Reason::ConnectionClosed => "connection_closed",
            Reason::PeerAlert => "peer_alert",
            Reason::HandshakeFailed => "handshake_failed",
        }
    }

    /// The reason behind a rustls error (our verifiers' [`Rejected`] included).
    pub fn of(err: &rustls::Error) -> Reason {
        match err {
            rustls::Error::NoCertificatesPresented => Reason::NoClientCertificate,
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                Rejected::from_other(other)
                    .map(|r| r.reason)
                    .unwrap_or(Reason::BadCertificate)
            }
            rustls::Error::InvalidCertificate(c) => Reason::of_certificate(c),
            rustls::Error::AlertReceived(_) => Reason::PeerAlert,
            _ => Reason::HandshakeFailed,
        }
    }

    fn of_certificate(err: &CertificateError) -> Reason {
        match err {
            CertificateError::UnknownIssuer => Reason::UnknownCa,
            #[allow(deprecated)]
            CertificateError::BadSignature => Reason::UnknownCa,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Reason::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Reason::NotYetValid
            }
            _ => Reason::BadCertificate,
        }
    }

    /// The reason behind a failed handshake as tokio-rustls reports it (an I/O error wrapping
    /// the rustls error, or a socket error).
    pub fn of_io(err: &io::Error) -> Reason {
        if let Some(tls) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            return Reason::of(tls);
        }
        match err.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Reason::ConnectionClosed,
            _ => Reason::HandshakeFailed,
        }
    }

    /// The SPIFFE ID our verifier saw, when the refusal came from it.
    pub fn peer_id_of(err: &io::Error) -> Option<String> {
        match err.get_ref()?.downcast_ref::<rustls::Error>()? {
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                Rejected::from_other(other)?.peer_id.clone()
            }
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal by one of our verifiers, carried through rustls inside
/// `CertificateError::Other` so the reason and the peer's ID survive to the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub reason: Reason,
    /// The peer's SPIFFE ID, when it had a valid one.
    pub peer_id: Option<String>,
}

impl Rejected {
    /// A refusal for `reason`.
    pub fn new(reason: Reason, peer_id: Option<String>) -> Self {
        Rejected { reason, peer_id }
    }

    /// Wraps `self` as the rustls error our verifiers return (alert `certificate_unknown`).
    pub fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(self))))
    }

    fn from_other(other: &OtherError) -> Option<&Rejected> {
        let err: &(dyn std::error::Error + 'static) = other.0.as_ref();
        err.downcast_ref::<Rejected>()
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.peer_id {
            Some(id) => write!(f, "peer certificate refused ({}): {id}", self.reason),
            None => write!(f, "peer certificate refused ({})", self.reason),
        }
    }
}

impl std::error::Error for Rejected {}
