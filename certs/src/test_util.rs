//! Test fixtures for every crate's tests: an in-memory CA, good leaves and deliberately bad ones.
//!
//! ```
//! use gatehouse_certs::test_util::{LeafOptions, TestPki};
//! use gatehouse_certs::Kind;
//!
//! let pki = TestPki::new("gatehouse.local");
//! let orders = pki.workload(Kind::Service, "orders");
//! assert_eq!(orders.spiffe_id.as_deref(), Some("spiffe://gatehouse.local/service/orders"));
//! let stale = pki.workload_with(Kind::Service, "orders", LeafOptions::new().expired());
//! let server = pki.server(&["localhost", "127.0.0.1"]);
//! let (_chain, _key) = (server.cert_der_chain(), server.key_der());
//! # let _ = stale;
//! ```
//!
//! Everything here panics on failure (with a message): it is for tests only.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::layout::{cert_file, ensure_identity, key_file, write_ca};
use crate::pem::{create_private_dir, write_new_file, write_private_key};
use crate::{
    Ca, CaOptions, CertInfo, IssueOptions, Issued, JwtAlg, JwtKeys, KeyAlg, Kind, Validity,
    spiffe_id,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// An in-memory ECDSA CA for one trust domain.
#[derive(Debug)]
pub struct TestPki {
    ca: Ca,
}

impl TestPki {
    /// A fresh CA for `trust_domain` (e.g. `"gatehouse.local"`).
    pub fn new(trust_domain: &str) -> Self {
        Self::with_cn(trust_domain, "Gatehouse Test CA")
    }

    /// A second, unrelated CA (another key) for the same trust domain, `gatehouse.local`:
    /// its leaves carry the right SPIFFE IDs but must not verify against [`TestPki::new`]'s CA.
    pub fn other() -> Self {
        Self::with_cn("gatehouse.local", "Unrelated Test CA")
    }

    fn with_cn(trust_domain: &str, cn: &str) -> Self {
        let opts = CaOptions {
            common_name: Some(cn.to_owned()),
            ..CaOptions::default()
        };
        let ca = Ca::generate(trust_domain, &opts).expect("test CA generation");
        TestPki { ca }
    }

    /// The CA itself.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        self.ca.trust_domain()
    }

    /// The CA certificate, PEM (a trust bundle for this PKI).
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The CA certificate, DER (a trust anchor for rustls).
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.cert_der().clone()
    }

    /// A server-only certificate; names that parse as IP addresses become IP SANs.
    pub fn server(&self, names: &[&str]) -> TestCert {
        let (ips, dns): (Vec<&str>, Vec<&str>) =
            names.iter().partition(|n| n.parse::<IpAddr>().is_ok());
        let ips: Vec<IpAddr> = ips.iter().filter_map(|i| i.parse().ok()).collect();
        let issued = self
            .ca
            .issue_server(&dns, &ips, &IssueOptions::default())
            .expect("test server certificate");
        TestCert::new(issued, None)
    }

    /// A valid workload SVID: only URI SAN `spiffe://<td>/<kind>/<name>`, no DNS/IP SANs.
    pub fn workload(&self, kind: Kind, name: &str) -> TestCert {
        self.workload_with(kind, name, LeafOptions::new())
    }

    /// A workload SVID bent by `opts` (expired, not yet valid, two URIs, foreign domain, ...).
    pub fn workload_with(&self, kind: Kind, name: &str, opts: LeafOptions) -> TestCert {
        let td = opts.trust_domain.as_deref().unwrap_or(self.trust_domain());
        let id = spiffe_id(td, kind, name);
        let issued = self
            .ca
            .issue_svid(&id, name, &opts.issue)
            .expect("test workload certificate");
        let single = opts.issue.extra_uris.is_empty();
        TestCert::new(issued, single.then_some(id))
    }

    /// Writes the layout `gatehouse-certs init` writes with default flags: `ca.pem`,
    /// `ca-key.pem`, `edge.pem`, `edge-key.pem`, `internal.pem`, `internal-key.pem`.
    pub fn write_dir(&self, dir: &Path) {
        create_private_dir(dir).expect("create test cert dir");
        write_ca(dir, &self.ca).expect("write test CA");
        for name in crate::layout::DEFAULT_GATEWAYS {
            self.write_identity(dir, Kind::Gateway, name);
        }
    }

    /// Writes `<name>.pem` and `<name>-key.pem` as `gatehouse-certs issue` does (SPIFFE ID plus
    /// DNS `<name>`, `localhost`, IPs 127.0.0.1 and ::1). Returns (cert path, key path).
    pub fn write_identity(&self, dir: &Path, kind: Kind, name: &str) -> (PathBuf, PathBuf) {
        ensure_identity(dir, &self.ca, kind, name, &IssueOptions::default())
            .expect("write test identity");
        (dir.join(cert_file(name)), dir.join(key_file(name)))
    }
}

