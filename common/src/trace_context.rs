//! W3C Trace Context (`traceparent`, `tracestate`) and request ids.
//!
//! Each hop keeps the trace id, makes a new span id of its own and sends that as the parent id,
//! so a trace shows every Gatehouse tier as its own span.

use http::{HeaderMap, HeaderName, HeaderValue};

// Names as `HeaderName`s: a lookup by `&str` parses the name again on every call.
/// `traceparent` header name.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate` header name.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// `x-request-id` header name.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest `x-request-id` accepted from a client; longer ones are replaced (they go into logs).
const MAX_REQUEST_ID_LEN: usize = 128;

/// The trace context of one request as it passes this hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The span id of the caller, if a valid `traceparent` came in.
    pub parent_id: Option<[u8; 8]>,
    /// Our span id at this hop: sent onward as the parent id.
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl TraceContext {
    /// Reads `traceparent` from the incoming headers; a missing or malformed one starts a new trace
    /// (the W3C spec says to restart rather than propagate garbage).
    pub fn from_headers(headers: &HeaderMap) -> (Self, bool) {
        let parsed = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        match parsed {
            Some((trace_id, parent, flags)) => (
                TraceContext {
                    trace_id,
                    parent_id: Some(parent),
                    span_id: rand::random(),
                    flags,
                },
                true,
            ),
            None => (
                TraceContext {
                    trace_id: nonzero_random(),
                    parent_id: None,
                    span_id: rand::random(),
                    flags: 0x01,
                },
                false,
            ),
        }
    }

    /// The `traceparent` to send upstream: our span id is the parent there.
    pub fn outgoing(&self) -> HeaderValue {
        // `00-<trace id>-<span id>-<flags>`, written in place: this runs on every request.
        let mut v = [b'-'; 55];
        v[..2].copy_from_slice(b"00");
        hex_into(&mut v[3..35], &self.trace_id);
        hex_into(&mut v[36..52], &self.span_id);
        hex_into(&mut v[53..55], &[self.flags]);
        HeaderValue::from_bytes(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The context of a child request this hop sends on its own behalf: the same trace, this
    /// hop's span as the parent, a new span.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            parent_id: Some(self.span_id),
            span_id: rand::random(),
            flags: self.flags,
        }
    }

    /// This hop's span id as 16 lower-case hex digits (for logs).
    pub fn span_id_hex(&self) -> String {
        let mut hex = [0u8; 16];
        hex_into(&mut hex, &self.span_id);
        String::from_utf8_lossy(&hex).into_owned()
    }

    /// The trace id as 32 lower-case hex digits (for logs), on the stack.
    pub fn trace_id_hex(&self) -> TraceIdHex {
        let mut hex = [0u8; 32];
        hex_into(&mut hex, &self.trace_id);
        TraceIdHex(hex)
    }

    /// Sets `traceparent` on outgoing headers and drops `tracestate` when the incoming
    /// `traceparent` was not valid (the spec ties tracestate to a valid parent).
    pub fn apply(&self, headers: &mut HeaderMap, incoming_valid: bool) {
        headers.insert(TRACEPARENT, self.outgoing());
        if !incoming_valid {
            headers.remove(TRACESTATE);
        }
    }
}

fn nonzero_random() -> [u8; 16] {
    loop {
        let id: [u8; 16] = rand::random();
        if id != [0; 16] {
            return id;
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes` into `out` (twice as long), without `fmt`'s per-byte cost.
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0x0f)];
    }
}

/// A trace id's hex text, made without allocating.
#[derive(Clone, Copy)]
pub struct TraceIdHex([u8; 32]);

impl TraceIdHex {
    pub fn as_str(&self) -> &str {
        // Only bytes of HEX were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Display for TraceIdHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for TraceIdHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `00-<32 hex>-<16 hex>-<2 hex>`; all-zero ids and version `ff` are invalid.
/// Versions above 00 are accepted when the first four fields have the version-00 shape.
pub fn parse_traceparent(v: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let v = v.trim();
    let mut parts = v.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2 || version == "ff" || !is_lower_hex(version) {
        return None;
    }
    if version == "00" && (parts.next().is_some() || v.len() != 55) {
        return None;
    }
    let trace_id: [u8; 16] = decode_hex(trace)?;
    let parent_id: [u8; 8] = decode_hex(parent)?;
    let [flags]: [u8; 1] = decode_hex(flags)?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some((trace_id, parent_id, flags))
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !is_lower_hex(s) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Returns the request id to use: the client's `x-request-id` when it is short printable ASCII,
/// otherwise a fresh random one (32 hex digits).
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= MAX_REQUEST_ID_LEN && b.iter().all(|c| c.is_ascii_graphic())
        {
            return v.clone();
        }
    }
    let id: [u8; 16] = rand::random();
    let mut v = [0u8; 32];
    hex_into(&mut v, &id);
    HeaderValue::from_bytes(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_continues_the_trace_under_this_hops_span() {
        let (parent, _) = TraceContext::from_headers(&HeaderMap::new());
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.parent_id, Some(parent.span_id));
        assert_ne!(child.span_id, parent.span_id);
        assert_eq!(child.flags, parent.flags);
        let sent = child.outgoing();
        let sent = sent.to_str().unwrap_or_default();
        assert!(sent.contains(&child.span_id_hex()), "{sent}");
        assert!(sent.contains(parent.trace_id_hex().as_str()), "{sent}");
    }

    #[test]
    fn valid_traceparent_keeps_trace_and_replaces_parent() {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let (tc, valid) = TraceContext::from_headers(&h);
        assert!(valid);
        let out = tc.outgoing();
        let out = out.to_str().expect("ascii");
        assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(!out.contains("00f067aa0ba902b7"));
        assert!(out.ends_with("-01"));
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn request_id_is_kept_or_generated() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h).len(), 32);
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&h), "has space");
    }

    /// The ids written by hand are the ones `format!` writes.
    #[test]
    fn hex_matches_format() {
        for _ in 0..100 {
            let (t, _) = TraceContext::from_headers(&HeaderMap::new());
            let want = format!(
                "00-{}-{}-{:02x}",
                t.trace_id
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
                t.span_id
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
                t.flags
            );
            assert_eq!(t.outgoing().to_str().ok(), Some(want.as_str()));
            assert_eq!(
                parse_traceparent(&want),
                Some((t.trace_id, t.span_id, t.flags))
            );
            let id = request_id(&HeaderMap::new());
            let id = id.to_str().unwrap_or_default();
            assert_eq!(id.len(), 32);
            assert!(is_lower_hex(id), "{id}");
        }
    }
}
