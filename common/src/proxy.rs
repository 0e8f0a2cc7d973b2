//! The proxy core: one request from arrival to the upstream and back, streaming both ways.
//!
//! The phases run in the order documented in [`crate::stack`]; each answers with a response
//! (never an error) so the client always hears why its request ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use http::header::{self, HeaderValue};
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tracing::Instrument;

use crate::body::{BODY_ENDED, LimitedBody, ObservedBody, OnEnd, ProxyBody};
use crate::conn::ConnInfo;
use crate::ctx::RequestCtx;
use crate::error::{ErrorSource, ProxyError};
use crate::filter::{BodyCheck, BodyLimit};
use crate::forward::Forward;
use crate::handler::{FailedParts, HandlerRequest};
use crate::headers::{self, Forwarded};
use crate::identity;
use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::respond;
use crate::routing::{Action, Matched, RequestUrl, Route, RouteRequest, Vars};
use crate::trace_context::{TraceContext, X_REQUEST_ID, request_id};
use crate::upstream::call::client_body_error;

/// What every request of a binary shares: the current plan and the metrics.
#[derive(Debug)]
pub struct Shared {
    pub plan: ArcSwap<Plan>,
    pub metrics: Arc<Metrics>,
}

/// The response body type of the proxy: streams the upstream body and logs when it ends.
pub type ResponseBody = ObservedBody<Finish>;

