//! East-west calls of `orders` through its sidecar: plain HTTP to the sidecar's outbound
//! listener, with `Host` naming the service (`inventory`, `pricing`): the sidecar routes by it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// How long one east-west call may take: 5 seconds.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Request metadata passed on to the callee so traces and request ids join up.
const PROPAGATED: [&str; 3] = ["traceparent", "tracestate", "x-request-id"];

/// The client for the sidecar's outbound listener, if `--upstream-proxy` was given.
pub(crate) struct Sidecar {
    addr: Option<SocketAddr>,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Sidecar {
    pub(crate) fn new(addr: Option<SocketAddr>) -> Self {
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        Sidecar { addr, client }
    }

    /// `GET path` on `service` through the sidecar, decoded as JSON. A 404 becomes `NOT_FOUND`;
    /// no sidecar, a failed call or another status becomes `UNAVAILABLE`.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        service: &'static str,
        path: &str,
        meta: &MetadataMap,
    ) -> Result<T, Status> {
        let addr = self.addr.ok_or_else(|| {
            Status::unavailable(format!(
                "orders runs without --upstream-proxy, so it cannot reach {service}"
            ))
        })?;
        let mut req = Request::get(format!("http://{addr}{path}"))
            .header(header::HOST, service)
            .header(header::ACCEPT, "application/json");
        for name in PROPAGATED {
            if let Some(value) = meta.get(name).and_then(|v| v.to_str().ok()) {
                req = req.header(name, value);
            }
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| Status::internal(format!("cannot build the {service} request: {e}")))?;
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| {
                Status::unavailable(format!(
                    "cannot reach {service} through the sidecar at {addr}: {e}"
                ))
            })?;
            let status = resp.status();
            let body =
                resp.into_body().collect().await.map_err(|e| {
                    Status::unavailable(format!("{service} failed mid-answer: {e}"))
                })?;
            Ok::<_, Status>((status, body.to_bytes()))
        };
        let (status, body) = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!("{service} did not answer in {CALL_TIMEOUT:?}"))
            })??;
        match status {
            s if s.is_success() => serde_json::from_slice(&body)
                .map_err(|e| Status::internal(format!("{service} answered unexpected JSON: {e}"))),
            // The sidecar's own 404 (no route for this Host) is a wiring problem, not a missing product.
            StatusCode::NOT_FOUND if is_no_route(&body) => Err(Status::unavailable(format!(
                "the sidecar has no route to {service}"
            ))),
            StatusCode::NOT_FOUND => Err(Status::not_found(format!("{service}: {path} not found"))),
            s => Err(Status::unavailable(format!("{service} answered {s}"))),
        }
    }
}

/// Whether a 404 body is the gateways' `no-route` problem rather than the service's own 404.
fn is_no_route(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("type")?.as_str().map(|t| t.ends_with(":no-route")))
        .unwrap_or(false)
}
