//! The admin listener of every demo service: `/healthz`, `/readyz`, `/metrics`, and `/_chaos`
//! (`GET` shows the settings, `POST` changes them).

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::http::{Handler, read_body};
use crate::respond::{Body, method_not_allowed, not_found, ok, problem, with_type};
use crate::state::State;

/// Answers the admin endpoints of one service.
pub(crate) struct Admin {
    pub(crate) state: Arc<State>,
}

impl Handler for Admin {
    async fn call(&self, req: Request<Incoming>) -> Response<Body> {
        let state = &self.state;
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/healthz") => ok(&json!({"status": "ok"})),
            // Ready as soon as it answers: listeners are bound and keys loaded before serving.
            (&Method::GET, "/readyz") => ok(&json!({
                "status": "ready",
                "service": state.service,
                "instance": state.instance,
            })),
            (&Method::GET, "/metrics") => with_type(
                StatusCode::OK,
                crate::metrics::CONTENT_TYPE,
                state.metrics.render(state.chaos.settings()).into_bytes(),
            ),
            (&Method::GET, "/_chaos") => ok(&state.chaos.settings()),
            (&Method::POST, "/_chaos") => {
                let req = match read_body(req).await {
                    Ok(req) => req,
                    Err(resp) => return resp,
                };
                match state.chaos.update_json(req.body()) {
                    Ok(settings) => {
                        tracing::info!(
                            error_rate = settings.error_rate,
                            latency_ms = settings.latency_ms,
                            "chaos settings changed"
                        );
                        ok(&settings)
                    }
                    Err(e) => problem(
                        StatusCode::BAD_REQUEST,
                        "bad-chaos",
                        "Invalid chaos settings",
                        &e.to_string(),
                    ),
                }
            }
            (_, "/healthz" | "/readyz" | "/metrics") => method_not_allowed("GET"),
            (_, "/_chaos") => method_not_allowed("GET, POST"),
            (_, path) => not_found(&format!("no admin endpoint {path}")),
        }
    }
}
