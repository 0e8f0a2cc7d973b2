//! What the end-to-end tests share: the topology's binaries and configs, a private port base,
//! HTTPS clients trusting the dev CA, and a token from the demo idp.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

pub type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_gatehouse-topology"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

pub fn config_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
}

/// A port base private to this process within the 11,000 ports from `block_start` (one block per
/// test that runs a topology: e2e_topology 20000, e2e_events 9000). Blocks must stay below the
/// ephemeral range (Linux: from 32768), where the ports other tests bind to port 0 and outgoing
/// connections come from would make the topology's fixed ports collide at random.
pub fn port_base(block_start: u16) -> u16 {
    block_start + (std::process::id() % 100) as u16 * 110
}

pub fn tls_config(ca: &Path) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca.pem") {
        roots.add(cert.expect("ca cert")).expect("add root");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

pub fn client(ca: &Path, h2: bool) -> Https {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(ca))
        .https_only();
    if h2 {
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(builder.enable_http2().build())
    } else {
        Client::builder(TokioExecutor::new()).build(builder.enable_http1().build())
    }
}

pub async fn send(c: &Https, req: Request<Full<Bytes>>) -> (StatusCode, http::Version, Bytes) {
    let res = c.request(req).await.expect("request");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.version, body)
}

pub fn get(url: &str, token: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::get(url);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Full::default()).expect("request")
}

pub async fn token(c: &Https, base: &str, id: &str, secret: &str) -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let req = Request::post(format!("{base}/oauth/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"grant_type=client_credentials",
        )))
        .expect("request");
    let (status, _, body) = send(c, req).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let v: Value = serde_json::from_slice(&body).expect("json");
    v["access_token"].as_str().expect("access_token").to_owned()
}