/// Options for [`TestPki::workload_with`]: a builder, each call bends one property.
#[derive(Debug, Clone, Default)]
pub struct LeafOptions {
    issue: IssueOptions,
    trust_domain: Option<String>,
}

impl LeafOptions {
    /// A normal, valid leaf.
    pub fn new() -> Self {
        Self::default()
    }

    /// Valid from two days ago until one day ago.
    pub fn expired(self) -> Self {
        let now = SystemTime::now();
        self.validity(Validity::Between {
            not_before: now - 2 * DAY,
            not_after: now - DAY,
        })
    }

    /// Valid from tomorrow for a day.
    pub fn not_yet_valid(self) -> Self {
        let now = SystemTime::now();
        self.validity(Validity::Between {
            not_before: now + DAY,
            not_after: now + 2 * DAY,
        })
    }

    /// Any validity.
    pub fn validity(mut self, validity: Validity) -> Self {
        self.issue.validity = Some(validity);
        self
    }

    /// Adds a second URI SAN (making the certificate an invalid SVID).
    pub fn second_uri(mut self, uri: impl Into<String>) -> Self {
        self.issue.extra_uris.push(uri.into());
        self
    }

    /// Puts the SPIFFE ID in another trust domain (still signed by this CA).
    pub fn trust_domain(mut self, trust_domain: impl Into<String>) -> Self {
        self.trust_domain = Some(trust_domain.into());
        self
    }

    /// Adds a DNS SAN.
    pub fn dns(mut self, name: impl Into<String>) -> Self {
        self.issue.dns_names.push(name.into());
        self
    }

    /// Adds an IP SAN.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.issue.ips.push(ip);
        self
    }

    /// Sets the leaf key algorithm.
    pub fn key_alg(mut self, alg: KeyAlg) -> Self {
        self.issue.key_alg = alg;
        self
    }
}

/// A test leaf. `Debug` does not print the key.
#[derive(Clone)]
pub struct TestCert {
    /// The chain, leaf then CA: what a server or client presents.
    pub cert_pem: String,
    /// The leaf certificate alone.
    pub leaf_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// Serial number, lowercase hex.
    pub serial_hex: String,
    /// The SPIFFE ID, for workloads with a single URI SAN.
    pub spiffe_id: Option<String>,
}

impl TestCert {
    fn new(issued: Issued, spiffe_id: Option<String>) -> Self {
        TestCert {
            cert_pem: issued.chain_pem,
            leaf_pem: issued.cert_pem,
            key_pem: issued.key_pem,
            serial_hex: issued.serial_hex,
            spiffe_id,
        }
    }

    /// The chain as DER, for rustls.
    pub fn cert_der_chain(&self) -> Vec<CertificateDer<'static>> {
        crate::pem::certs_from_pem(&self.cert_pem).expect("test chain PEM")
    }

    /// The private key as DER, for rustls.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        crate::pem::private_key_from_pem(&self.key_pem).expect("test key PEM")
    }

    /// The leaf as parsed by [`crate::inspect`].
    pub fn info(&self) -> CertInfo {
        crate::inspect(&self.leaf_pem).expect("inspect test leaf")
    }

    /// Writes `<name>.pem` (chain) and `<name>-key.pem` (0600) into `dir`, which must exist;
    /// returns (cert path, key path).
    pub fn write_to(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join(cert_file(name)), dir.join(key_file(name)));
        write_private_key(&key, &self.key_pem).expect("write test key");
        write_new_file(&cert, &self.cert_pem).expect("write test cert");
        (cert, key)
    }
}

impl std::fmt::Debug for TestCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCert")
            .field("spiffe_id", &self.spiffe_id)
            .field("serial_hex", &self.serial_hex)
            .field("key_pem", &format_args!("<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A fresh JWT signing key (ES256, RS256 or EdDSA) for tests.
pub fn jwt_keys(alg: JwtAlg) -> JwtKeys {
    JwtKeys::generate(alg).expect("test JWT key generation")
}
