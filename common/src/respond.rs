//! The one place that turns a [`ProxyError`] into an answer for the client:
//! `application/problem+json` (RFC 9457) for HTTP, `grpc-status` for gRPC.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::body::{ProxyBody, full};
use crate::error::{ErrorSource, ProxyError};
use crate::trace_context::X_REQUEST_ID;

/// The media type of problem details (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// RFC 9457 problem details, plus the request id so a user can quote it in a support ticket.
#[derive(Debug, Serialize)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'a str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<&'a str>,
    pub request_id: &'a str,
    /// The `google.rpc.Status` members of a transcoded call's error (RFC 9457 §3.2 extension
    /// members).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcMembers<'a>>,
}

/// `code`, `message` and `details` of a `google.rpc.Status`, in a problem document.
#[derive(Debug, Serialize)]
pub struct GrpcMembers<'a> {
    pub code: i32,
    pub message: &'a str,
    /// Each detail by the proto3 JSON mapping of `Any`.
    pub details: &'a [serde_json::Value],
}

/// Status, short problem slug and title for each error.
pub fn classify(err: &ProxyError) -> (StatusCode, &'static str, &'static str) {
    match err {
        ProxyError::NoRoute { .. } => (StatusCode::NOT_FOUND, "no-route", "No route matches"),
        ProxyError::UpstreamConnect { .. } => (
            StatusCode::BAD_GATEWAY,
            "upstream-connect",
            "Upstream connection failed",
        ),
        ProxyError::UpstreamProtocol { .. } => (
            StatusCode::BAD_GATEWAY,
            "upstream-protocol",
            "Upstream failed mid-request",
        ),
        ProxyError::UpstreamTimeout { .. } => (
            StatusCode::GATEWAY_TIMEOUT,
            "upstream-timeout",
            "Upstream timed out",
        ),
        ProxyError::NoEndpoints { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no-endpoints",
            "No upstream endpoint available",
        ),
        ProxyError::Overloaded { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "Service overloaded",
        ),
        ProxyError::BodyTooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
        ),
        ProxyError::HeadersTooLarge { .. } => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request headers too large",
        ),
        ProxyError::ClientBody { .. } => (
            StatusCode::BAD_REQUEST,
            "client-body",
            "Request body could not be read",
        ),
        ProxyError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
        ProxyError::NotAcceptable { .. } => (
            StatusCode::NOT_ACCEPTABLE,
            "not-acceptable",
            "No acceptable representation",
        ),
        ProxyError::BadUpstreamResponse { .. } => (
            StatusCode::BAD_GATEWAY,
            "bad-upstream-response",
            "Unusable upstream response",
        ),
        ProxyError::GrpcRefused { http, code, .. } => {
            (*http, grpc_problem_slug(*code), grpc_problem_title(*code))
        }
        ProxyError::BrokerUnavailable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "broker-unavailable",
            "Event broker unavailable",
        ),
        ProxyError::NotFound { .. } => (StatusCode::NOT_FOUND, "not-found", "Not found"),
        ProxyError::PartFailed { status, .. } => match status.as_u16() {
            404 => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            504 => (
                StatusCode::GATEWAY_TIMEOUT,
                "aggregate-part-timeout",
                "A required part timed out",
            ),
            400..=499 => (
                *status,
                "aggregate-part-rejected",
                "A required part was refused",
            ),
            _ => (
                StatusCode::BAD_GATEWAY,
                "aggregate-part-failed",
                "A required part failed",
            ),
        },
    }
}

/// Builds the answer for `err`. `grpc` selects a trailers-only gRPC response.
///
/// `public_errors`: the client is outside (the edge's); upstream failures then say what happened
/// without naming internal services, addresses or causes (those are in the log line with the
/// same request id).
pub fn error_response(
    err: &ProxyError,
    request_id: &HeaderValue,
    path: Option<&str>,
    grpc: bool,
    public_errors: bool,
) -> Response<ProxyBody> {
    let (status, slug, title) = classify(err);
    let detail = match err {
        // The part is named either way: it is the route's own vocabulary, not an address.
        ProxyError::PartFailed { part, public, .. } if public_errors => {
            format!("part `{part}` {public}")
        }
        _ if public_errors && err.source_side() == ErrorSource::Upstream => {
            public_detail(err).to_owned()
        }
        _ => detail(err),
    };
    let mut res = match err {
        ProxyError::GrpcRefused { code, message, .. } => match grpc {
            true => grpc_response(u8::try_from(*code).unwrap_or(2), message, request_id),
            false => grpc_status_problem(status, *code, message, &[], request_id, path),
        },
        _ if grpc => grpc_response(grpc_code(status), &detail, request_id),
        _ => problem_response(status, slug, title, detail, request_id, path),
    };
    match err {
        ProxyError::Overloaded { retry_after, .. } => {
            // Tell the client (and every tier on the way back) that this was load shedding, and
            // when to come back; no Gatehouse tier strips these headers on responses.
            let h = res.headers_mut();
            h.insert(header::RETRY_AFTER, retry_after_secs(*retry_after));
            h.insert(X_OVERLOADED, HeaderValue::from_static("true"));
        }
        ProxyError::BrokerUnavailable { retry_after, .. } => {
            let h = res.headers_mut();
            h.insert(header::RETRY_AFTER, retry_after_secs(*retry_after));
        }
        _ => {}
    }
    res
}

