//! The outcome of a gRPC call (`google.rpc.Status`): read from `grpc-*` headers or trailers,
//! written as the JSON error body REST clients get, and written back as trailers for gRPC clients.

mod code;
mod percent;

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderValue;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};

pub use code::*;

/// The header or trailer holding the code (decimal).
pub const GRPC_STATUS: &str = "grpc-status";
/// The header or trailer holding the percent-encoded message.
pub const GRPC_MESSAGE: &str = "grpc-message";
/// The header or trailer holding a base64 `google.rpc.Status` protobuf with the details.
pub const GRPC_STATUS_DETAILS_BIN: &str = "grpc-status-details-bin";

/// gRPC says binary headers may come with or without base64 padding; both are read.
const BASE64_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A gRPC status: code, message and the details of `google.rpc.Status`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Status {
    /// The gRPC code (see the constants of this module); any `i32` a peer sent is kept.
    pub code: i32,
    /// The developer-facing message, decoded.
    pub message: String,
    /// The `google.protobuf.Any` details (`google.rpc.BadRequest` and the like), in order.
    pub details: Vec<Detail>,
}

/// One `google.protobuf.Any` of a status's details.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Detail {
    /// `type.googleapis.com/` and the message's full name.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The message, protobuf-encoded.
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

/// `google.rpc.Status` on the wire (what `grpc-status-details-bin` carries). Declared here rather
/// than taken from tonic-types so that details stay plain bytes with no `prost-types` dependency;
/// a test checks it against tonic-types' own encoding.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Detail>,
}

impl Status {
    /// A status with no details.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// What a response that ended without any `grpc-status` stands for: `UNAVAILABLE` (HTTP 503,
    /// issue 15), since the call's outcome is unknown and the upstream broke the protocol.
    pub fn missing() -> Self {
        Status::new(
            UNAVAILABLE,
            "the upstream ended the call without a grpc-status",
        )
    }

    /// The status in a response's headers (a trailers-only response) or trailers; `None` when
    /// `grpc-status` is absent.
    ///
    /// Never fails, as the gRPC spec asks of receivers: a `grpc-status` that is not a number is
    /// `UNKNOWN` with a message saying so; a `grpc-status-details-bin` that is not base64 of a
    /// `google.rpc.Status` is ignored. When it is valid its details are the status's details, and
    /// its message is used if `grpc-message` is absent; the code is always `grpc-status`'s, which
    /// is what every gRPC client acts on.
    pub fn from_metadata(map: &HeaderMap) -> Option<Status> {
        let raw = map.get(GRPC_STATUS)?;
        let mut status = match parse_code(raw) {
            Some(code) => Status::new(code, String::new()),
            None => {
                let shown = String::from_utf8_lossy(raw.as_bytes());
                return Some(Status::new(
                    UNKNOWN,
                    format!("invalid grpc-status {shown:?}"),
                ));
            }
        };
        let message = map.get(GRPC_MESSAGE).map(|v| percent::decode(v.as_bytes()));
        if let Some(bin) = map
            .get(GRPC_STATUS_DETAILS_BIN)
            .and_then(decode_details_bin)
        {
            status.message = bin.message;
            status.details = bin.details;
        }
        if let Some(message) = message {
            status.message = message;
        }
        Some(status)
    }

    /// The trailers that end a gRPC response with this status (or the headers of a trailers-only
    /// response): `grpc-status`, `grpc-message` percent-encoded when there is a message, and
    /// `grpc-status-details-bin` (unpadded base64, as gRPC writes it) when there are details.
    pub fn to_trailers(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(3);
        map.insert(GRPC_STATUS, HeaderValue::from(self.code));
        if !self.message.is_empty() {
            // Percent-encoding leaves printable ASCII only: always a valid header value.
            if let Ok(v) = HeaderValue::from_str(&percent::encode(&self.message)) {
                map.insert(GRPC_MESSAGE, v);
            }
        }
        if !self.details.is_empty() {
            let bin = RpcStatus {
                code: self.code,
                message: self.message.clone(),
                details: self.details.clone(),
            };
            if let Ok(v) = HeaderValue::from_str(&STANDARD_NO_PAD.encode(bin.encode_to_vec())) {
                map.insert(GRPC_STATUS_DETAILS_BIN, v);
            }
        }
        map
    }

    /// The JSON of `google.rpc.Status` that REST clients get as an error body:
    /// `{"code":5,"message":"…","details":[…]}` (`details` always present, possibly empty).
    ///
    /// Each detail follows the proto3 JSON mapping of `Any` (`{"@type": url, …fields}`) when
    /// `pool` knows its type (the transcoder's pool holds tonic-types' `google.rpc` error details
    /// next to the services' own messages); otherwise, or when its bytes do not decode as that
    /// type, it is `{"@type": url, "value": "<base64>"}` so that nothing is dropped.
    pub fn to_json(&self, pool: &DescriptorPool) -> Bytes {
        let mut out = Vec::with_capacity(64 + self.message.len());
        out.extend_from_slice(b"{\"code\":");
        out.extend_from_slice(self.code.to_string().as_bytes());
        out.extend_from_slice(b",\"message\":");
        push_json_string(&mut out, &self.message);
        out.extend_from_slice(b",\"details\":[");
        let any = pool.get_message_by_name("google.protobuf.Any");
        for (i, detail) in self.details.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match any.as_ref().and_then(|any| detail_json(any, detail)) {
                Some(json) => out.extend_from_slice(&json),
                None => {
                    out.extend_from_slice(b"{\"@type\":");
                    push_json_string(&mut out, &detail.type_url);
                    out.extend_from_slice(b",\"value\":\"");
                    out.extend_from_slice(STANDARD_NO_PAD.encode(&detail.value).as_bytes());
                    out.extend_from_slice(b"\"}");
                }
            }
        }
        out.extend_from_slice(b"]}");
        Bytes::from(out)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", code_name(self.code), self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Status {}

/// A `grpc-status` value: ASCII digits only (no sign, no spaces), as the spec writes it.
fn parse_code(raw: &HeaderValue) -> Option<i32> {
    let s = raw.to_str().ok()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn decode_details_bin(raw: &HeaderValue) -> Option<RpcStatus> {
    let bytes = BASE64_ANY_PADDING
        .decode(raw.as_bytes().trim_ascii())
        .ok()?;
    RpcStatus::decode(bytes.as_slice()).ok()
}

/// One detail by the proto3 JSON mapping of `Any`, if its type is in the pool and it decodes.
/// Written through prost-reflect's own `Any` serializer, which resolves the type in the pool and
/// handles the well-known types' `{"@type", "value"}` form.
fn detail_json(any: &prost_reflect::MessageDescriptor, detail: &Detail) -> Option<Vec<u8>> {
    let mut msg = DynamicMessage::new(any.clone());
    msg.try_set_field_by_name("type_url", Value::String(detail.type_url.clone()))
        .ok()?;
    msg.try_set_field_by_name("value", Value::Bytes(detail.value.clone()))
        .ok()?;
    serde_json::to_vec(&msg).ok()
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // Serializing a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests;
