//! The pooled upstream HTTP client: HTTP/1.1, h2c (prior knowledge) or TLS with ALPN.
//!
//! One client per service, built with the plan; connections are reused across requests and
//! across reloads that leave the service unchanged.

use std::time::Duration;

use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::ProxyBody;
use crate::settings::UpstreamProtocol;

/// Result of one upstream exchange.
pub type ClientResult = Result<http::Response<Incoming>, hyper_util::client::legacy::Error>;

/// How long an idle pooled connection is kept. Shorter than the usual server keep-alive
/// (60s in Gatehouse, nginx and Envoy) so we close first and never reuse a half-closed one.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

pub mod unix;

/// How connections are made.
#[derive(Clone)]
enum Transport {
    /// TCP, with TLS when the URI says `https`.
    Tcp(Client<HttpsConnector<HttpConnector>, ProxyBody>),
    /// One Unix domain socket, whatever the URI's authority.
    Unix(Client<unix::UnixConnector, ProxyBody>),
}

/// A pooled client for one service.
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Transport,
    scheme: http::uri::Scheme,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("scheme", &self.scheme)
            .finish()
    }
}

impl UpstreamClient {
    /// Builds the client. `tls` is used with [`UpstreamProtocol::Https`]; ALPN is set here.
    pub fn new(
        protocol: UpstreamProtocol,
        tls: Option<rustls::ClientConfig>,
        connect_timeout: Duration,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let tls = tls.unwrap_or_else(|| {
            rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.with_root_certificates(rustls::RootCertStore {
                        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                    })
                    .with_no_client_auth()
                })
                .unwrap_or_else(|_| {
                    // Unreachable with the ring provider, which supports the default versions.
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                })
        });
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let scheme = match protocol {
            UpstreamProtocol::Https => http::uri::Scheme::HTTPS,
            _ => http::uri::Scheme::HTTP,
        };
        UpstreamClient {
            inner: Transport::Tcp(builder(protocol).build(connector)),
            scheme,
        }
    }

    /// A client that reaches its service over the Unix socket `path` (HTTP/1.1 or h2c).
    pub fn unix(protocol: UpstreamProtocol, path: &std::path::Path) -> Self {
        UpstreamClient {
            inner: Transport::Unix(builder(protocol).build(unix::UnixConnector::new(path))),
            scheme: http::uri::Scheme::HTTP,
        }
    }

    /// `http` or `https`: the scheme the request URI must carry.
    pub fn scheme(&self) -> &http::uri::Scheme {
        &self.scheme
    }

    /// Sends a request whose URI is already absolute (scheme and endpoint authority).
    pub async fn send(&self, req: http::Request<ProxyBody>) -> ClientResult {
        match &self.inner {
            Transport::Tcp(c) => c.request(req).await,
            Transport::Unix(c) => c.request(req).await,
        }
    }
}

/// The client settings shared by every transport.
fn builder(protocol: UpstreamProtocol) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .http2_adaptive_window(true)
        // As on our listeners (server/h1.rs): a response passed back through tiers grows too.
        .http1_max_headers(crate::server::MAX_HEADER_FIELDS);
    if protocol == UpstreamProtocol::H2c {
        builder.http2_only(true);
    }
    builder
}
