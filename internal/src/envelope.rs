//! The `envelope` route handler: fetches one JSON resource from a service, as a child request
//! of the client's, and answers it wrapped under a key: `{"<key>": <the service's JSON>}`.
//!
//! The smallest orchestration handler, and the worked example of the handler seam
//! (docs/architecture.md): arguments validated at load, the path template compiled once per
//! route, the call made through the forward step (balancing, breakers, retries, deadline,
//! trace and identity of the parent), the body read up to a limit.
//!
//! ```yaml
//! routes:
//!   - name: user
//!     match: { path_template: /api/users/{id}, methods: [GET] }
//!     handler:
//!       envelope: { service: users, path: "/users/{id}", key: user }
//! ```
//!
//! A 2xx JSON answer → 200 `{"user": …}`. A non-2xx answer is relayed as the service gave it
//! (status, content type and body). A 2xx answer that is not JSON, or larger than
//! `internal.max_handler_body_bytes` → 502 problem+json (`bad-upstream-response`).

use std::sync::Arc;

use bytes::Bytes;
use gatehouse_common::config::ConfigError;
use gatehouse_common::error::ProxyError;
use gatehouse_common::forward::ForwardRequest;
use gatehouse_common::handler::{HandlerBuild, HandlerKind, HandlerRequest, HandlerService};
use gatehouse_common::routing::ValueTemplate;
use gatehouse_common::upstream::service::Upstream;
use http::header;
use http::{Method, Request, Response};
use serde::Deserialize;

use crate::fetch::{encode_segment, is_json, json_response, read_limited};

/// The `envelope` kind.
#[derive(Debug)]
pub struct Envelope {
    /// `internal.max_handler_body_bytes`.
    pub max_body_bytes: u64,
}

/// A route's `handler.envelope` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The service to call (a name under `services`).
    service: String,
    /// The path to request, with the route's captures (`/users/{id}`).
    path: String,
    /// The key the service's JSON is put under.
    key: String,
}

impl HandlerKind for Envelope {
    fn name(&self) -> &'static str {
        "envelope"
    }

    fn build(&self, cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError> {
        let args: Args = cx.args()?;
        if !args.path.starts_with('/') {
            return Err(cx.error("path", "must start with `/`"));
        }
        if args.key.is_empty() {
            return Err(cx.error("key", "must not be empty"));
        }
        let route = Arc::new(Route {
            service: cx.service("service", &args.service)?,
            path: cx.template("path", &args.path)?,
            // The key as a JSON string, encoded once.
            key: serde_json::to_string(&args.key).unwrap_or_default(),
            max_body_bytes: self.max_body_bytes,
        });
        let service = tower::service_fn(move |req: HandlerRequest| {
            let route = route.clone();
            async move { route.serve(req).await }
        });
        Ok(HandlerService::new(service))
    }
}

/// One route's compiled envelope.
#[derive(Debug)]
struct Route {
    service: Arc<Upstream>,
    path: ValueTemplate,
    key: String,
    max_body_bytes: u64,
}

impl Route {
    async fn serve(
        &self,
        req: HandlerRequest,
    ) -> Result<Response<gatehouse_common::body::ProxyBody>, ProxyError> {
        // Values from the request become one path segment each, percent-encoded: a capture of
        // `..` or `a?b#c` must not change which resource the service is asked for.
        let captures: Vec<Option<String>> = req
            .captures
            .iter()
            .map(|c| c.as_deref().map(encode_segment))
            .collect();
        let subject = req.vars().subject.map(encode_segment);
        let mut vars = req.vars();
        vars.captures = &captures;
        vars.subject = subject.as_deref();
        let path = self.path.render(&vars);
        let child = Request::builder()
            .method(Method::GET)
            .uri(&path)
            .header(header::ACCEPT, "application/json")
            .body(gatehouse_common::body::empty())
            .map_err(|e| ProxyError::BadRequest {
                reason: format!("the envelope path is not a valid URI: {e}"),
            })?;
        let res = req
            .forward
            .send(ForwardRequest::new(self.service.clone(), child, "envelope"))
            .await?;
        if !res.status().is_success() {
            // The service's own answer (404, 409, 503...) is what the client needs.
            return Ok(res);
        }
        let (head, body) = res.into_parts();
        let bad = |reason: String| ProxyError::BadUpstreamResponse {
            service: self.service.name.to_string(),
            reason,
        };
        if !is_json(head.headers.get(header::CONTENT_TYPE)) {
            return Err(bad("the answer is not JSON".into()));
        }
        let data = match read_limited(body, self.max_body_bytes).await {
            Ok(Some(data)) => data,
            Ok(None) => {
                return Err(bad(format!(
                    "the answer exceeds {} bytes",
                    self.max_body_bytes
                )));
            }
            Err(e) => return Err(bad(format!("the answer could not be read: {e}"))),
        };
        if serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_err() {
            return Err(bad("the answer is not valid JSON".into()));
        }
        Ok(json_response(wrap(&self.key, &data)))
    }
}

/// `{<key>: <json>}`, without re-encoding the service's JSON.
fn wrap(key: &str, json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(key.len() + json.len() + 3);
    out.push(b'{');
    out.extend_from_slice(key.as_bytes());
    out.push(b':');
    out.extend_from_slice(json);
    out.push(b'}');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_without_reencoding() {
        let key = serde_json::to_string("user").expect("key");
        let out = wrap(&key, br#"{"id": 7, "name": "Ada"}"#);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["user"]["id"], 7);
        assert_eq!(v["user"]["name"], "Ada");
    }
}
