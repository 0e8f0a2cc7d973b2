//! The admin server: `/healthz`, `/readyz`, `/metrics`, `/config` and `/routes`, on its own
//! listener (loopback by default) so operators and orchestrators never share the data port.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::body::{ProxyBody, full};
use crate::proxy::Shared;

/// Readiness of a binary: ready once config, certificates and keys are loaded and listeners are
/// bound; not ready again while draining.
#[derive(Debug, Default)]
pub struct Readiness {
    ready: AtomicBool,
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Starts the admin server on `listener` until `stop` is cancelled.
pub fn spawn(
    listener: TcpListener,
    binary: &'static str,
    shared: Arc<Shared>,
    readiness: Arc<Readiness>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                _ = stop.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        continue;
                    }
                },
            };
            let shared = shared.clone();
            let readiness = readiness.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let res = answer(binary, &shared, &readiness, &req);
                    async move { Ok::<_, Infallible>(res) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
}

fn answer(
    binary: &'static str,
    shared: &Shared,
    readiness: &Readiness,
    req: &Request<Incoming>,
) -> Response<ProxyBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if readiness.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/metrics" => {
            let mut res = Response::new(full(shared.metrics.render()));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
        "/config" => {
            let plan = shared.plan.load();
            let mut v = serde_json::to_value(&plan.settings).unwrap_or(Value::Null);
            redact(&mut v);
            json_response(&json!({ "binary": binary, "config": v }))
        }
        "/routes" => {
            let plan = shared.plan.load();
            let routes: Vec<Value> = plan
                .settings
                .routes
                .iter()
                .map(|r| {
                    json!({
                        "name": r.name,
                        "match": r.matches,
                        "action": "proxy",
                        "service": r.service,
                    })
                })
                .collect();
            json_response(&Value::Array(routes))
        }
        "/upstreams" => {
            let plan = shared.plan.load();
            let table: serde_json::Map<String, Value> = plan
                .services
                .iter()
                .map(|(name, up)| (name.clone(), up.admin_json()))
                .collect();
            json_response(&Value::Object(table))
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Field names whose values never leave the process, whatever their type.
const SECRET_KEYS: [&str; 5] = ["secret", "password", "token", "api_key", "private"];

/// Replaces values of secret-looking fields with `"<redacted>"`.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                let k = k.to_ascii_lowercase();
                if SECRET_KEYS.iter().any(|s| k.contains(s)) {
                    *val = Value::String("<redacted>".into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn json_response(v: &Value) -> Response<ProxyBody> {
    let mut res = Response::new(full(serde_json::to_vec_pretty(v).unwrap_or_default()));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    res
}
