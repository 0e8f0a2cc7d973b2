//! Deadline propagation: the time left is sent downstream (`grpc-timeout` for gRPC,
//! `x-gatehouse-deadline-ms` otherwise) and honoured when received, so no tier works past its
//! caller's deadline.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

/// Milliseconds left for the request, set by a Gatehouse hop.
pub const X_DEADLINE_MS: HeaderName = HeaderName::from_static("x-gatehouse-deadline-ms");
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The deadline the caller gave us, if any (the smaller of the two headers).
pub fn incoming(headers: &HeaderMap) -> Option<Duration> {
    let ours = headers
        .get(X_DEADLINE_MS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    let grpc = headers
        .get(GRPC_TIMEOUT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout);
    match (ours, grpc) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses gRPC's `TimeoutValue TimeoutUnit` (up to 8 digits; H M S m u n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (num, unit) = v.split_at(v.len() - 1);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Writes the time left into the outgoing headers: `grpc-timeout` for gRPC requests (in
/// milliseconds, at least 1), `x-gatehouse-deadline-ms` for everything.
pub fn propagate(headers: &mut HeaderMap, left: Duration, grpc: bool) {
    let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
    headers.insert(X_DEADLINE_MS, HeaderValue::from(ms));
    if grpc && let Ok(v) = HeaderValue::try_from(format!("{}m", ms.min(99_999_999))) {
        headers.insert(GRPC_TIMEOUT, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
    }

    #[test]
    fn smaller_incoming_wins() {
        let mut h = HeaderMap::new();
        h.insert(X_DEADLINE_MS, HeaderValue::from_static("500"));
        h.insert(GRPC_TIMEOUT, HeaderValue::from_static("200m"));
        assert_eq!(incoming(&h), Some(Duration::from_millis(200)));
    }
}
