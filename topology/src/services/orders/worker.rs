//! The asynchronous side of `orders`: takes the order requests the internal gateway published
//! (`POST /api/async/orders`) from JetStream, places each as `CreateOrder` does, writes the
//! job's state and publishes `order.completed` or `order.failed` (docs/events.md, "The
//! worker's side").
//!
//! Exactly once from the client's point of view, whatever is killed when: a durable consumer
//! with explicit acks redelivers what was not acknowledged; the order id comes from the job id
//! (placing it again gives the same order); the event's `Nats-Msg-Id` is per job (the stream
//! drops a second copy); a job whose state is already final is acknowledged and skipped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull, kv};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::metadata::{MetadataMap, MetadataValue};

use super::Book;
use crate::proto::Order;

/// The stream the gateway publishes order requests to, and the subject.
pub(crate) const REQUESTS_STREAM: &str = "ORDER_REQUESTS";
/// The key-value bucket of job states.
pub(crate) const JOBS_BUCKET: &str = "JOBS";
/// The durable consumer's name: every `orders` instance shares it (work is spread).
const CONSUMER: &str = "orders-worker";
/// A message not acknowledged within this is delivered again.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// How `orders` reaches the broker (`--nats`, `--nats-ca`, `--nats-user`, `GH_NATS_PASSWORD`).
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    pub url: String,
    pub ca: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// What a request message carries.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    product_id: String,
    quantity: u32,
}

/// Runs the worker until `stop`.
pub(crate) async fn run(opts: BrokerOptions, book: Arc<Book>, stop: CancellationToken) {
    let js = match connect(&opts).await {
        Ok(js) => js,
        Err(e) => {
            tracing::error!(error = %e, "async orders: cannot start the broker client");
            return;
        }
    };
    // The gateway creates the stream and the bucket; wait for them.
    let (consumer, jobs) = loop {
        match open(&js).await {
            Ok(found) => break found,
            Err(e) => tracing::info!(error = %e, "async orders: waiting for the stream and bucket"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    };
    tracing::info!("async orders: consuming {REQUESTS_STREAM}");
    loop {
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "async orders: cannot pull; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => handle(&js, &jobs, &book, message).await,
                Some(Err(e)) => tracing::warn!(error = %e, "async orders: pull failed"),
                None => break,
            }
        }
    }
}

async fn connect(opts: &BrokerOptions) -> Result<jetstream::Context, String> {
    let mut options = async_nats::ConnectOptions::new()
        .name("orders")
        .retry_on_initial_connect()
        .reconnect_delay_callback(|n| Duration::from_millis(100 * (1 << n.min(4))));
    if let Some(user) = &opts.user {
        options =
            options.user_and_password(user.clone(), opts.password.clone().unwrap_or_default());
    }
    if let Some(ca) = &opts.ca {
        let tls =
            gatehouse_common::tls::client_config(Some(ca), None).map_err(|e| e.to_string())?;
        options = options.require_tls(true).tls_client_config(tls);
    }
    let client = options
        .connect(opts.url.as_str())
        .await
        .map_err(|e| e.to_string())?;
    Ok(jetstream::new(client))
}

async fn open(
    js: &jetstream::Context,
) -> Result<(jetstream::consumer::PullConsumer, kv::Store), String> {
    let stream = js
        .get_stream(REQUESTS_STREAM)
        .await
        .map_err(|e| e.to_string())?;
    let consumer = stream
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_deliver: -1,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let jobs = js
        .get_key_value(JOBS_BUCKET)
        .await
        .map_err(|e| e.to_string())?;
    Ok((consumer, jobs))
}

