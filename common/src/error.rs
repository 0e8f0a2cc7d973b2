//! Typed errors of the request path, and which side of the proxy caused them.
//!
//! They are mapped to HTTP (or gRPC) answers in one place, [`crate::respond`].

use std::net::SocketAddr;
use std::time::Duration;

use crate::BoxError;

/// Which side of the proxy a failure belongs to; it drives the status code, the metric label and
/// the access log's `failed` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The downstream client sent something we refuse (too large, malformed, unknown route).
    Client,
    /// The upstream could not be reached or misbehaved.
    Upstream,
    /// Gatehouse itself failed (a bug or a resource limit).
    Internal,
}

impl ErrorSource {
    /// Label used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorSource::Client => "client",
            ErrorSource::Upstream => "upstream",
            ErrorSource::Internal => "internal",
        }
    }
}

/// Everything that can end a proxied request with an answer from Gatehouse instead of the upstream.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no route matches {method} {path}")]
    NoRoute { method: http::Method, path: String },

    #[error("could not connect to service `{service}` at {addr}")]
    UpstreamConnect {
        service: String,
        addr: SocketAddr,
        #[source]
        source: BoxError,
    },

    #[error("service `{service}` did not answer within {after:?}")]
    UpstreamTimeout { service: String, after: Duration },

    #[error("service `{service}` at {addr} failed mid-request")]
    UpstreamProtocol {
        service: String,
        addr: SocketAddr,
        #[source]
        source: BoxError,
    },

    #[error("service `{service}` has no endpoints available")]
    NoEndpoints { service: String },

    #[error("service `{service}` is overloaded ({reason}); retry after {retry_after:?}")]
    Overloaded {
        service: String,
        reason: &'static str,
        retry_after: Duration,
    },

    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },

    #[error("request headers exceed the limit of {limit} bytes")]
    HeadersTooLarge { limit: usize },

    #[error("the client stopped sending the request body")]
    ClientBody {
        #[source]
        source: BoxError,
    },

    #[error("bad request: {reason}")]
    BadRequest { reason: String },

    /// The client's `Accept` allows none of the media types the route can answer with.
    #[error("none of the media types this route answers with is acceptable ({offered})")]
    NotAcceptable { offered: &'static str },

    /// The service answered, but not with what the route's handler needs (not JSON, too
    /// large): the handler cannot build its answer from it.
    #[error("service `{service}` answered unusably: {reason}")]
    BadUpstreamResponse { service: String, reason: String },

    /// A part a handler's composite answer cannot do without (a required aggregation part)
    /// failed. `status` is what the client gets: the part's own 4xx, 504 when it ran out of
    /// time, else 502. `public` says what happened without internal names or addresses
    /// ("answered 503", "timed out"); `reason` is the full story, for the log.
    #[error("part `{part}` failed: {reason}")]
    PartFailed {
        part: String,
        status: http::StatusCode,
        public: String,
        reason: String,
    },

    /// A gRPC status refused to an HTTP client by the gateway itself on a transcoded route
    /// (malformed JSON, no binding for the path): `http` from the gRPC ↔ HTTP table; the body
    /// carries the `google.rpc.Status` members too, so a client of the API reads one error shape
    /// whether the gateway or the service refused (see [`crate::respond::grpc_status_problem`]).
    #[error("{message}")]
    GrpcRefused {
        http: http::StatusCode,
        code: i32,
        message: String,
    },

    /// A route that hands its work to an event broker could not: none is configured
    /// (`configured: false`), or it is unreachable or did not acknowledge in time. The client
    /// is told to come back after `retry_after`; the work was not accepted.
    #[error("event broker unavailable: {reason}")]
    BrokerUnavailable {
        configured: bool,
        reason: String,
        retry_after: Duration,
    },

    /// A resource a handler serves itself (a job) does not exist, or is not the caller's: both
    /// answer the same 404 so an id cannot be probed.
    #[error("{what} not found")]
    NotFound { what: String },
}

impl ProxyError {
    /// The side that caused this error.
    pub fn source_side(&self) -> ErrorSource {
        match self {
            ProxyError::NoRoute { .. }
            | ProxyError::BodyTooLarge { .. }
            | ProxyError::HeadersTooLarge { .. }
            | ProxyError::ClientBody { .. }
            | ProxyError::BadRequest { .. }
            | ProxyError::NotAcceptable { .. }
            | ProxyError::GrpcRefused { .. }
            | ProxyError::NotFound { .. } => ErrorSource::Client,
            ProxyError::UpstreamConnect { .. }
            | ProxyError::UpstreamTimeout { .. }
            | ProxyError::UpstreamProtocol { .. }
            | ProxyError::NoEndpoints { .. }
            | ProxyError::Overloaded { .. }
            | ProxyError::BadUpstreamResponse { .. }
            | ProxyError::PartFailed { .. }
            | ProxyError::BrokerUnavailable { .. } => ErrorSource::Upstream,
        }
    }
}

/// Walks an error's `source()` chain looking for a `T`; used to classify errors that come back
/// wrapped by hyper (e.g. our body-limit error inside a client send error).
pub fn find_cause<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

/// An error and its causes on one line, `: `-separated, for config messages and log lines. A
/// cause that the text already ends with is not repeated (hickory's and some I/O errors repeat
/// their source in their own message).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        let next_text = next.to_string();
        if !text.ends_with(&next_text) {
            text.push_str(": ");
            text.push_str(&next_text);
        }
        cause = next.source();
    }
    text
}
