//! What a leaf is issued with ([`IssueOptions`], [`Validity`]) and what comes back ([`Issued`]).

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

use crate::{Error, KeyAlg, Result};

/// How far `not_before` is set back from now, for clocks that lag a little (containers).
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Default leaf lifetime: one year.
pub const DEFAULT_LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Default CA lifetime: ten years.
pub const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From now (less [`CLOCK_SKEW`]) for this long.
    For(Duration),
    /// Between two instants (either may be in the past or the future).
    Between {
        /// First instant of validity.
        not_before: SystemTime,
        /// Last instant of validity.
        not_after: SystemTime,
    },
}

impl Validity {
    /// The `(not_before, not_after)` pair, resolved against the current time.
    pub(crate) fn resolve(self) -> Result<(OffsetDateTime, OffsetDateTime)> {
        let (from, to) = match self {
            Validity::For(d) => {
                let now = SystemTime::now();
                let from = now.checked_sub(CLOCK_SKEW).unwrap_or(now);
                (from, now.checked_add(d).ok_or(Error::Validity)?)
            }
            Validity::Between {
                not_before,
                not_after,
            } => (not_before, not_after),
        };
        Ok((offset(from)?, offset(to)?))
    }
}

/// A `SystemTime` as an `OffsetDateTime`, or an error outside the years X.509 can express.
fn offset(t: SystemTime) -> Result<OffsetDateTime> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).map_err(|_| Error::Validity)?,
        Err(e) => i64::try_from(e.duration().as_secs())
            .map(|s| -s)
            .map_err(|_| Error::Validity)?,
    };
    let dt = OffsetDateTime::from_unix_timestamp(secs).map_err(|_| Error::Validity)?;
    if (1950..=9999).contains(&dt.year()) {
        Ok(dt)
    } else {
        Err(Error::Validity)
    }
}

/// Options for a leaf certificate. `Default`: one year, ECDSA P-256, no extra SANs.
#[derive(Debug, Clone, Default)]
pub struct IssueOptions {
    /// Validity. Default: [`DEFAULT_LEAF_VALIDITY`] from now.
    pub validity: Option<Validity>,
    /// Key algorithm of the new leaf key. Default: ECDSA P-256.
    pub key_alg: KeyAlg,
    /// Extra DNS SANs.
    pub dns_names: Vec<String>,
    /// Extra IP SANs.
    pub ips: Vec<IpAddr>,
    /// Test fixtures only: further URI SANs (a valid SVID has exactly one).
    pub(crate) extra_uris: Vec<String>,
}

impl IssueOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the validity.
    pub fn validity(mut self, validity: Validity) -> Self {
        self.validity = Some(validity);
        self
    }

    /// Sets the key algorithm.
    pub fn key_alg(mut self, alg: KeyAlg) -> Self {
        self.key_alg = alg;
        self
    }

    /// Adds a DNS SAN.
    pub fn dns(mut self, name: impl Into<String>) -> Self {
        self.dns_names.push(name.into());
        self
    }

    /// Adds an IP SAN.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ips.push(ip);
        self
    }
}

/// A freshly issued leaf: certificate, chain and private key, all PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The leaf certificate alone.
    pub cert_pem: String,
    /// The private key, PKCS#8.
    pub key_pem: String,
    /// Leaf then CA: what a TLS server or client presents.
    pub chain_pem: String,
    /// Serial number, lowercase hex without separators.
    pub serial_hex: String,
}

impl Issued {
    /// The chain (leaf then CA) as DER, ready for rustls.
    pub fn cert_der_chain(&self) -> Result<Vec<CertificateDer<'static>>> {
        crate::pem::certs_from_pem(&self.chain_pem)
    }

    /// The private key as DER, ready for rustls.
    pub fn key_der(&self) -> Result<PrivateKeyDer<'static>> {
        crate::pem::private_key_from_pem(&self.key_pem)
    }
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("serial_hex", &self.serial_hex)
            .field("cert_pem", &format_args!("<{} bytes>", self.cert_pem.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .finish_non_exhaustive()
    }
}
