//! The per-request context: what every phase of the pipeline knows about one request.
//!
//! Created once when the request arrives; the access log and metrics are written from it when
//! the response body ends (or is dropped), so each request yields exactly one log line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method};

use crate::error::ErrorSource;
use crate::trace_context::TraceContext;

/// State shared by the phases handling one request.
#[derive(Debug)]
pub struct RequestCtx {
    /// `x-request-id`: the client's when valid, otherwise generated here; echoed on the response.
    pub request_id: HeaderValue,
    /// W3C trace context; `trace_valid` says whether the caller sent a valid `traceparent`.
    pub trace: TraceContext,
    pub trace_valid: bool,
    /// When the request head was received; the duration in the access log counts from here.
    pub start: Instant,
    /// Downstream peer address (the TCP or QUIC peer, not `X-Forwarded-For`).
    pub client_addr: SocketAddr,
    /// Name of the listener that accepted the connection.
    pub listener: Arc<str>,
    /// A gRPC request (`content-type: application/grpc…`): refusals are answered with
    /// `grpc-status` instead of problem+json.
    pub grpc: bool,
    /// Whether the downstream connection used TLS (sets `X-Forwarded-Proto`).
    pub tls: bool,
    /// The peer's SPIFFE ID when the connection was mTLS.
    pub peer_identity: Option<Arc<str>>,
    pub method: Method,
    /// Path as received (for logs); the query is not logged, it may carry secrets.
    pub path: String,
    pub authority: Option<String>,
    pub version: http::Version,
    /// Name of the matched route (`None` until routing; a metric label, so bounded).
    pub route: Option<Arc<str>>,
    /// The matched route's request series (see [`crate::metrics::RouteStats`]).
    pub route_stats: Option<Arc<crate::metrics::RouteStats>>,
    /// Upstream service and the endpoint chosen for the last attempt.
    pub service: Option<Arc<str>>,
    pub upstream: Option<SocketAddr>,
    /// Set when Gatehouse answered with an error: which side failed.
    pub failed: Option<ErrorSource>,
    /// State a binary's own phases share between request and response (see
    /// [`crate::filter::Filter`]).
    pub extensions: http::Extensions,
}
