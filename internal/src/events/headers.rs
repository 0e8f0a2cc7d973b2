//! What a published request carries in its NATS headers: the job id (also `Nats-Msg-Id`, so
//! the stream drops a repeat), the caller's identity headers, the request id and the trace
//! context of a new span, so the worker's logs and spans join the request's.

use async_nats::HeaderMap as NatsHeaders;
use gatehouse_common::forward::Forward;
use gatehouse_common::trace_context::X_REQUEST_ID;
use http::HeaderValue;
use http::header::{CONTENT_TYPE, HeaderName};

/// The job a message is (the same as `Nats-Msg-Id`).
pub const JOB_ID: &str = "Gatehouse-Job-Id";
/// The route that published it.
pub const ROUTE: &str = "Gatehouse-Route";
/// The type of an event a worker publishes (`order.completed`), shown as SSE `event:`.
pub const EVENT_TYPE: &str = "Gatehouse-Event";
/// JetStream's de-duplication id.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// The headers of the message for one request.
pub fn message_headers(
    request: &http::HeaderMap,
    forward: &Forward,
    job_id: &str,
    route: &str,
) -> NatsHeaders {
    let (traceparent, tracestate) = forward.child_trace();
    build(Parts {
        content_type: request.get(CONTENT_TYPE),
        request_id: forward.request_id(),
        traceparent: &traceparent,
        tracestate: tracestate.as_ref(),
        identity: forward.identity(),
        job_id,
        route,
    })
}

/// Everything [`message_headers`] reads, apart (for tests).
pub struct Parts<'a> {
    pub content_type: Option<&'a HeaderValue>,
    pub request_id: &'a str,
    pub traceparent: &'a HeaderValue,
    pub tracestate: Option<&'a HeaderValue>,
    pub identity: &'a [(HeaderName, HeaderValue)],
    pub job_id: &'a str,
    pub route: &'a str,
}

pub fn build(p: Parts<'_>) -> NatsHeaders {
    let mut h = NatsHeaders::new();
    h.insert(MSG_ID, p.job_id);
    h.insert(JOB_ID, p.job_id);
    h.insert(ROUTE, p.route);
    h.insert(X_REQUEST_ID.as_str(), p.request_id);
    let text = |v: &HeaderValue| v.to_str().ok().map(str::to_owned);
    if let Some(tp) = text(p.traceparent) {
        h.insert("traceparent", tp);
    }
    if let Some(ts) = p.tracestate.and_then(text) {
        h.insert("tracestate", ts);
    }
    if let Some(ct) = p.content_type.and_then(text) {
        h.insert(CONTENT_TYPE.as_str(), ct);
    }
    for (name, value) in p.identity {
        if let Some(v) = text(value) {
            h.append(name.as_str(), v);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_job_identity_and_trace() {
        let identity = [
            (
                HeaderName::from_static("x-gatehouse-subject"),
                HeaderValue::from_static("alice"),
            ),
            (
                HeaderName::from_static("x-gatehouse-scopes"),
                HeaderValue::from_static("orders:write"),
            ),
        ];
        let tp =
            HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        let ct = HeaderValue::from_static("application/json");
        let h = build(Parts {
            content_type: Some(&ct),
            request_id: "req-1",
            traceparent: &tp,
            tracestate: None,
            identity: &identity,
            job_id: "0123",
            route: "async-orders",
        });
        let get = |name: &str| h.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(get("Nats-Msg-Id").as_deref(), Some("0123"));
        assert_eq!(get("Gatehouse-Job-Id").as_deref(), Some("0123"));
        assert_eq!(get("Gatehouse-Route").as_deref(), Some("async-orders"));
        assert_eq!(get("x-request-id").as_deref(), Some("req-1"));
        assert_eq!(get("traceparent").as_deref(), tp.to_str().ok());
        assert_eq!(get("content-type").as_deref(), Some("application/json"));
        assert_eq!(get("x-gatehouse-subject").as_deref(), Some("alice"));
        assert_eq!(get("x-gatehouse-scopes").as_deref(), Some("orders:write"));
        assert_eq!(get("tracestate"), None);
    }
}
