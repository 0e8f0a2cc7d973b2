//! Client side: configs that trust a bundle (or the web PKI), present a rotating identity, and
//! for the mesh require the server's SPIFFE ID instead of its host name.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::ServerCertVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};

use super::files::load_certified_key;
use super::reload::Watched;
use super::server::ServingCert;
use super::verify::SpiffeServerVerifier;
use super::{SpiffeId, TlsError, VERSIONS, load_roots, provider};
use crate::settings::UpstreamTlsSettings;

/// How often identity and bundle files are checked when no setting says otherwise.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Presents the current certificate of a watched pair (rotation without a restart).
#[derive(Debug)]
pub struct IdentityResolver {
    cert: Arc<Watched<ServingCert>>,
}

impl IdentityResolver {
    /// Loads `cert` and `key`, re-reading them every `every` when they change.
    pub fn from_files(cert: &Path, key: &Path, every: Option<Duration>) -> Result<Self, TlsError> {
        let (c, k) = (cert.to_owned(), key.to_owned());
        let cert = Watched::load(
            "client certificate",
            vec![c.clone(), k.clone()],
            every,
            move || load_certified_key(&c, &k).map(ServingCert::new),
        )?;
        Ok(IdentityResolver { cert })
    }

    /// An in-memory identity (tests, benches).
    pub fn fixed(key: CertifiedKey) -> Self {
        IdentityResolver {
            cert: Watched::fixed("client certificate", ServingCert::new(key)),
        }
    }
}

impl ResolvesClientCert for IdentityResolver {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.cert.get().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A mesh client: trusts the PEM bundle `ca`, presents `cert`/`key`, and accepts only a server
/// whose single URI SAN is `expected_id` (the dialled name or IP is not checked). Files are
/// re-read when they change ([`DEFAULT_RELOAD_INTERVAL`]).
pub fn mesh_client_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
    expected_id: &str,
) -> Result<ClientConfig, TlsError> {
    let expected = expected_spiffe_id(expected_id)?;
    let every = Some(DEFAULT_RELOAD_INTERVAL);
    let verifier = SpiffeServerVerifier::from_file(ca, expected, every)?;
    let identity = IdentityResolver::from_files(cert, key, every)?;
    with_verifier(Arc::new(verifier), Some(Arc::new(identity)))
}

/// A client config from parts: TLS 1.2 and 1.3, `verifier` for the server, and an identity to
/// present when the server asks (mTLS).
pub fn with_verifier(
    verifier: Arc<dyn ServerCertVerifier>,
    identity: Option<Arc<dyn ResolvesClientCert>>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    Ok(match identity {
        Some(id) => builder.with_client_cert_resolver(id),
        None => builder.with_no_client_auth(),
    })
}

/// A client config trusting `ca` (or the web PKI roots) with the usual host name check,
/// optionally presenting an identity. Files are read once.
pub fn client_config(
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(roots(ca)?);
    Ok(match identity {
        Some((cert, key)) => builder
            .with_client_cert_resolver(Arc::new(IdentityResolver::from_files(cert, key, None)?)),
        None => builder.with_no_client_auth(),
    })
}

fn roots(ca: Option<&Path>) -> Result<RootCertStore, TlsError> {
    match ca {
        Some(ca) => load_roots(ca),
        None => Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
    }
}

/// The client config of a service's `tls` block. With `expect_spiffe_id`: mesh mTLS (the
/// server's SPIFFE ID is checked, not its name; `ca` required). Identity and mesh bundle are
/// watched every `reload_interval` (`0s`: not watched).
pub fn upstream_client_config(t: &UpstreamTlsSettings) -> Result<ClientConfig, TlsError> {
    let every = Some(t.reload_interval.get()).filter(|d| !d.is_zero());
    let identity: Option<Arc<dyn ResolvesClientCert>> = match (&t.cert, &t.key) {
        (Some(c), Some(k)) => Some(Arc::new(IdentityResolver::from_files(c, k, every)?)),
        (None, None) => None,
        (Some(_), None) => return Err(TlsError::setting("key", "`cert` needs its `key`")),
        (None, Some(_)) => return Err(TlsError::setting("cert", "`key` needs its `cert`")),
    };
    match &t.expect_spiffe_id {
        Some(id) => {
            let expected = expected_spiffe_id(id)?;
            let Some(ca) = &t.ca else {
                return Err(TlsError::setting(
                    "ca",
                    "`expect_spiffe_id` needs `ca`, the mesh trust bundle",
                ));
            };
            let verifier = SpiffeServerVerifier::from_file(ca, expected, every)?;
            with_verifier(Arc::new(verifier), identity)
        }
        None => {
            let builder = ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(VERSIONS)?
                .with_root_certificates(roots(t.ca.as_deref())?);
            Ok(match identity {
                Some(id) => builder.with_client_cert_resolver(id),
                None => builder.with_no_client_auth(),
            })
        }
    }
}

fn expected_spiffe_id(id: &str) -> Result<SpiffeId, TlsError> {
    let parsed =
        SpiffeId::parse(id).map_err(|e| TlsError::setting("expect_spiffe_id", e.to_string()))?;
    if parsed.path().is_empty() {
        return Err(TlsError::setting(
            "expect_spiffe_id",
            format!("`{id}` is a trust domain, not a workload"),
        ));
    }
    Ok(parsed)
}
