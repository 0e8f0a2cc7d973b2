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
    /// Config loaded, certificates loaded, listeners bound, not draining.
    serving: AtomicBool,
    /// Every service has endpoints (or the check is off).
    services: AtomicBool,
    /// The configured HTTP check answers 2xx (or there is none).
    app: AtomicBool,
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.serving.store(ready, Ordering::Release);
    }

    pub fn set_services(&self, ready: bool) {
        self.services.store(ready, Ordering::Release);
    }

    pub fn set_app(&self, ready: bool) {
        self.app.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.missing().is_none()
    }

    /// What readiness still waits for, if anything.
    pub fn missing(&self) -> Option<&'static str> {
        if !self.serving.load(Ordering::Acquire) {
            Some("not serving (starting or draining)")
        } else if !self.services.load(Ordering::Acquire) {
            Some("waiting for service endpoints (discovery)")
        } else if !self.app.load(Ordering::Acquire) {
            Some("waiting for readiness.http_check to answer 2xx")
        } else {
            None
        }
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
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
        );
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match readiness.missing() {
            None => text(StatusCode::OK, "ready\n".into()),
            Some(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n").into(),
            ),
        },
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
            // The binary's own section, as its tier serialized it.
            if let (Some((key, section)), Value::Object(map)) = (&plan.tier.section, &mut v) {
                map.insert((*key).to_owned(), section.clone());
            }
            redact(&mut v);
            json_response(&json!({ "binary": binary, "config": v }))
        }
        "/routes" => {
            // Most specific first: the order in which routes are considered.
            let plan = shared.plan.load();
            let routes: Vec<Value> = plan.routes_ranked().map(route_json).collect();
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
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// One route for `/routes`: `{name, match, action, service}`; `action` is `proxy`, `split`,
/// `redirect`, `direct_response` or a handler's kind (then `handler` gives its arguments,
/// redacted); `service` is the service, the split's services (with `split` giving the
/// weights) or null; `mirror` when set.
fn route_json(r: &crate::routing::Route) -> Value {
    use crate::routing::Action;
    let mut v = json!({
        "name": &*r.name,
        "match": r.settings.matches,
        "action": r.action.kind(),
    });
    v["service"] = match &r.action {
        Action::Proxy(s) => json!(&*s.name),
        Action::Split(split) => {
            v["split"] = split
                .targets()
                .map(|(s, w)| json!({ "service": &*s.name, "weight": w }))
                .collect();
            split.targets().map(|(s, _)| json!(&*s.name)).collect()
        }
        Action::Redirect(_) | Action::DirectResponse(_) | Action::Handler { .. } => Value::Null,
    };
    if let Some(h) = &r.settings.handler {
        let mut args = serde_json::to_value(h).unwrap_or(Value::Null);
        redact(&mut args);
        v["handler"] = args;
    }
    if let Some(m) = &r.mirror {
        v["mirror"] = json!({ "service": &*m.service.name, "percent": m.percent });
    }
    v
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

fn text(status: StatusCode, body: std::borrow::Cow<'static, str>) -> Response<ProxyBody> {
    let mut res = Response::new(full(body.into_owned()));
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