/// `Retry-After` in whole seconds, at least 1 (0 would invite an immediate retry storm).
fn retry_after_secs(after: std::time::Duration) -> HeaderValue {
    HeaderValue::from(after.as_secs().max(1))
}

/// What an outside client is told of an upstream failure.
fn public_detail(err: &ProxyError) -> &'static str {
    match err {
        ProxyError::UpstreamTimeout { .. } => "the service did not answer in time",
        ProxyError::Overloaded { .. } => "the service is overloaded; retry later",
        ProxyError::NoEndpoints { .. } => "the service is unavailable",
        ProxyError::BadUpstreamResponse { .. } => {
            "the service answered with something this route cannot use"
        }
        ProxyError::BrokerUnavailable {
            configured: false, ..
        } => "no event broker is configured for this route",
        ProxyError::BrokerUnavailable { .. } => {
            "the event broker did not accept the request; retry later"
        }
        _ => "the service could not be reached",
    }
}

/// The error's message; for upstream connection failures also the root cause (refused, timed
/// out, or which certificate check failed), which is what an operator needs to act on.
fn detail(err: &ProxyError) -> String {
    let mut msg = err.to_string();
    if let ProxyError::UpstreamConnect { .. } = err {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
        let mut root = None;
        while let Some(c) = cause {
            root = Some(c);
            cause = c.source();
        }
        if let Some(root) = root {
            msg.push_str(": ");
            msg.push_str(&root.to_string());
        }
    }
    msg
}

/// Set on responses refused by a circuit breaker.
pub const X_OVERLOADED: http::HeaderName = http::HeaderName::from_static("x-gatehouse-overloaded");

/// A problem+json response; public so other layers (auth, limits) answer in the same shape.
pub fn problem_response(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: String,
    request_id: &HeaderValue,
    path: Option<&str>,
) -> Response<ProxyBody> {
    let problem = Problem {
        kind: format!("urn:gatehouse:problem:{slug}"),
        title,
        status: status.as_u16(),
        detail,
        instance: path,
        request_id: request_id.to_str().unwrap_or_default(),
        grpc: None,
    };
    problem_body(status, &problem, request_id)
}

/// A gRPC status answered to an HTTP client (a transcoded call): a problem document whose
/// extension members are the `google.rpc.Status` ones (`code`, `message`, `details`), so
/// clients written for grpc-gateway or Envoy's transcoder read it as they expect, and others as
/// any problem. `status` comes from the gRPC → HTTP table; the service's message is its own
/// vocabulary and passes as it is.
pub fn grpc_status_problem(
    status: StatusCode,
    code: i32,
    message: &str,
    details: &[serde_json::Value],
    request_id: &HeaderValue,
    path: Option<&str>,
) -> Response<ProxyBody> {
    let problem = Problem {
        kind: format!("urn:gatehouse:problem:{}", grpc_problem_slug(code)),
        title: grpc_problem_title(code),
        status: status.as_u16(),
        detail: message.to_owned(),
        instance: path,
        request_id: request_id.to_str().unwrap_or_default(),
        grpc: Some(GrpcMembers {
            code,
            message,
            details,
        }),
    };
    problem_body(status, &problem, request_id)
}

/// The problem type of a gRPC code: `grpc-not-found`; unknown codes are `grpc-unknown`.
fn grpc_problem_slug(code: i32) -> &'static str {
    GRPC_CODES
        .get(usize::try_from(code).unwrap_or(usize::MAX))
        .map_or("grpc-unknown", |c| c.0)
}

fn grpc_problem_title(code: i32) -> &'static str {
    GRPC_CODES
        .get(usize::try_from(code).unwrap_or(usize::MAX))
        .map_or("Unknown", |c| c.1)
}

