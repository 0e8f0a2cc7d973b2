//! The forward step for child requests: a request that a route sends on its own behalf (a
//! mirror copy, a handler's call to a service), derived from the request that caused it.
//!
//! A child gets its parent's request id, the parent's trace with a span of its own, the
//! caller's identity headers, and what is left of the parent's deadline when the parent has
//! one (a handler's route deadline; a mirror copy has none of its own and keeps the primary's
//! headers, so only the shadow service's timeouts bound it); it goes through the
//! same resilient upstream call as a proxied request (balancing, breakers, retries within the
//! budget, mTLS). It writes an access-log line (`child` names what sent it) with the parent's
//! request id and counts in `gatehouse_child_requests_total`.
//!
//! [`Forward`] is a `tower::Service<ForwardRequest>`, so a cache or a transcoder can wrap it
//! as a layer.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use http_body_util::BodyExt;
use tracing::Instrument;

use crate::body::{ObservedBody, OnEnd, ProxyBody};
use crate::ctx::RequestCtx;
use crate::error::{ErrorSource, ProxyError};
use crate::identity;
use crate::metrics::{ChildLabels, Metrics, status_class};
use crate::trace_context::{TRACESTATE, TraceContext, X_REQUEST_ID};
use crate::upstream::call::CallOptions;
use crate::upstream::deadline::X_DEADLINE_MS;
use crate::upstream::retry::RetrySettings;
use crate::upstream::service::Upstream;

/// One child request.
#[derive(Debug)]
pub struct ForwardRequest {
    pub service: Arc<Upstream>,
    /// Method, path and query, headers and body of the child. Its request id, `traceparent`,
    /// identity and deadline headers are set by the step.
    pub request: Request<ProxyBody>,
    /// What sends it (`mirror`, a handler's kind): the access log's `child` field and a
    /// metric label, so a fixed name.
    pub origin: &'static str,
    /// The retry policy; default the service's.
    pub retry: Option<Arc<RetrySettings>>,
    /// A timeout of this child's own, within the parent's deadline.
    pub timeout: Option<Duration>,
}

impl ForwardRequest {
    pub fn new(service: Arc<Upstream>, request: Request<ProxyBody>, origin: &'static str) -> Self {
        ForwardRequest {
            service,
            request,
            origin,
            retry: None,
            timeout: None,
        }
    }
}

/// Sends the child requests of one parent request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Forward {
    parent: Arc<Parent>,
}

/// What children inherit from their parent.
#[derive(Debug)]
struct Parent {
    metrics: Arc<Metrics>,
    request_id: HeaderValue,
    trace: TraceContext,
    /// The caller's identity headers (every value), as the parent carried them after
    /// identity hygiene and the tier's phases.
    identity: Vec<(HeaderName, HeaderValue)>,
    /// The caller's `tracestate`, kept when its `traceparent` was valid (W3C ties them).
    tracestate: Option<HeaderValue>,
    /// When the parent must have its answer; `None`: only the services' own timeouts.
    deadline: Option<Instant>,
    route: Option<Arc<str>>,
    client_addr: SocketAddr,
    listener: Arc<str>,
    tls: bool,
    peer_identity: Option<Arc<str>>,
    access_log: bool,
}

