//! The `proxy` route handler: proxies to one service like a plain route, and adds what a plain
//! route cannot — shaping the JSON answer (API versions, BFF fields), the response cache, and
//! XML for clients that ask for it.
//!
//! ```yaml
//! routes:
//!   - name: product-v1
//!     match: { path_template: /api/v1/products/{id}, methods: [GET, HEAD] }
//!     handler:
//!       proxy:
//!         service: catalog
//!         path: "/products/{id}"
//!         shape: { rename: { name: title }, keep: [id, title, category] }
//!         cache: {}
//! ```
//!
//! The client's method, headers, query and body go to the service (the body streams unless an
//! XML body must become JSON). A 2xx JSON answer is shaped (read up to
//! `internal.max_handler_body_bytes`, larger → 502); anything else is relayed as the service
//! gave it. Without `shape`, `cache` or `xml` the answer streams through untouched.

use std::sync::Arc;

use bytes::Bytes;
use gatehouse_common::body::ProxyBody;
use gatehouse_common::config::ConfigError;
use gatehouse_common::error::ProxyError;
use gatehouse_common::forward::{Forward, ForwardRequest};
use gatehouse_common::handler::{HandlerBuild, HandlerKind, HandlerRequest, HandlerService};
use gatehouse_common::headers::strip_hop_by_hop;
use gatehouse_common::routing::Vars;
use gatehouse_common::upstream::service::Upstream;
use http::header::{self, HeaderValue};
use http::{Request, Response, request};
use serde::Deserialize;

use crate::aggregate::template::PartTemplate;
use crate::answer::Answer;
use crate::cache::{CacheSettings, Store};
use crate::fetch::rewrite_json;
use crate::shape::{Shape, ShapeSettings};
use crate::xml::XmlSettings;

/// The `proxy` kind.
#[derive(Debug)]
pub struct Proxy {
    /// `internal.max_handler_body_bytes`: the most read of an answer to shape.
    pub max_body_bytes: u64,
    /// The response cache every route shares.
    pub store: Arc<Store>,
}

/// A route's `handler.proxy` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The service to call (a name under `services`).
    service: String,
    /// The path at the service, with the route's captures (`/products/{id}`); the client's
    /// query is appended. Default: the client's path as it is.
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    shape: Option<ShapeSettings>,
    #[serde(default)]
    cache: Option<CacheSettings>,
    #[serde(default)]
    xml: Option<XmlSettings>,
}

impl HandlerKind for Proxy {
    fn name(&self) -> &'static str {
        "proxy"
    }

    fn build(&self, cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError> {
        let args: Args = cx.args()?;
        let path = match &args.path {
            Some(p) if !p.starts_with('/') => return Err(cx.error("path", "must start with `/`")),
            Some(p) if p.contains('?') => {
                return Err(cx.error(
                    "path",
                    "a path only: the client's query is passed on as it is",
                ));
            }
            Some(p) => {
                Some(PartTemplate::parse(p, cx.captures, &[]).map_err(|m| cx.error("path", m))?)
            }
            None => None,
        };
        let shape = build_shape(cx, "shape", args.shape.as_ref())?;
        let answer = Answer::build(
            cx,
            args.cache.as_ref(),
            args.xml.as_ref(),
            &self.store,
            self.max_body_bytes,
        )?;
        let route = Arc::new(Route {
            service: cx.service("service", &args.service)?,
            path,
            shape,
            answer,
            max_body: self.max_body_bytes,
        });
        let service = tower::service_fn(move |req: HandlerRequest| {
            let route = route.clone();
            async move { route.serve(req).await }
        });
        Ok(HandlerService::new(service))
    }
}

/// A `shape` argument at `key`, compiled; `None` when absent or empty.
pub(crate) fn build_shape(
    cx: &HandlerBuild<'_>,
    key: &str,
    settings: Option<&ShapeSettings>,
) -> Result<Option<Shape>, ConfigError> {
    let Some(settings) = settings.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    Shape::build(settings)
        .map(Some)
        .map_err(|e| cx.error(&format!("{key}.{}", e.key), e.message))
}

/// One route's compiled proxy.
#[derive(Debug)]
struct Route {
    service: Arc<Upstream>,
    path: Option<PartTemplate>,
    shape: Option<Shape>,
    answer: Answer,
    max_body: u64,
}

impl Route {
    async fn serve(&self, req: HandlerRequest) -> Result<Response<ProxyBody>, ProxyError> {
        let HandlerRequest {
            mut parts,
            body,
            captures,
            route,
            host,
            forward,
        } = req;
        let format = self.answer.format(&parts)?;
        let body = self.answer.request_body(&mut parts, body).await?;
        let uri = self.uri(&parts, &captures, &route, host.as_deref(), &forward)?;
        let child = self.child(&parts, uri, body)?;
        let produce = || self.call(child, &forward);
        self.answer
            .serve(&parts, host.as_deref(), &forward, format, produce)
            .await
    }

    /// The path and query at the service.
    fn uri(
        &self,
        parts: &request::Parts,
        captures: &[Option<String>],
        route: &str,
        host: Option<&str>,
        forward: &Forward,
    ) -> Result<String, ProxyError> {
        let Some(t) = &self.path else {
            return Ok(parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()));
        };
        let subject = parts
            .headers
            .get(gatehouse_common::identity::X_SUBJECT)
            .and_then(|v| v.to_str().ok());
        let vars = Vars {
            captures,
            request_id: forward.request_id(),
            subject,
            route,
            host,
            path: parts.uri.path(),
        };
        // No part answers here: the template has only captures and built-ins.
        let mut uri = t.render(&vars, &[]).map_err(|_| ProxyError::BadRequest {
            reason: "the route's path template could not be filled".into(),
        })?;
        if let Some(q) = parts.uri.query() {
            uri.push('?');
            uri.push_str(q);
        }
        Ok(uri)
    }

    /// The request to the service: the client's, minus hop-by-hop headers; asking for
    /// uncompressed JSON when this route must read the answer.
    fn child(
        &self,
        parts: &request::Parts,
        uri: String,
        body: ProxyBody,
    ) -> Result<Request<ProxyBody>, ProxyError> {
        let mut child = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(body)
            .map_err(|e| ProxyError::BadRequest {
                reason: format!("the path at the service is not a valid URI: {e}"),
            })?;
        let h = child.headers_mut();
        *h = parts.headers.clone();
        strip_hop_by_hop(h, true);
        if self.shape.is_some() || self.answer.renders_xml() {
            h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
            h.remove(header::ACCEPT_ENCODING);
        }
        Ok(child)
    }

    /// Sends the child and shapes a 2xx JSON answer.
    async fn call(
        &self,
        child: Request<ProxyBody>,
        forward: &Forward,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let res = forward
            .send(ForwardRequest::new(self.service.clone(), child, "proxy"))
            .await?;
        let Some(shape) = &self.shape else {
            return Ok(res);
        };
        rewrite_json(res, self.max_body, &self.service.name, None, |value| {
            Bytes::from(shape.apply(value).to_string())
        })
        .await
    }
}
