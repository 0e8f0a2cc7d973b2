//! Fake backends: real HTTP servers on 127.0.0.1:0 that record what they saw.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gatehouse_common::body::{ProxyBody, full};
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a backend saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: http::Method,
    /// Path and query as received.
    pub uri: String,
    pub version: http::Version,
    pub headers: HeaderMap,
    /// Body length (the body itself is not kept: tests stream large bodies).
    pub body_len: u64,
    /// First 64 KiB of the body.
    pub body_head: Bytes,
    pub trailers: Option<HeaderMap>,
}

type Handler =
    Arc<dyn Fn(Seen) -> Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send>> + Send + Sync>;

/// Which protocols a backend accepts.
#[derive(Debug, Clone, Copy)]
enum Proto {
    Auto,
    Http1,
    H2c,
}

/// Builder for a fake backend.
pub struct Backend {
    proto: Proto,
    routes: Vec<(String, Handler)>,
}

impl Backend {
    /// A backend speaking HTTP/1.1 and h2c (detected per connection).
    pub fn new() -> Self {
        Backend {
            proto: Proto::Auto,
            routes: Vec::new(),
        }
    }

    /// HTTP/1.1 only.
    pub fn http1() -> Self {
        Backend {
            proto: Proto::Http1,
            ..Self::new()
        }
    }

    /// HTTP/2 prior knowledge only.
    pub fn h2c() -> Self {
        Backend {
            proto: Proto::H2c,
            ..Self::new()
        }
    }

    /// Answers requests whose path starts with `prefix` with a fixed 200 text body.
    pub fn route(self, prefix: &str, body: &'static str) -> Self {
        self.handle(prefix, move |_| async move { Response::new(full(body)) })
    }

    /// Answers requests whose path starts with `prefix` with `f(seen)` (first match wins).
    pub fn handle<F, Fut>(mut self, prefix: &str, f: F) -> Self
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.routes.push((
            prefix.to_owned(),
            Arc::new(move |seen| {
                let f = f.clone();
                Box::pin(async move { f(seen).await })
            }),
        ));
        self
    }

    /// Binds 127.0.0.1:0 and serves until the handle is dropped.
    pub async fn run(self) -> BackendHandle {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        self.serve(listener, addr)
    }

    /// Serves on a given address (to bring a backend back on the same port).
    pub async fn run_on(self, addr: SocketAddr) -> BackendHandle {
        let listener = TcpListener::bind(addr).await.expect("bind backend");
        self.serve(listener, addr)
    }

    fn serve(self, listener: TcpListener, addr: SocketAddr) -> BackendHandle {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let stop_conns = stop.clone();
        let routes = Arc::new(self.routes);
        let proto = self.proto;
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    _ = stop_conns.cancelled() => break,
                    r = listener.accept() => match r { Ok(a) => a, Err(_) => continue },
                };
                let routes = routes.clone();
                let log = log.clone();
                let stop = stop_conns.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let routes = routes.clone();
                        let log = log.clone();
                        async move {
                            let seen = record(req).await;
                            if let Ok(mut l) = log.lock() {
                                l.push(seen.clone());
                            }
                            let path = seen.uri.split('?').next().unwrap_or("").to_owned();
                            let handler = routes.iter().find(|(p, _)| path.starts_with(p.as_str()));
                            let res = match handler {
                                Some((_, h)) => h(seen).await,
                                None => {
                                    let mut r = Response::new(full("backend: no such path"));
                                    *r.status_mut() = http::StatusCode::NOT_FOUND;
                                    r
                                }
                            };
                            Ok::<_, Infallible>(res)
                        }
                    });
                    let io = TokioIo::new(tcp);
                    let mut b = auto::Builder::new(TokioExecutor::new());
                    b = match proto {
                        Proto::Auto => b,
                        Proto::Http1 => b.http1_only(),
                        Proto::H2c => b.http2_only(),
                    };
                    // Killing the backend drops its connections too, as a crashed process would.
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = b.serve_connection(io, svc) => {}
                    }
                });
            }
        });
        BackendHandle {
            addr,
            seen,
            stop: stop.drop_guard(),
        }
    }
}

impl Default for Backend {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads the whole request, keeping its length, head and trailers.
async fn record(req: Request<Incoming>) -> Seen {
    let (parts, mut body) = req.into_parts();
    let mut len = 0u64;
    let mut head = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        match frame.into_data() {
            Ok(data) => {
                len += data.len() as u64;
                if head.len() < 64 * 1024 {
                    let take = (64 * 1024 - head.len()).min(data.len());
                    head.extend_from_slice(&data[..take]);
                }
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
            }
        }
    }
    Seen {
        method: parts.method,
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        version: parts.version,
        headers: parts.headers,
        body_len: len,
        body_head: Bytes::from(head),
        trailers,
    }
}

/// A running backend; stops (listener and every connection) when dropped or killed.
pub struct BackendHandle {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: tokio_util::sync::DropGuard,
}

impl BackendHandle {
    /// Stops the listener and closes every open connection at once.
    pub fn kill(self) {
        drop(self.stop);
    }

    /// Requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The last request seen.
    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the backend saw no request")
    }

    /// Number of requests seen.
    pub fn count(&self) -> usize {
        self.seen.lock().map(|l| l.len()).unwrap_or(0)
    }
}

/// Headers as a simple map (lower-case name → values), for readable assertions.
pub fn header_map(h: &HeaderMap) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in h {
        m.entry(k.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    m
}