/// gRPC codes 0..=16 (grpc/doc/statuscodes.md): problem slug and title.
const GRPC_CODES: [(&str, &str); 17] = [
    ("grpc-ok", "OK"),
    ("grpc-cancelled", "Cancelled"),
    ("grpc-unknown", "Unknown"),
    ("grpc-invalid-argument", "Invalid argument"),
    ("grpc-deadline-exceeded", "Deadline exceeded"),
    ("grpc-not-found", "Not found"),
    ("grpc-already-exists", "Already exists"),
    ("grpc-permission-denied", "Permission denied"),
    ("grpc-resource-exhausted", "Resource exhausted"),
    ("grpc-failed-precondition", "Failed precondition"),
    ("grpc-aborted", "Aborted"),
    ("grpc-out-of-range", "Out of range"),
    ("grpc-unimplemented", "Unimplemented"),
    ("grpc-internal", "Internal"),
    ("grpc-unavailable", "Unavailable"),
    ("grpc-data-loss", "Data loss"),
    ("grpc-unauthenticated", "Unauthenticated"),
];

fn problem_body(
    status: StatusCode,
    problem: &Problem<'_>,
    request_id: &HeaderValue,
) -> Response<ProxyBody> {
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut res = Response::new(full(Bytes::from(body)));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_REQUEST_ID, request_id.clone());
    res
}

/// gRPC status codes used for gateway errors (grpc/doc/statuscodes.md, http-grpc-status-mapping).
pub fn grpc_code(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 => 3,             // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        404 => 12,            // UNIMPLEMENTED: no such method here
        413 | 429 | 431 => 8, // RESOURCE_EXHAUSTED
        502 | 503 => 14,      // UNAVAILABLE
        504 => 4,             // DEADLINE_EXCEEDED
        _ => 13,              // INTERNAL
    }
}

/// A trailers-only gRPC response: HTTP 200 with `grpc-status` and `grpc-message` in the headers.
pub fn grpc_response(code: u8, message: &str, request_id: &HeaderValue) -> Response<ProxyBody> {
    let mut res = Response::new(crate::body::empty());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if let Ok(v) = HeaderValue::try_from(percent_encode_grpc(message)) {
        h.insert("grpc-message", v);
    }
    h.insert(X_REQUEST_ID, request_id.clone());
    res
}

/// gRPC messages are percent-encoded (grpc/doc/PROTOCOL-HTTP2.md: Status-Message).
fn percent_encode_grpc(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for b in msg.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn json(res: Response<ProxyBody>) -> serde_json::Value {
        let body = res.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&body).expect("json")
    }

    /// A transcoder's refusal: one document that is both a problem and a `google.rpc.Status`;
    /// a gRPC client gets the code itself, not one derived from the HTTP status.
    #[tokio::test]
    async fn grpc_refusals_carry_the_status_members() {
        let id = HeaderValue::from_static("req-1");
        let err = ProxyError::GrpcRefused {
            http: StatusCode::BAD_REQUEST,
            code: 3,
            message: "invalid JSON body: expected value at line 1 column 2".into(),
        };
        let res = error_response(&err, &id, Some("/api/v1/orders"), false, true);
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let v = json(res).await;
        assert_eq!(v["type"], "urn:gatehouse:problem:grpc-invalid-argument");
        assert_eq!(v["status"], 400);
        assert_eq!(v["code"], 3);
        assert_eq!(
            v["message"],
            "invalid JSON body: expected value at line 1 column 2"
        );
        assert_eq!(v["details"], serde_json::json!([]));
        assert_eq!(v["request_id"], "req-1");

        let res = error_response(&err, &id, None, true, true);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["grpc-status"], "3");
    }

    #[tokio::test]
    async fn relayed_statuses_keep_their_details() {
        let id = HeaderValue::from_static("req-2");
        let details = [
            serde_json::json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "GONE"}),
        ];
        let res = grpc_status_problem(
            StatusCode::NOT_FOUND,
            5,
            "no order o-9",
            &details,
            &id,
            None,
        );
        let v = json(res).await;
        assert_eq!(v["title"], "Not found");
        assert_eq!(v["code"], 5);
        assert_eq!(v["details"][0]["reason"], "GONE");
        assert!(v.get("instance").is_none());
        assert_eq!(grpc_problem_title(16), "Unauthenticated");
        assert_eq!(grpc_problem_slug(-1), "grpc-unknown");
    }
}
