//! Test helpers: start a service, send HTTP requests (HTTP/1.1 or HTTP/2), set chaos, and a
//! fake sidecar that routes by `Host` like the real one.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gatehouse_certs::{JwtAlg, JwtKeys};
use gatehouse_topology::{RunningService, ServeOptions, ServiceName, serve};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;

pub const ANY: &str = "127.0.0.1:0";

fn any() -> SocketAddr {
    ANY.parse().expect("loopback address")
}

/// Starts `name` on ports picked by the system.
pub async fn start(name: ServiceName) -> RunningService {
    start_with(name, ServeOptions::default()).await
}

/// Starts `name` with `opts` on ports picked by the system.
pub async fn start_with(name: ServiceName, opts: ServeOptions) -> RunningService {
    serve(name, any(), any(), opts)
        .await
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
}

/// A fresh ES256 signing key written as PEM in a temporary directory (kept alive by the caller).
pub fn jwt_key() -> (tempfile::TempDir, PathBuf, JwtKeys) {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = JwtKeys::generate(JwtAlg::Es256).expect("key");
    let path = dir.path().join("jwt-signing-key.pem");
    std::fs::write(&path, keys.private_key_pem()).expect("write key");
    (dir, path, keys)
}

/// An answer, body decoded as JSON when it is JSON (`Value::Null` otherwise).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

fn client(http2: bool) -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build(HttpConnector::new())
}

/// Sends `req` (URI path only; `addr` is the server) over HTTP/1.1.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Answer {
    send_with(addr, req, false).await
}

/// Sends `req` over HTTP/1.1 or, with `http2`, over cleartext HTTP/2 (prior knowledge).
pub async fn send_with(addr: SocketAddr, mut req: Request<Full<Bytes>>, http2: bool) -> Answer {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    *req.uri_mut() = format!("http://{addr}{path}").parse().expect("uri");
    let resp = client(http2).request(req).await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        json,
    }
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    send(
        addr,
        request(Method::GET, path)
            .body(Full::default())
            .expect("request"),
    )
    .await
}

/// A request builder for `path`.
pub fn request(method: Method, path: &str) -> http::request::Builder {
    Request::builder().method(method).uri(path)
}

/// `POST /_chaos` with `body` on the admin listener.
pub async fn chaos(admin: SocketAddr, body: &str) -> Answer {
    let req = request(Method::POST, "/_chaos")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    send(admin, req).await
}

/// A stand-in for a sidecar's outbound listener: plain HTTP in, routed by `Host` to a local
/// service; an unknown `Host` gets the gateways' `no-route` 404. Records the hosts it saw.
pub struct FakeSidecar {
    pub addr: SocketAddr,
    pub hosts: Arc<Mutex<Vec<String>>>,
}

impl FakeSidecar {
    pub async fn start(routes: HashMap<&'static str, SocketAddr>) -> FakeSidecar {
        let listener = TcpListener::bind(ANY).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(routes);
        let seen = hosts.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (routes, seen) = (routes.clone(), seen.clone());
                let svc = service_fn(move |req| route(req, routes.clone(), seen.clone()));
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        FakeSidecar { addr, hosts }
    }

    pub fn hosts(&self) -> Vec<String> {
        self.hosts.lock().expect("lock").clone()
    }
}

async fn route(
    req: Request<Incoming>,
    routes: Arc<HashMap<&'static str, SocketAddr>>,
    seen: Arc<Mutex<Vec<String>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    seen.lock().expect("lock").push(host.clone());
    let Some(&target) = routes.get(host.as_str()) else {
        let body =
            r#"{"type":"urn:gatehouse:problem:no-route","title":"No route matches","status":404}"#;
        let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return Ok(resp);
    };
    let path = req.uri().path().to_owned();
    let forwarded = request(req.method().clone(), &path)
        .body(Full::default())
        .expect("request");
    let answer = send(target, forwarded).await;
    let mut resp = Response::new(Full::new(answer.body));
    *resp.status_mut() = answer.status;
    *resp.headers_mut() = answer.headers;
    Ok(resp)
}
