//! The edge's own answers: problem+json bodies with the RFC 6750 and rate-limit headers.

use gatehouse_common::body::ProxyBody;
use gatehouse_common::ctx::RequestCtx;
use gatehouse_common::respond::{grpc_code, grpc_response, problem_response};
use http::{HeaderValue, Response, StatusCode, header};

/// A problem response for this request (a trailers-only gRPC status for gRPC callers, so
/// their client libraries report UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED…).
pub fn problem(
    ctx: &RequestCtx,
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: impl Into<String>,
) -> Response<ProxyBody> {
    if ctx.grpc {
        return grpc_response(grpc_code(status), &detail.into(), &ctx.request_id);
    }
    problem_response(
        status,
        slug,
        title,
        detail.into(),
        &ctx.request_id,
        Some(&ctx.path),
    )
}

/// RFC 6750 quoted-string: the description is ours, but keep it header-safe anyway.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

/// 401. `error` is `None` when no credentials were sent (RFC 6750 §3.1).
pub fn unauthorized(ctx: &RequestCtx, error: Option<&str>) -> Response<ProxyBody> {
    let (challenge, detail) = match error {
        Some(desc) => (
            format!(
                "Bearer realm=\"gatehouse\", error=\"invalid_token\", error_description=\"{}\"",
                quoted(desc)
            ),
            desc.to_owned(),
        ),
        None => (
            "Bearer realm=\"gatehouse\"".to_owned(),
            "credentials required".to_owned(),
        ),
    };
    let mut res = problem(
        ctx,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
        detail,
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// 403 `insufficient_scope`.
pub fn forbidden(ctx: &RequestCtx, desc: &str) -> Response<ProxyBody> {
    let mut res = problem(ctx, StatusCode::FORBIDDEN, "forbidden", "Forbidden", desc);
    let challenge = format!(
        "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", error_description=\"{}\"",
        quoted(desc)
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}
