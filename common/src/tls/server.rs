//! Server side: a listener's [`ServerConfig`] (certificates by SNI, ALPN, optional SPIFFE mTLS)
//! and [`accept`], the handshake with its plaintext detection and refusal logging.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use x509_parser::extensions::GeneralName;

use super::files::load_certified_key;
use super::reload::Watched;
use super::spiffe::DEFAULT_TRUST_DOMAIN;
use super::verify::SpiffeClientVerifier;
use super::{ALPN_H3, Policy, Reason, TlsError, VERSIONS, VERSIONS_13, provider};
use crate::settings::ServerTlsSettings;

/// A certificate ready to serve, with the DNS names (lowercase, `*.` wildcards kept) it is
/// selected for.
#[derive(Debug)]
pub struct ServingCert {
    pub key: Arc<CertifiedKey>,
    pub names: Vec<String>,
}

impl ServingCert {
    /// Wraps a loaded pair; its names are the leaf's DNS SANs.
    pub fn new(key: CertifiedKey) -> Self {
        let names = key
            .end_entity_cert()
            .ok()
            .and_then(|der| x509_parser::parse_x509_certificate(der.as_ref()).ok())
            .and_then(|(_, cert)| {
                let san = cert.subject_alternative_name().ok()??;
                Some(
                    san.value
                        .general_names
                        .iter()
                        .filter_map(|n| match n {
                            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                            _ => None,
                        })
                        .collect(),
                )
            })
            .unwrap_or_default();
        ServingCert {
            key: Arc::new(key),
            names,
        }
    }

    /// Whether this certificate is for `sni` (exact, or one label under a `*.` wildcard).
    pub fn serves(&self, sni: &str) -> bool {
        self.names.iter().any(|name| match name.strip_prefix("*.") {
            Some(parent) => sni.split_once('.').is_some_and(|(label, rest)| {
                !label.is_empty() && rest.eq_ignore_ascii_case(parent)
            }),
            None => name.eq_ignore_ascii_case(sni),
        })
    }
}

/// Picks the certificate for a handshake: the first whose DNS names match the SNI name, else
/// the first one. Each certificate is a [`Watched`] pair, so rotation (names included) applies
/// to the next handshake.
#[derive(Debug)]
pub struct CertResolver {
    certs: Vec<Arc<Watched<ServingCert>>>,
}

