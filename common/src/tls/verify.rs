//! Certificate verifiers for mesh mTLS: the chain is checked by webpki against the trust bundle,
//! then the peer's single SPIFFE ID against a [`Policy`] (server side) or the one expected
//! (client side). Refusals carry a [`Reason`] through rustls (see [`Rejected`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::reload::Watched;
use super::{Policy, Reason, Rejected, SpiffeId, TlsError, load_roots, provider};

/// Server side of mTLS: requires a client certificate chained to the trust bundle, then one
/// SPIFFE ID that `policy` admits. The bundle may be a watched file (rotation).
///
/// Sends no CA names in the certificate request (they would go stale when the bundle rotates;
/// mesh clients present their one identity anyway).
#[derive(Debug)]
pub struct SpiffeClientVerifier {
    chain: Arc<Watched<Arc<dyn ClientCertVerifier>>>,
    policy: Policy,
}

fn webpki_client(roots: RootCertStore, ca: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|source| TlsError::Verifier {
            path: ca.to_owned(),
            source,
        })
}

impl SpiffeClientVerifier {
    /// Trusts `roots` (fixed) and admits the peers `policy` admits.
    pub fn new(roots: RootCertStore, policy: Policy) -> Result<Self, TlsError> {
        let chain = webpki_client(roots, Path::new("<memory>"))?;
        Ok(SpiffeClientVerifier {
            chain: Watched::fixed("client CA bundle", chain),
            policy,
        })
    }

    /// Trusts the PEM bundle `ca`, re-read every `every` when it changes.
    pub fn from_file(ca: &Path, policy: Policy, every: Option<Duration>) -> Result<Self, TlsError> {
        let path = ca.to_owned();
        let chain = Watched::load("client CA bundle", vec![path.clone()], every, move || {
            webpki_client(load_roots(&path)?, &path)
        })?;
        Ok(SpiffeClientVerifier { chain, policy })
    }

    /// The whole check, with the admitted ID or the reason for refusal.
    pub fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<SpiffeId, Reason> {
        self.verify(end_entity, intermediates, now)
            .map_err(|e| Reason::of(&e))
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<SpiffeId, rustls::Error> {
        self.chain
            .get()
            .verify_client_cert(end_entity, intermediates, now)?;
        let id =
            SpiffeId::from_cert(end_entity).map_err(|r| Rejected::new(r, None).into_rustls())?;
        self.policy
            .check(&id)
            .map_err(|r| Rejected::new(r, Some(id.to_string())).into_rustls())?;
        Ok(id)
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.get().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.get().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.get().supported_verify_schemes()
    }
}

/// Client side of mesh mTLS: the server's chain must lead to the trust bundle and its single
/// URI SAN must be `expected`. The DNS name or IP the client dialled is not checked: mesh peers
/// are identified by SPIFFE ID, so endpoints may be plain IP addresses.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    roots: Arc<Watched<RootCertStore>>,
    expected: SpiffeId,
    algs: WebPkiSupportedAlgorithms,
}

impl SpiffeServerVerifier {
    /// Trusts `roots` (fixed) and requires `expected`.
    pub fn new(roots: RootCertStore, expected: SpiffeId) -> Self {
        SpiffeServerVerifier {
            roots: Watched::fixed("CA bundle", roots),
            expected,
            algs: provider().signature_verification_algorithms,
        }
    }

    /// Trusts the PEM bundle `ca`, re-read every `every` when it changes.
    pub fn from_file(
        ca: &Path,
        expected: SpiffeId,
        every: Option<Duration>,
    ) -> Result<Self, TlsError> {
        let path = ca.to_owned();
        let roots = Watched::load("CA bundle", vec![path.clone()], every, move || {
            load_roots(&path)
        })?;
        Ok(SpiffeServerVerifier {
            roots,
            expected,
            algs: provider().signature_verification_algorithms,
        })
    }

    /// The whole check, with the server's ID or the reason for refusal.
    pub fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<SpiffeId, Reason> {
        self.verify(end_entity, intermediates, now)
            .map_err(|e| Reason::of(&e))
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<SpiffeId, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots.get(),
            intermediates,
            now,
            self.algs.all,
        )?;
        let id =
            SpiffeId::from_cert(end_entity).map_err(|r| Rejected::new(r, None).into_rustls())?;
        if id != self.expected {
            return Err(
                Rejected::new(Reason::UnexpectedIdentity, Some(id.to_string())).into_rustls(),
            );
        }
        Ok(id)
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify(end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