/// Handles one request end to end.
///
/// Generic over the request body so every listener (HTTP/1.1 and HTTP/2 from hyper, HTTP/3 from
/// h3) feeds the same pipeline.
pub async fn handle<B>(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<B>,
) -> Response<ResponseBody>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    // The plan is loaded once: a reload mid-request does not change this request's routing.
    let plan = shared.plan.load_full();
    let (trace, trace_valid) = TraceContext::from_headers(req.headers());
    let authority = request_authority(&req);
    let ctx = RequestCtx {
        request_id: request_id(req.headers()),
        trace,
        trace_valid,
        start: Instant::now(),
        client_addr: conn.client_addr,
        listener: conn.listener.clone(),
        grpc: headers::is_grpc(req.headers()),
        tls: conn.tls,
        peer_identity: conn.peer_identity.clone(),
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        authority,
        version: req.version(),
        route: None,
        route_stats: None,
        service: None,
        upstream: None,
        failed: None,
        extensions: http::Extensions::new(),
    };
    shared.metrics.in_flight.inc();
    conn.activity.request_started();
    let span = tracing::info_span!(
        "request",
        request_id = ctx.request_id.to_str().unwrap_or_default(),
        trace_id = ctx.trace.trace_id_hex().as_str(),
        // As `&str`, not `%`: recorded as strings, without a trip through `fmt`.
        method = ctx.method.as_str(),
        path = ctx.path.as_str(),
    );
    let bytes_in = Arc::new(AtomicU64::new(0));
    let grpc = ctx.grpc;
    // An HTTP/1 request with a body we may answer before reading it (a refusal, a 405).
    let h1_body = req.version() < http::Version::HTTP_2
        && (req.headers().contains_key(header::TRANSFER_ENCODING)
            || content_length(req.headers()).is_some_and(|n| n > 0));
    // From here the request is counted: if the client goes away before the answer is ready
    // (the server drops this future), the guard still ends it, as a 499.
    let mut unanswered = Unanswered(Some(Finish {
        status: CLIENT_CLOSED_REQUEST,
        ctx,
        bytes_in: bytes_in.clone(),
        metrics: shared.metrics.clone(),
        conn,
        access_log: plan.settings.telemetry.access_log,
    }));
    let result = proxy(
        &plan,
        &shared.metrics,
        &mut unanswered.finish().ctx,
        req,
        bytes_in,
    )
    .instrument(span.clone())
    .await;
    let mut finish = unanswered.answered();
    let ctx = &mut finish.ctx;
    let res = match result {
        Ok(res) => res,
        Err(err) => {
            ctx.failed = Some(err.source_side());
            let _enter = span.enter();
            match err.source_side() {
                ErrorSource::Client => {
                    tracing::debug!(error = %crate::error::chain(&err), "request refused")
                }
                _ => tracing::warn!(error = %crate::error::chain(&err), "request failed"),
            }
            let public = plan.settings.error_details == crate::settings::ErrorDetails::Public
                || plan.tier.filter.as_ref().is_some_and(|f| f.public_errors());
            respond::error_response(&err, &ctx.request_id, Some(&ctx.path), grpc, public)
        }
    };
    let (mut parts, mut body) = res.into_parts();
    if let Some(filter) = &plan.tier.filter {
        body = filter.response_body(ctx, &mut parts, body);
        filter.on_response(ctx, &mut parts);
    }
    finish.status = parts.status.as_u16();
    if h1_body && finish.bytes_in.load(Ordering::Relaxed) & BODY_ENDED == 0 {
        // hyper will not reuse a connection whose request body is unread: say so, or the
        // client sends its next request on a connection that is about to close.
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    // A HEAD answer has no body, whoever made it (RFC 9110 §9.3.2): over HTTP/2 one would be a
    // protocol error. The headers stay, `Content-Length` included.
    let body = match finish.ctx.method == http::Method::HEAD {
        true => {
            // The length the GET would have had: hyper takes it from the body otherwise.
            // (Not for an empty body: a proxied HEAD's is empty whatever the GET's length.)
            if let Some(n) = http_body::Body::size_hint(&body).exact()
                && n > 0
                && !parts.headers.contains_key(header::CONTENT_LENGTH)
            {
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
            crate::body::empty()
        }
        false => body,
    };
    Response::from_parts(parts, ObservedBody::new(body, finish))
}

/// The status logged for a request whose client left before it was answered (nginx's 499;
/// Envoy logs 0 with the `DC` flag).
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// A request not answered yet: dropped before [`Unanswered::answered`], it ends the request
/// as a 499 so the in-flight gauge, the connection's activity and the access log stay right.
struct Unanswered(Option<Finish>);

impl Unanswered {
    fn finish(&mut self) -> &mut Finish {
        self.0
            .as_mut()
            .expect("taken only by answered(), which consumes the guard")
    }

    fn answered(mut self) -> Finish {
        self.0.take().expect("taken only once")
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(finish) = self.0.take() {
            finish.on_end(0, false);
        }
    }
}

async fn proxy<B>(
    plan: &Plan,
    metrics: &Arc<Metrics>,
    ctx: &mut RequestCtx,
    req: Request<B>,
    bytes_in: Arc<AtomicU64>,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    let limits = plan.limits;
    // Limits first: nothing else should spend work on a request we will refuse.
    if headers::header_bytes(req.headers()) > limits.max_header_bytes {
        return Err(ProxyError::HeadersTooLarge {
            limit: limits.max_header_bytes,
        });
    }
    let (mut parts, body) = req.into_parts();
    // Identity hygiene before routing, so identity conditions only see what a trusted
    // gateway vouched for.
    let trusted = plan
        .listener(&ctx.listener)
        .map(|l| l.settings.trusted_gateways.as_slice())
        .unwrap_or_default();
    if !identity::is_trusted(ctx.peer_identity.as_deref(), trusted) {
        let removed = identity::strip_untrusted(&mut parts.headers);
        if removed > 0 {
            tracing::debug!(
                removed,
                "x-gatehouse-* headers from an untrusted peer removed"
            );
        }
    }
    // The binary's own phases (the edge's authentication, limits, validation) see the
    // request after hygiene and before routing; they may answer it themselves.
    if let Some(filter) = &plan.tier.filter
        && let Err(res) = filter.on_request(ctx, &mut parts).await
    {
        return Ok(res);
    }
    // After the filter: a policy may set this request's own limit.
    let max_body = ctx
        .extensions
        .get::<BodyLimit>()
        .map_or(limits.max_body_bytes, |l| l.0);
    if let Some(len) = content_length(&parts.headers)
        && len > max_body
    {
        return Err(ProxyError::BodyTooLarge { limit: max_body });
    }
    let mut body = LimitedBody::new(body, max_body, bytes_in).boxed_unsync();
    if let Some(BodyCheck(check)) = ctx.extensions.remove::<BodyCheck>() {
        let collected = body.collect().await.map_err(client_body_error)?;
        let trailers = collected.trailers().cloned();
        let data = collected.to_bytes();
        if let Err(res) = check.check(ctx, &parts, &data) {
            return Ok(res);
        }
        body = crate::body::replay(data, trailers);
    }
    // A protocol the tier translates (the edge's gRPC-Web) is turned into what routes and
    // upstreams speak before anything reads the request.
    if let Some(filter) = &plan.tier.filter {
        body = filter.request_body(ctx, &mut parts, body);
    }
    // Owned: `ctx` is lent mutably to the upstream call while the host is still in use.
    let host = ctx
        .authority
        .as_deref()
        .map(|a| headers::host_of(a).to_ascii_lowercase());
    let view = RouteRequest {
        listener: &ctx.listener,
        method: &parts.method,
        host: host.as_deref(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
    };
    let Some(Matched { route, captures }) = plan.route(&view) else {
        return Err(ProxyError::NoRoute {
            method: ctx.method.clone(),
            path: ctx.path.clone(),
        });
    };
    ctx.route = Some(route.name.clone());
    ctx.route_stats = Some(route.stats.clone());
    let subject = match route.uses_subject() {
        true => parts
            .headers
            .get(identity::X_SUBJECT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        false => None,
    };
    let values = Values {
        route,
        captures: &captures,
        subject: subject.as_deref(),
        host: host.as_deref(),
    };

    let upstream = match &route.action {
        Action::Proxy(service) => service.clone(),
        Action::Split(split) => split.pick(&parts.headers).clone(),
        Action::DirectResponse(d) => return Ok(values.local(ctx, d.response())),
        Action::Redirect(r) => {
            let url = RequestUrl {
                scheme: if ctx.tls { "https" } else { "http" },
                authority: ctx.authority.as_deref(),
                path: parts.uri.path(),
                query: parts.uri.query(),
            };
            let res = r.response(&url, &values.vars(ctx));
            return Ok(values.local(ctx, res));
        }
        Action::Handler { kind, service } => {
            let deadline = handler_deadline(plan, route, &parts.headers, ctx.start);
            let forward = Forward::for_request(
                ctx,
                &parts.headers,
                metrics.clone(),
                Some(deadline),
                plan.settings.telemetry.access_log,
            );
            let req = HandlerRequest {
                parts,
                body,
                captures: captures.clone(),
                route: route.name.clone(),
                host: host.clone(),
                forward,
            };
            // The route's deadline bounds the whole handler, its children included.
            let until = tokio::time::Instant::from_std(deadline);
            let res = match tokio::time::timeout_at(until, service.clone().oneshot(req)).await {
                Ok(res) => res?,
                Err(_) => {
                    return Err(ProxyError::UpstreamTimeout {
                        service: format!("{kind} (route {})", route.name),
                        after: deadline.saturating_duration_since(ctx.start),
                    });
                }
            };
            let mut res = res;
            if let Some(failed) = res.extensions_mut().remove::<FailedParts>() {
                ctx.extensions.insert(failed);
            }
            // A handler may relay a service's answer: it is a hop like any other.
            headers::strip_hop_by_hop(res.headers_mut(), false);
            return Ok(values.local(ctx, res));
        }
    };
    ctx.service = Some(upstream.name.clone());

    if let Some(path) = route.rewrite.path(parts.uri.path(), &values.vars(ctx)) {
        let pq = match parts.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        parts.uri = http::Uri::builder()
            .path_and_query(pq)
            .build()
            .map_err(|e| ProxyError::BadRequest {
                reason: format!("the rewritten path is not a valid URI: {e}"),
            })?;
    }
    prepare_headers(ctx, &mut parts.headers);
    if let Some(h) = &route.rewrite.host {
        parts.headers.insert(header::HOST, h.clone());
    }
    route
        .request_headers
        .apply(&mut parts.headers, &values.vars(ctx));
    if let Some(mirror) = &route.mirror
        && mirror.sample()
    {
        let forward = || {
            Forward::for_request(
                ctx,
                &parts.headers,
                metrics.clone(),
                None,
                plan.settings.telemetry.access_log,
            )
        };
        body = mirror.start(forward, &parts, body);
    }
    let mut res = upstream
        .call(
            metrics,
            &mut ctx.upstream,
            parts,
            body,
            route.call_options(),
        )
        .await?;
    let via = headers::via_version(res.version());
    let h = res.headers_mut();
    headers::strip_hop_by_hop(h, false);
    headers::append_via(h, via);
    h.insert(X_REQUEST_ID, ctx.request_id.clone());
    route.response_headers.apply(h, &values.vars(ctx));
    Ok(res)
}

/// When a handler route must have answered: its `timeout` (default the config's
/// `timeouts.request`), or sooner when the caller gave a shorter deadline.
fn handler_deadline(
    plan: &Plan,
    route: &Route,
    headers: &http::HeaderMap,
    start: Instant,
) -> Instant {
    let mut budget = route
        .timeout
        .unwrap_or_else(|| plan.settings.timeouts.request.get());
    if let Some(d) = crate::upstream::deadline::incoming(headers) {
        budget = budget.min(d);
    }
    start + budget
}

/// What a route's templates may use, gathered once per request.
struct Values<'a> {
    route: &'a Route,
    captures: &'a [Option<String>],
    subject: Option<&'a str>,
    host: Option<&'a str>,
}

impl<'a> Values<'a> {
    fn vars<'c>(&'c self, ctx: &'c RequestCtx) -> Vars<'c> {
        Vars {
            captures: self.captures,
            request_id: ctx.request_id.to_str().unwrap_or_default(),
            subject: self.subject,
            route: &self.route.name,
            host: self.host,
            path: &ctx.path,
        }
    }

    /// Finishes an answer made here (redirect, direct response): request id and the route's
    /// response headers.
    fn local(&self, ctx: &RequestCtx, mut res: Response<ProxyBody>) -> Response<ProxyBody> {
        res.headers_mut()
            .insert(X_REQUEST_ID, ctx.request_id.clone());
        self.route
            .response_headers
            .apply(res.headers_mut(), &self.vars(ctx));
        res
    }
}

/// Rewrites the client's headers for the upstream: hop-by-hop headers removed, the client's
/// authority kept as Host, forwarding, request id and trace headers set.
fn prepare_headers(ctx: &RequestCtx, h: &mut http::HeaderMap) {
    headers::strip_hop_by_hop(h, true);
    // Keep the client's authority as Host (as Envoy does); the upstream address is in the URI.
    if let Some(auth) = &ctx.authority
        && let Ok(v) = HeaderValue::try_from(auth.as_str())
    {
        h.insert(header::HOST, v);
    }
    headers::set_forwarded(
        h,
        &Forwarded {
            client_ip: ctx.client_addr.ip(),
            proto: if ctx.tls { "https" } else { "http" },
            host: ctx.authority.as_deref(),
            via_version: headers::via_version(ctx.version),
        },
    );
    h.insert(X_REQUEST_ID, ctx.request_id.clone());
    ctx.trace.apply(h, ctx.trace_valid);
}

fn content_length(h: &http::HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The authority the client asked for. HTTP/1 absolute-form: the URI's (RFC 9112 §3.2.2).
/// Otherwise `Host` first, then the URI's: over HTTP/2 a Gatehouse hop sends the original
/// authority as `Host` while `:authority` names the endpoint it connected to.
fn request_authority<B>(req: &Request<B>) -> Option<String> {
    let uri = req.uri().authority().map(|a| a.as_str().to_owned());
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    if req.version() < http::Version::HTTP_2 && uri.is_some() {
        return uri;
    }
    host.or(uri)
}

/// Runs when the response body ends: metrics, counters and the access-log line.
pub struct Finish {
    status: u16,
    ctx: RequestCtx,
    bytes_in: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    conn: Arc<ConnInfo>,
    access_log: bool,
}

impl OnEnd for Finish {
    fn on_end(self, bytes_out: u64, complete: bool) {
        let ctx = &self.ctx;
        let elapsed = ctx.start.elapsed();
        let route = ctx.route_stats.as_deref().unwrap_or(&self.metrics.no_route);
        self.metrics
            .observe_request(route, self.status, elapsed.as_secs_f64());
        self.metrics.in_flight.dec();
        if let Some(peer) = &ctx.peer_identity {
            let labels = crate::metrics::PeerLabels {
                listener: ctx.listener.clone(),
                peer: peer.clone(),
                status_class: crate::metrics::status_class(self.status),
            };
            self.metrics.peer_requests.get_or_create(&labels).inc();
        }
        self.conn.activity.request_finished();
        if self.access_log {
            crate::telemetry::access_log(&crate::telemetry::AccessLog {
                ctx,
                status: self.status,
                bytes_in: self.bytes_in.load(Ordering::Relaxed) & !BODY_ENDED,
                bytes_out,
                duration: elapsed,
                complete,
                child: None,
            });
        }
    }
}
