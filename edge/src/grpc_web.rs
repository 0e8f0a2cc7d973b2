//! gRPC-Web at the edge (grpc/grpc `doc/PROTOCOL-WEB.md`): on a policy with `grpc_web: true`,
//! a browser's `application/grpc-web[+proto]` or `application/grpc-web-text[+proto]` call goes
//! upstream as plain gRPC (`application/grpc[+proto]`, `te: trailers`, `-text` bodies
//! base64-decoded as they stream), and the answer comes back as gRPC-Web: the same
//! content type family, data frames passed through (base64-encoded for `-text`), the
//! upstream's trailers as a last frame flagged `0x80`, no HTTP trailers.
//!
//! The bridge sees every answer to a gRPC-Web request, the edge's own refusals included: those
//! are trailers-only gRPC answers from `gatehouse_common::respond` (HTTP 200, `grpc-status`
//! in the headers), which the protocol allows as they are; they just get the caller's content
//! type. The streaming bodies are in [`body`].

mod body;

use gatehouse_common::body::{ProxyBody, empty};
use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, request, response};
use http_body_util::BodyExt;

use crate::settings::CorsSettings;

pub use body::{BadBase64, TextRequestBody, WebResponseBody};

/// Request headers a gRPC-Web client sends that a CORS preflight must allow: its own marker
/// and user agent, the deadline, and the non-safelisted content type. Added to `allow_headers`
/// of a `grpc_web` policy's `cors`. `x-accept-*` are sent by improbable-eng's client.
pub const CORS_ALLOW_HEADERS: [&str; 6] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "x-accept-content-transfer-encoding",
    "x-accept-response-streaming",
];

/// Response headers a browser script must be able to read: the status of trailers-only
/// answers (the edge's own refusals among them). Added to `expose_headers`.
pub const CORS_EXPOSE_HEADERS: [&str; 3] =
    ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// A gRPC-Web call, recognised from its `content-type` before any other check (so even a
/// refusal answers in the caller's content type); kept in the request's context.
#[derive(Debug, Clone)]
pub struct GrpcWeb {
    /// `application/grpc-web-text…`: the request body is base64.
    text_request: bool,
    /// The answer is base64: the request was `-text`, or `Accept` asks for
    /// `application/grpc-web-text` (PROTOCOL-WEB: "Text-encoded (response) streams").
    text_response: bool,
    /// What the answer's `content-type` says: `application/grpc-web[-text]` and the request's
    /// codec suffix (`+proto`, `+json`, or none).
    content_type: HeaderValue,
    /// What the upstream gets: `application/grpc` and the same suffix.
    upstream_type: HeaderValue,
    /// Set when the policy has `grpc_web: true` and let the call through: the request is
    /// translated on its way up and the answer on its way back. Otherwise the request is
    /// forwarded as it came (a service that speaks gRPC-Web itself), and only the edge's own
    /// gRPC answers get the caller's content type.
    pub translate: bool,
}

