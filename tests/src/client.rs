//! HTTP clients for tests: hyper's pooled client over HTTP/1.1 or HTTP/2 prior knowledge.

use bytes::Bytes;
use gatehouse_common::body::ProxyBody;
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A test client bound to one protocol.
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, ProxyBody>,
    pub h2: bool,
}

impl Client {
    /// HTTP/1.1.
    pub fn http1() -> Self {
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build_http(),
            h2: false,
        }
    }

    /// HTTP/2 with prior knowledge (h2c).
    pub fn h2c() -> Self {
        Client {
            inner: HyperClient::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
            h2: true,
        }
    }

    /// Sends a request and returns the streaming response.
    pub async fn send(&self, req: Request<ProxyBody>) -> Response<Incoming> {
        self.inner.request(req).await.expect("request failed")
    }

    /// Sends a request, returning the client error instead of panicking.
    pub async fn try_send(
        &self,
        req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.inner.request(req).await
    }

    /// GET `url` and collect the whole answer.
    pub async fn get(&self, url: &str) -> (http::StatusCode, HeaderMap, Bytes) {
        let req = Request::get(url)
            .body(gatehouse_common::body::empty())
            .expect("request");
        collect(self.send(req).await).await
    }
}

/// Collects a response: status, headers, body.
pub async fn collect(res: Response<Incoming>) -> (http::StatusCode, HeaderMap, Bytes) {
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    (parts.status, parts.headers, body)
}

/// Writes `request` as is on a new TCP connection to `addr` and returns what the first read
/// brings back (a response head fits in it): for requests no well-behaved client would send.
pub async fn raw_first_read(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("an answer within 5s")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