/// One request: skipped when its job is final, else placed, recorded, announced, acknowledged.
/// Anything that fails on the way leaves it unacknowledged (or NAK'd) for redelivery.
async fn handle(
    js: &jetstream::Context,
    jobs: &kv::Store,
    book: &Book,
    message: jetstream::Message,
) {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    let Some(job_id) = header("Gatehouse-Job-Id").filter(|j| j.len() == 32) else {
        tracing::warn!(subject = %message.subject, "async orders: a message without a job id; dropped");
        let _ = message.ack_with(AckKind::Term).await;
        return;
    };
    let owner = header("x-gatehouse-subject").unwrap_or_default();
    match jobs.get(&job_id).await {
        Ok(Some(state)) if is_final(&state) => {
            let _ = message.double_ack().await;
            return;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(%job_id, error = %e, "async orders: cannot read the job; later");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
            return;
        }
    }
    let mut meta = MetadataMap::new();
    for name in [
        "x-request-id",
        "traceparent",
        "tracestate",
        "x-gatehouse-subject",
    ] {
        if let Some(v) = header(name).and_then(|v| MetadataValue::try_from(v.as_str()).ok()) {
            meta.insert(name, v);
        }
    }
    let placed = match serde_json::from_slice::<Request>(&message.payload) {
        Ok(req) => {
            // From the job id: placing the job again (after a crash) makes the same order.
            let order_id = format!("ord-{}", &job_id[..12]);
            book.place(
                &owner,
                &req.product_id,
                req.quantity,
                &meta,
                Some(&order_id),
            )
            .await
        }
        Err(e) => Err(tonic::Status::invalid_argument(format!(
            "the body must be {{\"productId\": string, \"quantity\": number}}: {e}"
        ))),
    };
    let (state, event, payload) = match placed {
        Ok(order) => {
            let order = order_json(&order);
            (
                json!({"job_id": job_id, "status": "completed", "owner": owner, "result": order, "error": null}),
                "order.completed",
                json!({"job_id": job_id, "order": order}),
            )
        }
        Err(status) if transient(status.code()) => {
            tracing::warn!(%job_id, error = %status.message(), "async orders: not now; redelivery in 1s");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
            return;
        }
        Err(status) => {
            let error = json!({"code": code_name(status.code()), "message": status.message()});
            (
                json!({"job_id": job_id, "status": "failed", "owner": owner, "result": null, "error": error}),
                "order.failed",
                json!({"job_id": job_id, "error": error}),
            )
        }
    };
    // The event first, then the state: a crash between them redelivers the request, the event
    // is dropped as a duplicate and the state written.
    let subject = if event == "order.completed" {
        "orders.events.completed"
    } else {
        "orders.events.failed"
    };
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", format!("{event}-{job_id}").as_str());
    h.insert("Gatehouse-Event", event);
    h.insert("Gatehouse-Job-Id", job_id.as_str());
    h.insert("x-gatehouse-subject", owner.as_str());
    for name in ["traceparent", "x-request-id"] {
        if let Some(v) = header(name) {
            h.insert(name, v.as_str());
        }
    }
    let announced = async {
        js.publish_with_headers(subject, h, Bytes::from(payload.to_string()))
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        jobs.put(&job_id, Bytes::from(state.to_string()))
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(5), announced).await {
        Ok(Ok(_)) => {
            // The request's id and trace, so this line joins the client's request in the logs.
            let request_id = header("x-request-id").unwrap_or_default();
            let traceparent = header("traceparent").unwrap_or_default();
            tracing::info!(%job_id, event, %request_id, %traceparent, "async orders: job done");
            let _ = message.double_ack().await;
        }
        Ok(Err(e)) => {
            tracing::warn!(%job_id, error = %e, "async orders: not recorded; redelivery");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
        }
        Err(_) => {
            tracing::warn!(%job_id, "async orders: broker too slow; redelivery");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
        }
    }
}

/// Whether a stored job state is `completed` or `failed`.
fn is_final(state: &[u8]) -> bool {
    serde_json::from_slice::<Value>(state)
        .ok()
        .and_then(|v| {
            v["status"]
                .as_str()
                .map(|s| s == "completed" || s == "failed")
        })
        .unwrap_or(false)
}

/// Errors worth another try: the services (or the sidecar) were unreachable or too slow.
fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Internal
            | Code::Unknown
    )
}

/// A gRPC code's canonical name (`NOT_FOUND`), as `google.rpc.Code` spells it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An order as the proto3 JSON mapping writes it (what `GET /api/v1/orders/{id}` answers).
pub(crate) fn order_json(o: &Order) -> Value {
    json!({
        "orderId": o.order_id,
        "productId": o.product_id,
        "quantity": o.quantity,
        "customer": o.customer,
        "unitPriceCents": o.unit_price_cents.to_string(),
        "status": o.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_are_skipped() {
        assert!(is_final(br#"{"status":"completed"}"#));
        assert!(is_final(br#"{"status":"failed"}"#));
        assert!(!is_final(br#"{"status":"accepted"}"#));
        assert!(!is_final(b"garbage"));
    }
}
