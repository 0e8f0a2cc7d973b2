//! Helpers for the TLS tests: log capture (a minimal `tracing` subscriber, per test thread), a
//! temporary directory, and TLS/HTTP clients that report failures instead of panicking.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_certs::test_util::{TestCert, TestPki};
use gatehouse_common::body::{ProxyBody, empty};
use gatehouse_common::tls::client::IdentityResolver;
use gatehouse_common::tls::verify::SpiffeServerVerifier;
use gatehouse_common::tls::{SpiffeId, provider};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One captured event: its fields (`message` and `target` included) as strings.
pub type Fields = HashMap<String, String>;

/// INFO-and-above events of the current thread (run tests on a current-thread runtime so the
/// proxy's tasks log on it too).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<Fields>>>);

impl Logs {
    /// Captures this thread's events until the guard is dropped.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let guard = tracing::subscriber::set_default(Capture {
            logs: logs.clone(),
            next_span: AtomicU64::new(1),
        });
        (logs, guard)
    }

    pub fn clear(&self) {
        self.0.lock().expect("logs").clear();
    }

    /// Events with a `reason` field (handshake refusals).
    pub fn refusals(&self) -> Vec<Fields> {
        let logs = self.0.lock().expect("logs");
        logs.iter()
            .filter(|e| e.contains_key("reason"))
            .cloned()
            .collect()
    }

    /// Waits (up to 5s) for an event `matches` accepts and returns it.
    pub async fn wait_for(&self, what: &str, matches: impl Fn(&Fields) -> bool) -> Fields {
        for _ in 0..500 {
            if let Some(e) = self.0.lock().expect("logs").iter().find(|e| matches(e)) {
                return e.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "no log event for {what}; saw {:#?}",
            self.0.lock().expect("logs")
        );
    }
}

struct Capture {
    logs: Logs,
    next_span: AtomicU64,
}

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::INFO
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        fields.insert("target".into(), event.metadata().target().to_owned());
        self.logs.0.lock().expect("logs").push(fields);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("gatehouse-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` atomically (write beside, then rename), as certificate managers do.
    pub fn replace(&self, path: &Path, contents: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, contents).expect("write temp file");
        std::fs::rename(&tmp, path).expect("rename into place");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The PKI's CA as a root store.
pub fn roots(pki: &TestPki) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der()).expect("CA as trust anchor");
    roots
}

pub fn certified(cert: &TestCert) -> CertifiedKey {
    CertifiedKey::from_der(cert.cert_der_chain(), cert.key_der(), &provider()).expect("test key")
}

/// A mesh client (in memory): requires `expected` from the server, presents `identity`.
pub fn mesh_client(
    pki: &TestPki,
    expected: &str,
    identity: Option<&TestCert>,
    version: &'static SupportedProtocolVersion,
) -> ClientConfig {
    let expected = SpiffeId::parse(expected).expect("expected ID");
    let verifier = Arc::new(SpiffeServerVerifier::new(roots(pki), expected));
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[version])
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match identity {
        Some(cert) => {
            builder.with_client_cert_resolver(Arc::new(IdentityResolver::fixed(certified(cert))))
        }
        None => builder.with_no_client_auth(),
    }
}

/// A plain web-PKI-style client trusting `pki` (host name checked).
pub fn web_client(pki: &TestPki) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots(pki))
        .with_no_client_auth()
}

/// An open HTTP/1.1 connection over TLS.
pub struct Conn {
    pub sender: SendRequest<ProxyBody>,
    /// The certificates the server presented, leaf first.
    pub server_certs: Vec<CertificateDer<'static>>,
}

impl Conn {
    /// GET `path`: the status, or the error as text.
    pub async fn get(&mut self, path: &str) -> Result<http::StatusCode, String> {
        let req = http::Request::get(path)
            .header("host", "localhost")
            .body(empty())
            .map_err(|e| e.to_string())?;
        let res = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = res.status();
        http_body_util::BodyExt::collect(res.into_body())
            .await
            .map_err(|e| e.to_string())?;
        Ok(status)
    }
}

/// TLS handshake to `addr` as `name`, then an HTTP/1.1 connection: the error as an I/O error
/// when the handshake fails.
pub async fn open(
    addr: SocketAddr,
    config: ClientConfig,
    name: &str,
) -> Result<Conn, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).map_err(std::io::Error::other)?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let server_certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Conn {
        sender,
        server_certs,
    })
}

/// One GET over mTLS to a gateway whose SPIFFE ID is `expected`, as `identity`, with `headers`:
/// status, response headers and body.
#[allow(dead_code)] // not every test file that includes this module calls it
pub async fn get_as(
    addr: SocketAddr,
    pki: &TestPki,
    expected: &str,
    identity: &TestCert,
    path: &str,
    headers: &[(&str, &str)],
) -> (http::StatusCode, http::HeaderMap, bytes::Bytes) {
    let mut conn = open(
        addr,
        mesh_client(pki, expected, Some(identity), &rustls::version::TLS13),
        "localhost",
    )
    .await
    .expect("mTLS connection");
    let mut req = http::Request::get(path).header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = conn
        .sender
        .send_request(req.body(empty()).expect("request"))
        .await
        .expect("response");
    let (parts, body) = res.into_parts();
    let body = http_body_util::BodyExt::collect(body)
        .await
        .expect("body")
        .to_bytes();
    (parts.status, parts.headers, body)
}

/// Handshake and one GET: the status, or what failed.
pub async fn get_once(
    addr: SocketAddr,
    config: ClientConfig,
    path: &str,
) -> Result<http::StatusCode, String> {
    let mut conn = open(addr, config, "localhost")
        .await
        .map_err(|e| e.to_string())?;
    conn.get(path).await
}