impl Forward {
    /// The step for the children of the request `ctx` describes, whose headers (after hygiene
    /// and the tier's phases) are `headers`.
    pub fn for_request(
        ctx: &RequestCtx,
        headers: &http::HeaderMap,
        metrics: Arc<Metrics>,
        deadline: Option<Instant>,
        access_log: bool,
    ) -> Self {
        // Every `x-gatehouse-*` claim the parent carries (subject, scopes, tenant...): by now
        // hygiene has removed any an untrusted peer sent. The deadline is the step's own.
        let identity = headers
            .iter()
            .filter(|(name, _)| {
                name.as_str().starts_with(identity::PREFIX) && name.as_str() != X_DEADLINE_MS
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let tracestate = match ctx.trace_valid {
            true => headers.get(TRACESTATE).cloned(),
            false => None,
        };
        Forward {
            parent: Arc::new(Parent {
                metrics,
                request_id: ctx.request_id.clone(),
                trace: ctx.trace,
                identity,
                tracestate,
                deadline,
                route: ctx.route.clone(),
                client_addr: ctx.client_addr,
                listener: ctx.listener.clone(),
                tls: ctx.tls,
                peer_identity: ctx.peer_identity.clone(),
                access_log,
            }),
        }
    }

    /// The parent's request id.
    pub fn request_id(&self) -> &str {
        self.parent.request_id.to_str().unwrap_or_default()
    }

    /// The `traceparent` of a new span of this request's trace, and the caller's `tracestate`:
    /// for work a handler hands on outside HTTP (a message on a broker), so the trace goes on.
    pub fn child_trace(&self) -> (HeaderValue, Option<HeaderValue>) {
        let p = &*self.parent;
        (p.trace.child().outgoing(), p.tracestate.clone())
    }

    /// The caller's identity headers (`x-gatehouse-subject`, scopes...), as children get them.
    pub fn identity(&self) -> &[(HeaderName, HeaderValue)] {
        &self.parent.identity
    }

    /// The metrics children count in; a handler counts its own series there too.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.parent.metrics
    }

    /// The time left before the parent's deadline, if it has one.
    pub fn remaining(&self) -> Option<Duration> {
        self.parent
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Sends one child request and returns its response as it arrives (the body streams).
    pub async fn send(&self, req: ForwardRequest) -> Result<Response<ProxyBody>, ProxyError> {
        let p = &*self.parent;
        let (mut parts, body) = req.request.into_parts();
        let trace = p.trace.child();
        // Logged and counted however the child ends, cancellation included (the handler's
        // deadline passed, the client went away): that is when an operator needs the line.
        let mut guard = ChildEnd {
            status: STATUS_CANCELLED,
            origin: req.origin,
            ctx: RequestCtx {
                request_id: p.request_id.clone(),
                trace,
                trace_valid: true,
                start: Instant::now(),
                client_addr: p.client_addr,
                listener: p.listener.clone(),
                grpc: crate::headers::is_grpc(&parts.headers),
                tls: p.tls,
                peer_identity: p.peer_identity.clone(),
                method: parts.method.clone(),
                path: parts.uri.path().to_owned(),
                authority: parts
                    .headers
                    .get(http::header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                version: parts.version,
                route: p.route.clone(),
                route_stats: None,
                service: Some(req.service.name.clone()),
                upstream: None,
                failed: Some(ErrorSource::Internal),
                extensions: http::Extensions::new(),
            },
            metrics: p.metrics.clone(),
            access_log: p.access_log,
        }
        .pending();
        let h = &mut parts.headers;
        h.insert(X_REQUEST_ID, p.request_id.clone());
        trace.apply(h, true);
        match &p.tracestate {
            Some(state) => h.insert(TRACESTATE, state.clone()),
            None => h.remove(TRACESTATE),
        };
        for (name, _) in &p.identity {
            h.remove(name);
        }
        for (name, value) in &p.identity {
            h.append(name.clone(), value.clone());
        }
        if let Some(left) = self.remaining() {
            if left.is_zero() {
                let err = ProxyError::UpstreamTimeout {
                    service: req.service.name.to_string(),
                    after: Duration::ZERO,
                };
                return Err(guard.failed(err));
            }
            let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
            h.insert(X_DEADLINE_MS, HeaderValue::from(ms));
        }
        let opts = CallOptions {
            retry: req.retry.as_deref(),
            timeout: req.timeout,
        };
        let span = tracing::info_span!(
            "child",
            origin = req.origin,
            service = %req.service.name,
            span_id = %trace.span_id_hex(),
        );
        let mut upstream = None;
        let result = req
            .service
            .call(&p.metrics, &mut upstream, parts, body, opts)
            .instrument(span)
            .await;
        guard.set_upstream(upstream);
        match result {
            Ok(res) => {
                let (head, body) = res.into_parts();
                let end = guard.answered(head.status.as_u16());
                Ok(Response::from_parts(
                    head,
                    ObservedBody::new(body, end).boxed_unsync(),
                ))
            }
            Err(err) => Err(guard.failed(err)),
        }
    }
}

/// What a child that never got an answer is logged with: nginx's "client closed request".
const STATUS_CANCELLED: u16 = 499;

impl tower::Service<ForwardRequest> for Forward {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        // Admission is per service, inside the call (breakers answer 503 at once).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: ForwardRequest) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.send(req).await })
    }
}

/// Writes a child's access-log line and metric when its response body ends.
struct ChildEnd {
    status: u16,
    origin: &'static str,
    ctx: RequestCtx,
    metrics: Arc<Metrics>,
    access_log: bool,
}

impl ChildEnd {
    fn pending(self) -> Pending {
        Pending(Some(self))
    }
}

/// A child in flight: if it is dropped before it is answered or fails, its line is written
/// as cancelled.
struct Pending(Option<ChildEnd>);

impl Pending {
    fn set_upstream(&mut self, addr: Option<SocketAddr>) {
        if let Some(end) = &mut self.0 {
            end.ctx.upstream = addr;
        }
    }

    /// The child got a response head: its line is written when the body ends.
    fn answered(mut self, status: u16) -> ChildEnd {
        let mut end = self.0.take().expect("a pending child is answered once");
        end.status = status;
        end.ctx.failed = None;
        end
    }

    /// The child got no response: its line is written now.
    fn failed(mut self, err: ProxyError) -> ProxyError {
        if let Some(mut end) = self.0.take() {
            end.status = crate::respond::classify(&err).0.as_u16();
            end.ctx.failed = Some(err.source_side());
            tracing::debug!(origin = end.origin, error = %crate::error::chain(&err), "child request failed");
            end.on_end(0, false);
        }
        err
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(end) = self.0.take() {
            end.on_end(0, false);
        }
    }
}

impl OnEnd for ChildEnd {
    fn on_end(self, bytes_out: u64, complete: bool) {
        let ctx = &self.ctx;
        let elapsed = ctx.start.elapsed();
        let labels = ChildLabels {
            route: ctx
                .route
                .clone()
                .unwrap_or_else(|| Arc::from(crate::metrics::NO_ROUTE)),
            service: ctx.service.clone().unwrap_or_else(|| Arc::from("-")),
            origin: self.origin,
            status_class: status_class(self.status),
        };
        self.metrics.child_requests.get_or_create(&labels).inc();
        if self.access_log {
            crate::telemetry::access_log(&crate::telemetry::AccessLog {
                ctx,
                status: self.status,
                bytes_in: 0,
                bytes_out,
                duration: elapsed,
                complete,
                child: Some(self.origin),
            });
        }
    }
}
