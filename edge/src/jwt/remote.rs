//! Keys from a JWKS URL: fetched before the edge is ready, refreshed in the background
//! (`Cache-Control: max-age` or the configured interval), refetched at most once per
//! `min_refetch_interval` when a token names an unknown `kid`; the last good set is kept
//! while the IdP is down or answers garbage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::keys::{JwksError, KeySet};

/// Largest JWK Set accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// One fetch, connect to last byte.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// First retry delay after a failed fetch; doubles up to the refresh interval.
const RETRY_MIN: Duration = Duration::from_millis(500);

/// Why a fetch failed; the last good keys stay in use.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("JWKS request failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("JWKS body could not be read")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("JWKS fetch timed out")]
    Timeout,
    #[error("JWKS endpoint answered {0}")]
    Status(StatusCode),
    #[error("JWKS document refused")]
    Parse(#[source] JwksError),
    #[error("JWKS document has no usable key")]
    Empty,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The keys behind one JWKS URL.
pub struct RemoteKeys {
    url: Uri,
    refresh: Duration,
    min_refetch: Duration,
    keys: ArcSwapOption<KeySet>,
    /// Last unknown-`kid` refetch; the lock also coalesces concurrent refetches.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    fetches: AtomicU64,
    client: HttpClient,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("url", &self.url)
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}

fn client() -> HttpClient {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| {
        b.with_root_certificates(roots.clone())
            .with_no_client_auth()
    })
    .unwrap_or_else(|_| {
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth()
    });
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// `max-age` of a `Cache-Control` header.
fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let cc = headers.get(header::CACHE_CONTROL)?.to_str().ok()?;
    cc.split(',').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        k.eq_ignore_ascii_case("max-age")
            .then(|| v.trim().parse().ok().map(Duration::from_secs))?
    })
}

impl RemoteKeys {
    pub fn new(url: Uri, refresh: Duration, min_refetch: Duration) -> Arc<Self> {
        Arc::new(RemoteKeys {
            url,
            refresh,
            min_refetch,
            keys: ArcSwapOption::empty(),
            last_refetch: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
            client: client(),
        })
    }

    /// The current keys (`None` before the first successful fetch).
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    pub fn is_loaded(&self) -> bool {
        self.keys.load().is_some()
    }

    /// Fetch attempts so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Fetches once; on success swaps the keys in and returns the server's `max-age`.
    pub async fn fetch(&self) -> Result<Option<Duration>, FetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let req = Request::get(self.url.clone())
            .header(header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|_| FetchError::Empty)?;
        let work = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(FetchError::Request)?;
            if !res.status().is_success() {
                return Err(FetchError::Status(res.status()));
            }
            let age = max_age(res.headers());
            let body = Limited::new(res.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(FetchError::Body)?
                .to_bytes();
            Ok((age, body))
        };
        let (age, body) = tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .map_err(|_| FetchError::Timeout)??;
        let (set, _skipped) = KeySet::parse(&body).map_err(FetchError::Parse)?;
        if set.is_empty() {
            return Err(FetchError::Empty);
        }
        self.keys.store(Some(Arc::new(set)));
        Ok(age)
    }

    /// Refetches because a token named an unknown `kid`, unless one was made less than
    /// `min_refetch_interval` ago. Returns whether fresh keys were fetched.
    pub async fn refetch_for_unknown_kid(&self) -> bool {
        let mut last = self.last_refetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return false;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!(url = %self.url, error = %gatehouse_common::error::chain(&err), "JWKS refetch failed");
                false
            }
        }
    }

    /// Keeps the keys fresh until the last strong reference is dropped (a reload that no
    /// longer names this URL).
    pub fn spawn_refresher(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut retry = RETRY_MIN;
            loop {
                let Some(this) = weak.upgrade() else { break };
                let next = match this.fetch().await {
                    Ok(age) => {
                        retry = RETRY_MIN;
                        age.map_or(this.refresh, |a| a.min(this.refresh))
                            .max(Duration::from_secs(1))
                    }
                    Err(err) => {
                        tracing::warn!(url = %this.url, error = %gatehouse_common::error::chain(&err),
                            "JWKS fetch failed; keeping the last good keys");
                        let r = retry;
                        retry = (retry * 2).min(this.refresh.max(RETRY_MIN));
                        r
                    }
                };
                drop(this);
                tokio::time::sleep(next).await;
            }
        });
    }
}
