//! `echo`: answers any method and path with what it received, as JSON: the tool for seeing what
//! a backend sees behind the gateways.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Request, Response};
use serde_json::json;

use super::RestApp;
use crate::respond::{Body, ok};

/// The caller's SPIFFE ID, set by the sidecar's inbound proxy.
pub(crate) const X_PEER: &str = "x-gatehouse-peer";

pub(crate) struct Echo;

impl RestApp for Echo {
    /// `{"method", "path", "query", "headers": {lower-case name: [values]}, "body", "peer"}`;
    /// `query` is the raw query string (null when absent), `body` is the body as text (invalid
    /// UTF-8 replaced by U+FFFD), `peer` the `x-gatehouse-peer` header or null.
    fn handle(&self, req: &Request<Bytes>) -> Response<Body> {
        let mut headers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (name, value) in req.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers.entry(name.as_str()).or_default().push(value);
        }
        let peer = req
            .headers()
            .get(X_PEER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        ok(&json!({
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "query": req.uri().query(),
            "headers": headers,
            "body": String::from_utf8_lossy(req.body()),
            "peer": peer,
        }))
    }
}