impl GrpcWeb {
    /// The gRPC-Web call `headers` announce: `application/grpc-web` or `application/grpc-web-text`,
    /// optionally followed by `+codec`, parameters ignored, case-insensitive. Runs on every
    /// request: others leave after a prefix comparison; gRPC-Web calls pay for two small
    /// header values.
    pub fn detect(headers: &HeaderMap) -> Option<GrpcWeb> {
        let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let ct = ct.split(';').next().unwrap_or_default().trim();
        if !ct
            .get(..BINARY.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(BINARY))
        {
            return None;
        }
        let ct = ct.to_ascii_lowercase();
        let (text, suffix) = match ct.strip_prefix("application/grpc-web-text") {
            Some(rest) => (true, rest),
            None => (false, ct.strip_prefix("application/grpc-web")?),
        };
        let codec_ok = suffix.is_empty()
            || suffix.strip_prefix('+').is_some_and(|c| {
                !c.is_empty()
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            });
        if !codec_ok {
            return None;
        }
        let text_response = text
            || headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|t| {
                    let t = t.split(';').next().unwrap_or_default().trim();
                    t.len() >= TEXT.len() && t[..TEXT.len()].eq_ignore_ascii_case(TEXT)
                });
        let answer = if text_response { TEXT } else { BINARY };
        Some(GrpcWeb {
            text_request: text,
            text_response,
            content_type: HeaderValue::from_str(&format!("{answer}{suffix}")).ok()?,
            upstream_type: HeaderValue::from_str(&format!("application/grpc{suffix}")).ok()?,
            translate: false,
        })
    }

    /// The request as gRPC: content type, `te: trailers` (gRPC over HTTP/2 requires it), and
    /// for `-text` the body decoded as it streams (its length is then unknown).
    pub fn request(&self, parts: &mut request::Parts, body: ProxyBody) -> ProxyBody {
        let h = &mut parts.headers;
        h.insert(header::CONTENT_TYPE, self.upstream_type.clone());
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        if !self.text_request {
            return body;
        }
        h.remove(header::CONTENT_LENGTH);
        TextRequestBody::new(body).boxed_unsync()
    }

    /// The answer as gRPC-Web (see the module's documentation).
    pub fn response(&self, res: &mut response::Parts, body: ProxyBody) -> ProxyBody {
        let grpc = is_native_grpc(&res.headers);
        let status_in_headers = res.headers.contains_key(GRPC_STATUS);
        if !self.translate {
            if grpc && status_in_headers {
                res.headers
                    .insert(header::CONTENT_TYPE, self.content_type.clone());
            }
            return body;
        }
        res.headers.remove(header::CONTENT_LENGTH);
        if status_in_headers {
            // A trailers-only answer: "no change to the gRPC protocol spec" (PROTOCOL-WEB). A
            // `grpc-status` must be used when present, so the HTTP status says nothing more.
            res.status = StatusCode::OK;
        } else if res.status != StatusCode::OK || !grpc {
            // Not a gRPC answer (something between us and the service): what the client can
            // read of it, by grpc/grpc `doc/http-grpc-status-mapping.md`.
            let code = http_to_grpc(res.status);
            let message = format!(
                "the upstream answered HTTP {} without a gRPC status",
                res.status.as_u16()
            );
            for name in [
                header::CONTENT_ENCODING,
                header::CONTENT_LANGUAGE,
                header::ETAG,
            ] {
                res.headers.remove(name);
            }
            res.status = StatusCode::OK;
            res.headers.insert(GRPC_STATUS, HeaderValue::from(code));
            if let Ok(v) = HeaderValue::from_str(&message) {
                res.headers.insert(GRPC_MESSAGE, v);
            }
            res.headers
                .insert(header::CONTENT_TYPE, self.content_type.clone());
            return empty();
        }
        res.headers
            .insert(header::CONTENT_TYPE, self.content_type.clone());
        WebResponseBody::new(body, self.text_response, status_in_headers).boxed_unsync()
    }
}

const TEXT: &str = "application/grpc-web-text";
const BINARY: &str = "application/grpc-web";
const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";

/// `application/grpc[+codec]`, the native protocol (not `application/grpc-web…`).
fn is_native_grpc(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ct = ct.split(';').next().unwrap_or_default().trim();
    let native = "application/grpc";
    ct.get(..native.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(native))
        && matches!(ct.as_bytes().get(native.len()), None | Some(b'+'))
}

/// grpc/grpc `doc/http-grpc-status-mapping.md`: for answers without `grpc-status` only.
fn http_to_grpc(status: StatusCode) -> u16 {
    match status.as_u16() {
        400 | 431 => 13,             // INTERNAL
        401 => 16,                   // UNAUTHENTICATED
        403 => 7,                    // PERMISSION_DENIED
        404 => 12,                   // UNIMPLEMENTED
        429 | 502 | 503 | 504 => 14, // UNAVAILABLE
        _ => 2,                      // UNKNOWN
    }
}

/// A `grpc_web` policy's CORS settings: the operator's, plus the headers gRPC-Web clients send
/// ([`CORS_ALLOW_HEADERS`]) and must read ([`CORS_EXPOSE_HEADERS`]), without duplicates.
pub fn cors_settings(s: &CorsSettings) -> CorsSettings {
    let add = |list: &[String], extra: &[&str]| {
        let mut out = list.to_vec();
        for e in extra {
            if !out.iter().any(|h| h.eq_ignore_ascii_case(e)) {
                out.push((*e).to_owned());
            }
        }
        out
    };
    CorsSettings {
        allow_headers: add(&s.allow_headers, &CORS_ALLOW_HEADERS),
        expose_headers: add(&s.expose_headers, &CORS_EXPOSE_HEADERS),
        ..s.clone()
    }
}

#[cfg(test)]
mod tests;
