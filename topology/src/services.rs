//! The demo services, and the main-listener layer every REST service shares: chaos first, then
//! the service, then the `x-service`/`x-instance` headers and the request counter.

mod catalog;
mod echo;
pub(crate) mod idp;
pub(crate) mod orders;
mod shop_api;
mod users;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::ServiceName;
use crate::http::{Handler, read_body};
use crate::respond::{Body, method_not_allowed, problem};
use crate::state::State;
use crate::{Result, ServeOptions};

/// The header naming the instance that answered, so balancing can be seen from outside.
pub(crate) const X_INSTANCE: &str = "x-instance";
/// The header naming the service that answered.
pub(crate) const X_SERVICE: &str = "x-service";

/// A REST service: answers a request whose body has been read. Chaos, metrics and the common
/// headers are added around it by [`Rest`].
pub(crate) trait RestApp: Send + Sync + 'static {
    fn handle(&self, req: &Request<Bytes>) -> Response<Body>;
}

/// The REST app of `name`, loading what it needs from `opts`; `None` for `orders` (gRPC).
pub(crate) fn rest_app(name: ServiceName, opts: &ServeOptions) -> Result<Option<Box<dyn RestApp>>> {
    Ok(Some(match name {
        ServiceName::Catalog => Box::new(catalog::Catalog {
            instance: opts.instance,
        }),
        ServiceName::Reviews => Box::new(shop_api::Reviews),
        ServiceName::Pricing => Box::new(shop_api::Pricing),
        ServiceName::Inventory => Box::new(shop_api::Inventory),
        ServiceName::Users => Box::new(users::Users),
        ServiceName::Echo => Box::new(echo::Echo),
        ServiceName::Idp => Box::new(idp::Idp::load(opts)?),
        ServiceName::Orders => return Ok(None),
    }))
}

/// The main listener of a REST service.
pub(crate) struct Rest {
    pub(crate) app: Box<dyn RestApp>,
    pub(crate) state: Arc<State>,
}

impl Handler for Rest {
    async fn call(&self, req: Request<Incoming>) -> Response<Body> {
        let state = &self.state;
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let mut resp = match read_body(req).await {
            Err(resp) => resp,
            Ok(req) => {
                if state.chaos.inject().await {
                    state.metrics.injected();
                    problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "chaos",
                        "Service unavailable",
                        "failed on purpose: chaos is on (POST /_chaos on the admin listener)",
                    )
                } else {
                    self.app.handle(&req)
                }
            }
        };
        let headers = resp.headers_mut();
        headers.insert(X_SERVICE, HeaderValue::from_static(state.service));
        headers.insert(X_INSTANCE, HeaderValue::from(state.instance));
        state.metrics.request(resp.status().as_u16());
        tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
        resp
    }
}

/// `Some(405)` unless the method is GET or HEAD.
pub(crate) fn only_get(req: &Request<Bytes>) -> Option<Response<Body>> {
    match *req.method() {
        Method::GET | Method::HEAD => None,
        _ => Some(method_not_allowed("GET, HEAD")),
    }
}

/// The single path segment after `prefix` (`/prices/1001` with `/prices/` → `1001`).
pub(crate) fn segment<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
}
