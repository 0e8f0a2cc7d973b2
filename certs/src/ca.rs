//! The development CA: generate or load one, and issue SPIFFE workload and server leaves.

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;

use crate::issue::{DEFAULT_CA_VALIDITY, DEFAULT_LEAF_VALIDITY};
use crate::key::{hex, random_serial};
use crate::spiffe::{trust_domain_id, trust_domain_of, validate_name, validate_trust_domain};
use crate::{Error, IssueOptions, Issued, KeyAlg, Kind, Result, Validity, spiffe_id};

/// Options for a new CA. `Default`: ECDSA P-256, ten years, CN "Gatehouse Dev CA".
#[derive(Debug, Clone, Default)]
pub struct CaOptions {
    /// Key algorithm. Default: ECDSA P-256.
    pub key_alg: KeyAlg,
    /// Subject common name. Default: `Gatehouse Dev CA (<trust domain>)`.
    pub common_name: Option<String>,
    /// Validity. Default: [`DEFAULT_CA_VALIDITY`] from now.
    pub validity: Option<Validity>,
}

/// A certificate authority for one trust domain: its certificate and signing key.
///
/// The CA certificate carries the URI SAN `spiffe://<trust domain>`, which is how a loaded CA
/// knows its trust domain.
pub struct Ca {
    trust_domain: String,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// Generates a new self-signed CA for `trust_domain`.
    pub fn generate(trust_domain: &str, opts: &CaOptions) -> Result<Ca> {
        validate_trust_domain(trust_domain)?;
        let key = opts.key_alg.generate()?;
        let mut params = CertificateParams::default();
        let validity = opts.validity.unwrap_or(Validity::For(DEFAULT_CA_VALIDITY));
        (params.not_before, params.not_after) = validity.resolve()?;
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        let cn = opts
            .common_name
            .clone()
            .unwrap_or_else(|| format!("Gatehouse Dev CA ({trust_domain})"));
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Gatehouse");
        params.distinguished_name.push(DnType::CommonName, cn);
        // No intermediates below this CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.subject_alt_names = vec![SanType::URI(trust_domain_id(trust_domain).try_into()?)];
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            trust_domain: trust_domain.to_owned(),
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and PKCS#8 key (the contents of `ca.pem`, `ca-key.pem`).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca> {
        let key = KeyPair::from_pem(key_pem)?;
        let cert_der = crate::pem::certs_from_pem(cert_pem)?.swap_remove(0);
        let (_, x509) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|e| Error::X509(e.into()))?;
        if x509.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(Error::KeyMismatch);
        }
        let info = crate::inspect::CertInfo::from_x509(&x509);
        if !info.is_ca {
            return Err(Error::TrustDomain {
                reason: "the certificate is not a CA (basicConstraints CA:TRUE missing)".into(),
            });
        }
        let trust_domain = info
            .sans
            .uris
            .iter()
            .find_map(|u| trust_domain_of(u))
            .ok_or_else(|| Error::TrustDomain {
                reason: "the CA certificate has no spiffe://<trust-domain> URI SAN".into(),
            })?
            .to_owned();
        Ok(Ca {
            trust_domain,
            cert_pem: crate::pem::pem_of(&cert_der),
            issuer: Issuer::from_ca_cert_der(&cert_der, key)?,
            cert_der,
        })
    }

    /// The trust domain this CA issues identities in.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER (a trust anchor for rustls).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA private key, PKCS#8 PEM. Handle with care: it is not redacted.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The CA key's algorithm.
    pub fn key_alg(&self) -> Option<KeyAlg> {
        KeyAlg::of(self.issuer.key())
    }

    /// Issues a workload certificate whose only URI SAN is `spiffe://<td>/<kind>/<name>`,
    /// for both server and client authentication. DNS/IP SANs only as given in `opts`.
    pub fn issue_workload(&self, kind: Kind, name: &str, opts: &IssueOptions) -> Result<Issued> {
        validate_name(name)?;
        self.issue_svid(&spiffe_id(&self.trust_domain, kind, name), name, opts)
    }

    /// Issues a server-only certificate (no SPIFFE ID) for these DNS names and IPs,
    /// plus any in `opts`. The common name is the first DNS name (or IP).
    pub fn issue_server(
        &self,
        dns_names: &[impl AsRef<str>],
        ips: &[IpAddr],
        opts: &IssueOptions,
    ) -> Result<Issued> {
        let mut opts = opts.clone();
        opts.dns_names
            .splice(0..0, dns_names.iter().map(|d| d.as_ref().to_owned()));
        opts.ips.splice(0..0, ips.iter().copied());
        let cn = match (opts.dns_names.first(), opts.ips.first()) {
            (Some(dns), _) => dns.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => {
                return Err(Error::InvalidName {
                    what: "server certificate",
                    value: String::new(),
                    reason: "needs at least one DNS name or IP address",
                });
            }
        };
        self.issue(
            &cn,
            Vec::new(),
            &[ExtendedKeyUsagePurpose::ServerAuth],
            &opts,
        )
    }

    /// Issues an SVID for an arbitrary SPIFFE ID (test fixtures use it for foreign domains).
    pub(crate) fn issue_svid(&self, id: &str, cn: &str, opts: &IssueOptions) -> Result<Issued> {
        let eku = [
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.issue(cn, vec![id.to_owned()], &eku, opts)
    }

    fn issue(
        &self,
        cn: &str,
        mut uris: Vec<String>,
        eku: &[ExtendedKeyUsagePurpose],
        opts: &IssueOptions,
    ) -> Result<Issued> {
        let key = opts.key_alg.generate()?;
        let mut params = CertificateParams::default();
        let validity = opts
            .validity
            .unwrap_or(Validity::For(DEFAULT_LEAF_VALIDITY));
        (params.not_before, params.not_after) = validity.resolve()?;
        let serial = random_serial();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if opts.key_alg == KeyAlg::Rsa2048 {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = eku.to_vec();
        uris.extend(opts.extra_uris.iter().cloned());
        params.subject_alt_names = sans(&uris, &opts.dns_names, &opts.ips)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let cert_pem = cert.pem();
        Ok(Issued {
            chain_pem: format!("{cert_pem}{}", self.cert_pem),
            cert_pem,
            key_pem: key.serialize_pem(),
            serial_hex: hex(&serial),
        })
    }
}

/// URI, DNS and IP SANs in that order, duplicates dropped.
fn sans(uris: &[String], dns: &[String], ips: &[IpAddr]) -> Result<Vec<SanType>> {
    let mut out = Vec::new();
    let all = uris.iter().map(|u| (true, u));
    for (is_uri, value) in all.chain(dns.iter().map(|d| (false, d))) {
        let ia5 = value.clone().try_into()?;
        let san = if is_uri {
            SanType::URI(ia5)
        } else {
            SanType::DnsName(ia5)
        };
        if !out.contains(&san) {
            out.push(san);
        }
    }
    for ip in ips {
        let san = SanType::IpAddress(*ip);
        if !out.contains(&san) {
            out.push(san);
        }
    }
    Ok(out)
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("trust_domain", &self.trust_domain)
            .field("key_alg", &self.key_alg())
            .field("key", &format_args!("<redacted>"))
            .finish_non_exhaustive()
    }
}
