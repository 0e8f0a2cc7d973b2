//! Identity-header hygiene: `x-gatehouse-*` request headers are believed only from a trusted
//! gateway (by its SPIFFE ID, on an mTLS listener); from anyone else they are removed before
//! routing, so identity conditions cannot be spoofed.

use http::HeaderMap;
use http::header::HeaderName;

use crate::upstream::deadline::X_DEADLINE_MS;

/// The prefix of the headers a gateway uses to forward what it verified.
pub const PREFIX: &str = "x-gatehouse-";
/// The authenticated caller (set by the edge).
pub const X_SUBJECT: &str = "x-gatehouse-subject";
/// The caller's scopes, separated by spaces or commas (set by the edge).
pub const X_SCOPES: &str = "x-gatehouse-scopes";

/// Whether `peer` (the downstream SPIFFE ID, if mTLS) is one of `trusted`.
pub fn is_trusted(peer: Option<&str>, trusted: &[String]) -> bool {
    peer.is_some_and(|p| trusted.iter().any(|t| t == p))
}

/// Removes every `x-gatehouse-*` header except the deadline (`x-gatehouse-deadline-ms`: not an
/// identity claim, and a caller can only shorten its own time with it). Returns how many
/// header names were removed.
pub fn strip_untrusted(headers: &mut HeaderMap) -> usize {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(PREFIX) && k.as_str() != X_DEADLINE_MS)
        .cloned()
        .collect();
    for name in &names {
        headers.remove(name);
    }
    names.len()
}