impl CertResolver {
    /// Loads `(cert, key)` pairs, re-reading each every `every` when its files change.
    pub fn from_files(
        pairs: &[(PathBuf, PathBuf)],
        every: Option<Duration>,
    ) -> Result<Self, TlsError> {
        let certs = pairs
            .iter()
            .map(|(cert, key)| {
                let (c, k) = (cert.clone(), key.clone());
                Watched::load(
                    "certificate",
                    vec![cert.clone(), key.clone()],
                    every,
                    move || load_certified_key(&c, &k).map(ServingCert::new),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        CertResolver::new(certs)
    }

    /// In-memory certificates (tests, benches), the first being the default.
    pub fn fixed(keys: Vec<CertifiedKey>) -> Result<Self, TlsError> {
        CertResolver::new(
            keys.into_iter()
                .map(|k| Watched::fixed("certificate", ServingCert::new(k)))
                .collect(),
        )
    }

    fn new(certs: Vec<Arc<Watched<ServingCert>>>) -> Result<Self, TlsError> {
        if certs.is_empty() {
            return Err(TlsError::setting(
                "cert",
                "a TLS listener needs at least one certificate",
            ));
        }
        Ok(CertResolver { certs })
    }

    /// The certificate a client asking for `sni` gets.
    pub fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(sni) = sni {
            for cert in &self.certs {
                let cert = cert.get();
                if cert.serves(sni) {
                    return Some(cert.key.clone());
                }
            }
        }
        self.certs.first().map(|c| c.get().key.clone())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// A server config from parts: TLS 1.2 and 1.3 (1.3 alone when `alpn` is [`ALPN_H3`], as QUIC
/// requires), `alpn` in preference order, and mTLS when `client_auth` is given.
pub fn build_server_config(
    certs: CertResolver,
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let versions = if alpn == ALPN_H3 {
        VERSIONS_13
    } else {
        VERSIONS
    };
    let builder =
        ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions)?;
    let builder = match client_auth {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(certs));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A listener's config from its settings: every certificate loaded (the error names the file or
/// the setting), watched every `reload_interval` (`0s`: not watched), with SPIFFE mTLS when
/// `client_ca` is set.
pub fn listener_config(
    s: &ServerTlsSettings,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut pairs = Vec::with_capacity(1 + s.certificates.len());
    match (&s.cert, &s.key) {
        (Some(c), Some(k)) => pairs.push((c.clone(), k.clone())),
        (None, None) => {}
        (Some(_), None) => return Err(TlsError::setting("key", "`cert` needs its `key`")),
        (None, Some(_)) => return Err(TlsError::setting("cert", "`key` needs its `cert`")),
    }
    pairs.extend(
        s.certificates
            .iter()
            .map(|p| (p.cert.clone(), p.key.clone())),
    );
    if pairs.is_empty() {
        return Err(TlsError::setting(
            "cert",
            "a TLS listener needs `cert` and `key`, or `certificates`",
        ));
    }
    let every = Some(s.reload_interval.get()).filter(|d| !d.is_zero());
    let certs = CertResolver::from_files(&pairs, every)?;
    let client_auth: Option<Arc<dyn ClientCertVerifier>> = match &s.client_ca {
        Some(ca) => {
            let td = s.trust_domain.as_deref().unwrap_or(DEFAULT_TRUST_DOMAIN);
            let policy = Policy::new(td, s.allow.as_deref())?;
            Some(Arc::new(SpiffeClientVerifier::from_file(
                ca, policy, every,
            )?))
        }
        None if s.allow.is_some() => {
            return Err(TlsError::setting(
                "allow",
                "`allow` needs `client_ca` (mTLS)",
            ));
        }
        None if s.trust_domain.is_some() => {
            return Err(TlsError::setting(
                "trust_domain",
                "`trust_domain` needs `client_ca` (mTLS)",
            ));
        }
        None => None,
    };
    build_server_config(certs, client_auth, alpn)
}

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Accepts TLS on `tcp` within `timeout`. A refusal is logged once, with a stable `reason`
/// field (see [`Reason`]) and the peer's SPIFFE ID when known, and gives `None`. Plaintext
/// (first byte not a TLS handshake record) is answered with a small HTTP 400.
pub async fn accept(
    config: Arc<ServerConfig>,
    tcp: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<TlsStream<TcpStream>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
        Err(_) => {
            refused(Reason::HandshakeTimeout, peer, None, None);
            return None;
        }
        Ok(Err(e)) => {
            refused(Reason::of_io(&e), peer, None, Some(&e));
            return None;
        }
        Ok(Ok(0)) => {
            refused(Reason::ConnectionClosed, peer, None, None);
            return None;
        }
        Ok(Ok(_)) if first[0] != TLS_HANDSHAKE_RECORD => {
            refused(Reason::NotTls, peer, None, None);
            answer_plaintext(tcp).await;
            return None;
        }
        Ok(Ok(_)) => {}
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            let peer_id = Reason::peer_id_of(&e);
            refused(Reason::of_io(&e), peer, peer_id.as_deref(), Some(&e));
            None
        }
        Err(_) => {
            refused(Reason::HandshakeTimeout, peer, None, None);
            None
        }
    }
}

fn refused(
    reason: Reason,
    peer: SocketAddr,
    peer_id: Option<&str>,
    error: Option<&dyn std::fmt::Display>,
) {
    let error = error.map(|e| e.to_string());
    let (peer_id, error) = (peer_id.unwrap_or("-"), error.as_deref().unwrap_or("-"));
    match reason {
        // Port probes and health checks that connect and leave: not worth an info line.
        Reason::ConnectionClosed => tracing::debug!(
            reason = reason.as_str(), client.addr = %peer, peer_id, error, "TLS handshake not completed"
        ),
        _ => tracing::info!(
            reason = reason.as_str(), client.addr = %peer, peer_id, error, "TLS handshake refused"
        ),
    }
}

/// Tells a plaintext HTTP client to use TLS, then closes.
async fn answer_plaintext(mut tcp: TcpStream) {
    const BODY: &str = "This port expects TLS: use https://\n";
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let exchange = async {
        // Read what the client sent first: closing with unread data would reset the connection
        // and could discard our answer.
        let mut buf = [0u8; 4096];
        let _ = tcp.read(&mut buf).await;
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await?;
        while tcp.read(&mut buf).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), exchange).await;
}

#[cfg(test)]
mod tests;
