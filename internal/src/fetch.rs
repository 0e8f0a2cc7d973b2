//! Reading a service's JSON answer in a handler: bounded, checked, and the values a request
//! puts into a service's path made safe.

use bytes::Bytes;
use gatehouse_common::body::{ProxyBody, full};
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;

/// The whole body, or `None` once it passes `max` bytes (it is not read further).
pub async fn read_limited(
    mut body: ProxyBody,
    max: u64,
) -> Result<Option<Bytes>, gatehouse_common::BoxError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if (buf.len() + data.len()) as u64 > max {
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

/// Rewrites a 2xx JSON answer: its body read (up to `max` bytes) and parsed, then replaced by
/// `f(json)`, with `Content-Length` set, `Content-Type` replaced when `content_type` is given,
/// and `Content-Encoding`/`ETag` dropped (they described the service's bytes). Any other answer is returned as it is. An unreadable, too large or invalid
/// body is a 502 (`bad-upstream-response`) naming `service`.
pub async fn rewrite_json(
    res: Response<ProxyBody>,
    max: u64,
    service: &str,
    content_type: Option<&'static str>,
    f: impl FnOnce(serde_json::Value) -> Bytes,
) -> Result<Response<ProxyBody>, gatehouse_common::error::ProxyError> {
    if !res.status().is_success() || !is_json(res.headers().get(header::CONTENT_TYPE)) {
        return Ok(res);
    }
    let (mut head, body) = res.into_parts();
    let bad = |reason: String| gatehouse_common::error::ProxyError::BadUpstreamResponse {
        service: service.to_owned(),
        reason,
    };
    let data = read_limited(body, max)
        .await
        .map_err(|e| bad(format!("the answer could not be read: {e}")))?
        .ok_or_else(|| bad(format!("the answer exceeds {max} bytes")))?;
    let value = serde_json::from_slice(&data)
        .map_err(|e| bad(format!("the answer is not valid JSON: {e}")))?;
    let out = f(value);
    let h = &mut head.headers;
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    h.remove(header::CONTENT_ENCODING);
    h.remove(header::ETAG);
    if let Some(ct) = content_type {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    Ok(Response::from_parts(head, full(out)))
}

/// `value` as one path segment: every byte but RFC 3986's unreserved ones percent-encoded, and
/// the dot segments `.` and `..` encoded too.
pub fn encode_segment(value: &str) -> String {
    let dots = value == "." || value == "..";
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        let keep =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') || (b == b'.' && !dots);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a `Content-Type` is JSON (`application/json` or any `+json` type).
pub fn is_json(ct: Option<&HeaderValue>) -> bool {
    let Some(ct) = ct.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

/// A 200 `application/json` answer.
pub fn json_response(body: Bytes) -> Response<ProxyBody> {
    let mut res = Response::new(full(body));
    *res.status_mut() = StatusCode::OK;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_one_segment() {
        let cases = [
            ("42", "42"),
            ("ada.lovelace", "ada.lovelace"),
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("a/b", "a%2Fb"),
            ("x?y#z", "x%3Fy%23z"),
            ("é", "%C3%A9"),
            ("a b", "a%20b"),
        ];
        for (value, want) in cases {
            assert_eq!(encode_segment(value), want, "{value}");
        }
    }

    #[test]
    fn json_content_types() {
        let cases = [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/problem+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ];
        for (ct, want) in cases {
            assert_eq!(is_json(Some(&HeaderValue::from_static(ct))), want, "{ct}");
        }
        assert!(!is_json(None));
    }
}
