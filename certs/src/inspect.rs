//! Reading a certificate back: subject, issuer, SANs, SPIFFE ID, validity, serial.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::time::ASN1Time;

use crate::key::hex;
use crate::{Error, Result};

/// Subject alternative names, by type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sans {
    /// DNS names.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<IpAddr>,
    /// URIs (SPIFFE IDs among them).
    pub uris: Vec<String>,
}

/// What `inspect` reports about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject DN, e.g. `CN=orders`.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Subject alternative names.
    pub sans: Sans,
    /// The SPIFFE ID: set only if there is exactly one URI SAN and it is a `spiffe://` URI.
    pub spiffe_id: Option<String>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Serial number, lowercase hex without separators.
    pub serial: String,
    /// Whether basicConstraints says CA:TRUE.
    pub is_ca: bool,
    /// Extended key usages we know by name: `serverAuth`, `clientAuth`.
    pub ext_key_usage: Vec<&'static str>,
}

/// Inspects the first certificate of a PEM text (a leaf, or the leaf of a chain).
pub fn inspect(pem: &str) -> Result<CertInfo> {
    let der = crate::pem::certs_from_pem(pem)?.swap_remove(0);
    inspect_der(&der)
}

/// Inspects one DER certificate.
pub fn inspect_der(der: &[u8]) -> Result<CertInfo> {
    let (_, x509) = x509_parser::parse_x509_certificate(der).map_err(|e| Error::X509(e.into()))?;
    Ok(CertInfo::from_x509(&x509))
}

impl CertInfo {
    /// Extracts the fields from a parsed certificate. Malformed extensions read as absent.
    pub(crate) fn from_x509(x509: &X509Certificate<'_>) -> CertInfo {
        let mut sans = Sans::default();
        if let Ok(Some(ext)) = x509.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(d) => sans.dns.push((*d).to_owned()),
                    GeneralName::URI(u) => sans.uris.push((*u).to_owned()),
                    GeneralName::IPAddress(b) => sans.ips.extend(ip_from_bytes(b)),
                    _ => {}
                }
            }
        }
        let spiffe_id = match sans.uris.as_slice() {
            [only] if only.starts_with("spiffe://") => Some(only.clone()),
            _ => None,
        };
        let mut ext_key_usage = Vec::new();
        if let Ok(Some(eku)) = x509.extended_key_usage() {
            if eku.value.server_auth {
                ext_key_usage.push("serverAuth");
            }
            if eku.value.client_auth {
                ext_key_usage.push("clientAuth");
            }
        }
        let validity = x509.validity();
        CertInfo {
            subject: x509.subject().to_string(),
            issuer: x509.issuer().to_string(),
            sans,
            spiffe_id,
            not_before: system_time(&validity.not_before),
            not_after: system_time(&validity.not_after),
            serial: hex(x509.raw_serial()),
            is_ca: x509.is_ca(),
            ext_key_usage,
        }
    }

    /// Whether `at` falls within the validity period.
    pub fn is_valid_at(&self, at: SystemTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

fn system_time(t: &ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    let offset = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    dt.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{dt}"))
}

impl fmt::Display for CertInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "-".to_owned()
            } else {
                v.join(", ")
            }
        };
        writeln!(f, "subject:    {}", self.subject)?;
        writeln!(f, "issuer:     {}", self.issuer)?;
        writeln!(
            f,
            "spiffe id:  {}",
            self.spiffe_id.as_deref().unwrap_or("-")
        )?;
        writeln!(f, "uri sans:   {}", list(self.sans.uris.clone()))?;
        writeln!(f, "dns sans:   {}", list(self.sans.dns.clone()))?;
        let ips = self.sans.ips.iter().map(ToString::to_string).collect();
        writeln!(f, "ip sans:    {}", list(ips))?;
        writeln!(f, "not before: {}", rfc3339(self.not_before))?;
        writeln!(f, "not after:  {}", rfc3339(self.not_after))?;
        writeln!(f, "serial:     {}", self.serial)?;
        writeln!(f, "ca:         {}", self.is_ca)?;
        let eku = self.ext_key_usage.iter().map(|s| (*s).to_owned()).collect();
        write!(f, "ext usage:  {}", list(eku))
    }
}
