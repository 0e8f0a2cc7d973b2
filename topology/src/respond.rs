//! Response builders shared by the services: JSON bodies and RFC 9457 problem details.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use serde_json::json;

/// The body type of every REST answer: small and fully buffered.
pub(crate) type Body = Full<Bytes>;

/// The media type of problem details (RFC 9457 §3).
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// `status` with `value` as `application/json`.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_type(status, "application/json", bytes),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            &format!("cannot encode the answer: {e}"),
        ),
    }
}

/// `200 OK` with `value` as JSON.
pub(crate) fn ok<T: Serialize>(value: &T) -> Response<Body> {
    json(StatusCode::OK, value)
}

/// A problem: `{"type": "urn:gatehouse:problem:<slug>", "title", "status", "detail"}`.
pub(crate) fn problem(status: StatusCode, slug: &str, title: &str, detail: &str) -> Response<Body> {
    let body = json!({
        "type": format!("urn:gatehouse:problem:{slug}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    with_type(status, PROBLEM_JSON, body.to_string().into_bytes())
}

/// 404 for a path or resource the service does not have.
pub(crate) fn not_found(detail: &str) -> Response<Body> {
    problem(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
}

/// 405 with `Allow`.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        &format!("this resource allows {allow}"),
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// A body with its content type.
pub(crate) fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
