//! Named backends for routing tests: each answers every path with its name (body,
//! `x-backend` and `x-gatehouse-backend`) and echoes what it saw (`x-seen-uri`, `x-seen-host`, and each `x-*` request
//! header as `x-echo-<name>`), so a test reads which backend answered and what it got.

use gatehouse_common::body::{ProxyBody, empty, full};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};

use crate::{Backend, BackendHandle, Client, collect};

/// A backend answering everything with `name`.
pub async fn named(name: &'static str) -> BackendHandle {
    Backend::new()
        .handle("/", move |seen| async move {
            let mut res = Response::new(full(name));
            let h = res.headers_mut();
            h.insert("x-backend", HeaderValue::from_static(name));
            h.insert("x-gatehouse-backend", HeaderValue::from_static(name));
            if let Ok(v) = HeaderValue::try_from(seen.uri.as_str()) {
                h.insert("x-seen-uri", v);
            }
            if let Some(host) = seen.headers.get("host") {
                h.insert("x-seen-host", host.clone());
            }
            for (k, v) in &seen.headers {
                if k.as_str().starts_with("x-")
                    && let Ok(name) = http::HeaderName::try_from(format!("x-echo-{k}"))
                {
                    h.append(name, v.clone());
                }
            }
            res
        })
        .run()
        .await
}

/// One request: method, URL, headers; the whole answer.
pub async fn send(
    client: &Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<ProxyBody>,
) -> (StatusCode, HeaderMap, bytes::Bytes) {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body.unwrap_or_else(empty)).expect("request");
    collect(client.send(req).await).await
}

/// The value of header `name`, or `""`.
pub fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The `p`-th percentile (0..=100) of `samples` (sorted here).
pub fn percentile(samples: &mut [std::time::Duration], p: usize) -> std::time::Duration {
    samples.sort();
    let i = (samples.len() * p / 100).min(samples.len().saturating_sub(1));
    samples[i]
}
