//! A binary's own request phases (the edge's authentication, rate limits and validation; the
//! sidecar's peer policy), so the proxy core stays shared. A binary's [`crate::tier::Tier`]
//! builds its [`Filter`] with each plan.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;

use crate::body::ProxyBody;
use crate::ctx::RequestCtx;

/// A request's own body limit, left in `ctx.extensions` by [`Filter::on_request`]: it
/// replaces `limits.max_request_body_bytes` for this request (a route that takes uploads, or
/// one that takes none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub u64);

/// A check of the whole request body, left in `ctx.extensions` by [`Filter::on_request`]
/// (e.g. the edge's JSON Schema validation). Only then does the proxy read the body before
/// forwarding it (up to the body limit, so memory stays bounded); every other request streams.
#[derive(Debug, Clone)]
pub struct BodyCheck(pub Arc<dyn CheckBody>);

/// See [`BodyCheck`].
pub trait CheckBody: Send + Sync + Debug + 'static {
    /// `Err` answers the client with that response instead of forwarding the request (the
    /// same shape as [`FilterFuture`]; refusals are the cold path).
    #[allow(clippy::result_large_err)]
    fn check(
        &self,
        ctx: &RequestCtx,
        parts: &http::request::Parts,
        body: &Bytes,
    ) -> Result<(), Response<ProxyBody>>;
}

/// What a request phase returns: continue, or answer the client now with this response.
pub type FilterFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), Response<ProxyBody>>> + Send + 'a>>;

/// A binary's own request phases.
pub trait Filter: Send + Sync + Debug + 'static {
    /// Runs after the header/body limits and before routing: may rewrite the request (path
    /// normalization, header sanitizing, identity headers) or answer it (401, 403, 429...).
    /// State for [`Filter::on_response`] goes into `ctx.extensions`.
    fn on_request<'a>(
        &'a self,
        ctx: &'a mut RequestCtx,
        parts: &'a mut http::request::Parts,
    ) -> FilterFuture<'a>;

    /// Runs once the request passed [`Filter::on_request`] and the body limit, before routing:
    /// may replace the body (and change the head to match) to translate a wire protocol, e.g.
    /// the edge's gRPC-Web bridge decoding `-text` bodies. Routing, handlers and the upstream
    /// see the result; the body limit still counts the client's own bytes. Default: unchanged.
    fn request_body(
        &self,
        _ctx: &mut RequestCtx,
        _parts: &mut http::request::Parts,
        body: ProxyBody,
    ) -> ProxyBody {
        body
    }

    /// Runs on every answer, the proxy's own included, before [`Filter::on_response`]: may
    /// replace the body (and change the head to match), e.g. the edge's gRPC-Web bridge turning
    /// the upstream's trailers into a last frame. Default: unchanged.
    fn response_body(
        &self,
        _ctx: &RequestCtx,
        _res: &mut http::response::Parts,
        body: ProxyBody,
    ) -> ProxyBody {
        body
    }

    /// Runs on every response head, the proxy's own answers included (e.g. to add
    /// `RateLimit` or security headers).
    fn on_response(&self, _ctx: &RequestCtx, _res: &mut http::response::Parts) {}

    /// Whether clients are outside the trust boundary: upstream failures are then answered
    /// without internal details (service names, addresses, causes); the log keeps them.
    fn public_errors(&self) -> bool {
        false
    }

    /// Whether the filter has what it needs to serve (e.g. JWKS fetched); `/readyz` waits.
    fn is_ready(&self) -> bool {
        true
    }
}
