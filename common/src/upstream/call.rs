//! Sending one request through an [`Upstream`]: breaker admission, endpoint choice, per-try
//! and overall deadlines, retries within policy and budget, outlier bookkeeping.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;

use super::breaker::Overload;
use super::deadline;
use super::endpoint::Endpoint;
use super::retry::{RetryOn, RetrySettings};
use super::service::Upstream;
use crate::BoxError;
use crate::body::{BodyLimitExceeded, ProxyBody};
use crate::error::{ProxyError, find_cause};
use crate::metrics::Metrics;
use crate::respond::X_OVERLOADED;

const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// Per-route overrides of the service's policy.
#[derive(Debug, Default, Clone, Copy)]
pub struct CallOptions<'a> {
    pub retry: Option<&'a RetrySettings>,
    /// Overall timeout (retries included); default the service's `timeouts.request`.
    pub timeout: Option<Duration>,
}

/// The request body as the attempts need it.
enum Prepared {
    /// Fully read (small enough to replay): each attempt gets a copy.
    Replay(Bytes, Option<HeaderMap>),
    /// Streamed once; no retry after it has been handed to an attempt.
    Stream(ProxyBody),
}

impl Prepared {
    fn replayable(&self) -> bool {
        matches!(self, Prepared::Replay(..))
    }
}

/// Reads the body ahead when a retry may need it and it fits in `max`; otherwise streams it.
async fn prepare(body: ProxyBody, retry_allowed: bool, max: u64) -> Result<Prepared, ProxyError> {
    if body.is_end_stream() {
        return Ok(Prepared::Replay(Bytes::new(), None));
    }
    let too_big = body.size_hint().lower() > max;
    if !retry_allowed || too_big {
        return Ok(Prepared::Stream(body));
    }
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(client_body_error)?;
        match frame.into_data() {
            Ok(data) => {
                buf.extend_from_slice(&data);
                if buf.len() as u64 > max {
                    // Too large to keep: stream what we read, then the rest, and never retry.
                    let head =
                        http_body_util::Full::new(buf.freeze()).map_err(|never| match never {});
                    let rest = Chain {
                        head: Some(head),
                        rest: body,
                    };
                    return Ok(Prepared::Stream(rest.boxed_unsync()));
                }
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
            }
        }
    }
    Ok(Prepared::Replay(buf.freeze(), trailers))
}

pub(crate) fn client_body_error(e: BoxError) -> ProxyError {
    match find_cause::<BodyLimitExceeded>(&*e) {
        Some(l) => ProxyError::BodyTooLarge { limit: l.limit },
        None => ProxyError::ClientBody { source: e },
    }
}

pin_project! {
    /// A body read ahead in part, followed by the rest of the original.
    struct Chain<H> {
        head: Option<H>,
        #[pin]
        rest: ProxyBody,
    }
}

impl<H: Body<Data = Bytes, Error = BoxError> + Unpin> Body for Chain<H> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Some(head) = this.head {
            match Pin::new(head).poll_frame(cx) {
                Poll::Ready(Some(f)) => return Poll::Ready(Some(f)),
                Poll::Ready(None) => *this.head = None,
                Poll::Pending => return Poll::Pending,
            }
        }
        this.rest.poll_frame(cx)
    }
}

/// The first error of a streamed request body, kept for the caller. Over HTTP/2 hyper answers
/// a failing request body with a stream reset and reports only the reset, so without this a
/// client's broken body (over its limit, cut off, undecodable) would read as the endpoint's
/// failure, be answered 502 and count against the endpoint.
#[derive(Default, Clone)]
struct BodyFailure(Arc<std::sync::Mutex<Option<BoxError>>>);

impl BodyFailure {
    fn take(&self) -> Option<BoxError> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// What hyper is given in place of the request body's own error (kept in [`BodyFailure`]).
#[derive(Debug, thiserror::Error)]
#[error("the request body failed")]
struct RequestBodyFailed;

pin_project! {
    /// A streamed request body whose first error goes to a [`BodyFailure`].
    struct Watched {
        #[pin]
        inner: ProxyBody,
        failure: BodyFailure,
    }
}

impl Body for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                let mut slot = this.failure.0.lock().unwrap_or_else(|e| e.into_inner());
                if slot.is_none() {
                    *slot = Some(e);
                }
                Poll::Ready(Some(Err(Box::new(RequestBodyFailed))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How long one try may take; `per_try` when that is the policy's per-try timeout (shorter
/// than what is left of the call), after which a retry may follow.
#[derive(Debug, Clone, Copy)]
struct TryTimeout {
    after: Duration,
    per_try: bool,
}

/// Ends the breaker's accounting of an admitted request exactly once.
struct Admitted {
    upstream: Arc<Upstream>,
    failed: bool,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.upstream.breaker.finish(self.failed);
    }
}

/// A taken retry slot (`circuit_breaker.max_retries`), given back on drop.
struct RetrySlot(Arc<Upstream>);

impl Drop for RetrySlot {
    fn drop(&mut self) {
        self.0.breaker.retry_done();
    }
}

/// One request counted in an endpoint's in-flight load (the balancer's input) until dropped,
/// whether the attempt ended, its body ended, or the caller gave up.
struct EndpointSlot(Arc<Endpoint>);

impl EndpointSlot {
    fn start(endpoint: &Arc<Endpoint>) -> Self {
        endpoint.start();
        EndpointSlot(endpoint.clone())
    }
}

impl Drop for EndpointSlot {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// A request waiting for its response head (`circuit_breaker.max_pending_requests`), counted
/// until dropped: a caller that gives up mid-wait must not keep the slot.
struct PendingSlot<'a>(&'a Upstream);

impl Drop for PendingSlot<'_> {
    fn drop(&mut self) {
        self.0.breaker.leave_pending();
    }
}

/// Keeps an endpoint's in-flight count and the breaker slot until the response body ends.
struct InFlight {
    _endpoint: EndpointSlot,
    _admitted: Admitted,
}

pin_project! {
    struct Guarded {
        #[pin]
        inner: ProxyBody,
        guard: Option<InFlight>,
    }
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let res = this.inner.poll_frame(cx);
        if matches!(res, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            *this.guard = None;
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How one attempt ended.
enum Attempt {
    /// An answer to pass on.
    Done(Response<ProxyBody>),
    /// An answer the policy would retry (returned as is if no retry is left).
    RetryResponse(Response<ProxyBody>),
    /// A failure the policy would retry.
    Retry(ProxyError),
    /// A failure to report.
    Fail(ProxyError),
}

/// Wraps a response so the endpoint and breaker accounting end with its body.
fn guarded(
    res: Response<ProxyBody>,
    endpoint: EndpointSlot,
    mut admitted: Admitted,
) -> Response<ProxyBody> {
    admitted.failed = admitted.upstream.counts_as_failure(&res);
    let (p, b) = res.into_parts();
    let body = Guarded {
        inner: b,
        guard: Some(InFlight {
            _endpoint: endpoint,
            _admitted: admitted,
        }),
    };
    Response::from_parts(p, body.boxed_unsync())
}

fn continue_after(status: http::StatusCode) -> String {
    format!("upstream answered {status}")
}

impl Upstream {
    /// Sends `parts` + `body` to this service. `parts` already carries the forwarding headers;
    /// its URI is set per attempt. `chosen` is set to the endpoint of each attempt (the access
    /// log's `upstream`). Callers go through the proxy action or [`crate::forward::Forward`].
    pub async fn call(
        self: &Arc<Self>,
        metrics: &Metrics,
        chosen: &mut Option<std::net::SocketAddr>,
        mut parts: http::request::Parts,
        body: ProxyBody,
        opts: CallOptions<'_>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let start = Instant::now();
        let mut overall = opts.timeout.unwrap_or(self.request_timeout);
        if let Some(d) = deadline::incoming(&parts.headers) {
            overall = overall.min(d);
        }
        let deadline_at = start + overall;
        let policy = opts.retry.unwrap_or(&self.settings.retry);
        let grpc = crate::headers::is_grpc(&parts.headers);

        self.breaker
            .admit()
            .map_err(|o| self.overloaded(metrics, o))?;
        let mut admitted = Admitted {
            upstream: self.clone(),
            failed: false,
        };
        self.budget.deposit();

        let retry_allowed = policy.max_attempts > 1 && policy.method_allowed(&parts.method);
        let max_replay = policy.max_replay_body.get();
        let mut body =
            match tokio::time::timeout(overall, prepare(body, retry_allowed, max_replay)).await {
                Ok(prepared) => Some(prepared?),
                Err(_) => return Err(self.timeout(overall)),
            };
        let body_failure = BodyFailure::default();
        let mut tried: Vec<SocketAddr> = Vec::with_capacity(2);
        let mut _retry_slot: Option<RetrySlot> = None;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let endpoints = self.endpoints.load();
            let Some(ep) = self.balancer.pick(&endpoints, &tried, &parts) else {
                admitted.failed = true;
                return Err(ProxyError::NoEndpoints {
                    service: self.name.to_string(),
                });
            };
            drop(endpoints);
            tried.push(ep.addr);
            *chosen = Some(ep.addr);
            let left = deadline_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                admitted.failed = true;
                return Err(self.timeout(overall));
            }
            let per_try = policy.per_try_timeout.map(|t| t.get().min(left));
            let try_timeout = per_try.unwrap_or(left);
            let more = retry_allowed
                && attempt < policy.max_attempts
                && body.as_ref().is_some_and(Prepared::replayable);
            let req_body = match body.take() {
                Some(Prepared::Replay(data, trailers)) => {
                    let b = crate::body::replay(data.clone(), trailers.clone());
                    body = Some(Prepared::Replay(data, trailers));
                    b
                }
                Some(Prepared::Stream(s)) => Watched {
                    inner: s,
                    failure: body_failure.clone(),
                }
                .boxed_unsync(),
                None => crate::body::empty(),
            };
            let headers = if more {
                parts.headers.clone()
            } else {
                std::mem::take(&mut parts.headers)
            };
            let req = self.attempt_request(&parts, headers, &ep, req_body, left, grpc)?;

            let slot = EndpointSlot::start(&ep);
            let outcome = self
                .attempt(
                    metrics,
                    &ep,
                    req,
                    TryTimeout {
                        after: try_timeout,
                        per_try: per_try.is_some() && try_timeout < left,
                    },
                    policy,
                    &body_failure,
                )
                .await;
            // The previous retry (if any) is over: give its slot back before asking for another.
            _retry_slot = None;
            let err = match outcome {
                Attempt::Done(res) => return Ok(guarded(res, slot, admitted)),
                Attempt::Fail(e) => {
                    drop(slot);
                    admitted.failed = e.source_side() == crate::error::ErrorSource::Upstream;
                    return Err(e);
                }
                Attempt::RetryResponse(res) => match self.refuse_retry(metrics, more) {
                    // No retry left: the client gets the upstream's own answer.
                    true => return Ok(guarded(res, slot, admitted)),
                    false => {
                        drop(slot);
                        continue_after(res.status())
                    }
                },
                Attempt::Retry(e) => {
                    drop(slot);
                    if self.refuse_retry(metrics, more) {
                        admitted.failed = true;
                        return Err(e);
                    }
                    e.to_string()
                }
            };
            metrics.upstream.retry(&self.name);
            tracing::debug!(service = %self.name, attempt, reason = %err, "retrying");
            let pause = policy
                .backoff(attempt)
                .min(deadline_at.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
            // Held through the retry attempt; released when replaced or when we return.
            _retry_slot = Some(RetrySlot(self.clone()));
        }
    }

    /// Whether a wanted retry must be refused: no attempt or replayable body left, budget
    /// spent, or too many retries in flight. Takes a retry slot when it says no refusal.
    fn refuse_retry(&self, metrics: &Metrics, more: bool) -> bool {
        if !more {
            return true;
        }
        if !self.budget.withdraw() {
            metrics.upstream.retry_budget_exhausted(&self.name);
            tracing::debug!(service = %self.name, "retry budget exhausted");
            return true;
        }
        if !self.breaker.try_retry() {
            metrics.upstream.overloaded(&self.name, "max_retries");
            return true;
        }
        false
    }

    fn attempt_request(
        &self,
        parts: &http::request::Parts,
        headers: HeaderMap,
        endpoint: &Endpoint,
        body: ProxyBody,
        left: Duration,
        grpc: bool,
    ) -> Result<Request<ProxyBody>, ProxyError> {
        // Put together from parts already parsed: nothing to format or parse again.
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(self.client.scheme().clone());
        uri.authority = Some(endpoint.authority.clone());
        uri.path_and_query = Some(
            parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        let uri = Uri::from_parts(uri).map_err(|e| ProxyError::BadRequest {
            reason: format!("cannot form the upstream URI: {e}"),
        })?;
        let mut req = Request::new(body);
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        // hyper picks the wire protocol from the pooled connection; HTTP/1.1 here means "any".
        *req.version_mut() = http::Version::HTTP_11;
        *req.headers_mut() = headers;
        deadline::propagate(req.headers_mut(), left, grpc);
        Ok(req)
    }

    /// One try against one endpoint.
    async fn attempt(
        self: &Arc<Self>,
        metrics: &Metrics,
        ep: &Arc<Endpoint>,
        req: Request<ProxyBody>,
        timeout: TryTimeout,
        policy: &RetrySettings,
        body_failure: &BodyFailure,
    ) -> Attempt {
        if let Err(o) = self.breaker.enter_pending() {
            return Attempt::Fail(self.overloaded(metrics, o));
        }
        let pending = PendingSlot(self);
        metrics.upstream.request(&ep.stats, &self.name, &ep.label);
        let t0 = Instant::now();
        let sent = tokio::time::timeout(timeout.after, self.client.send(req)).await;
        drop(pending);
        match sent {
            Ok(Ok(res)) => {
                ep.observe_rtt(t0.elapsed());
                metrics
                    .upstream
                    .ewma(&ep.stats, &self.name, &ep.label, ep.ewma());
                let status = res.status();
                // A Gatehouse tier behind this one shed the request (a breaker open for one of
                // its services): the endpoint itself is fine, and retrying would only add load
                // where there is too much (Envoy treats `x-envoy-overloaded` alike).
                let shed = res.headers().contains_key(X_OVERLOADED);
                if self.counts_as_failure(&res) {
                    self.endpoint_failed(metrics, ep);
                } else {
                    ep.record_success();
                }
                let grpc_status = res
                    .headers()
                    .get(GRPC_STATUS)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u32>().ok());
                let res = res.map(|b| b.map_err(BoxError::from).boxed_unsync());
                if !shed && policy.retry_status(status, grpc_status) {
                    // Only the head was read: nothing has reached the client yet.
                    return Attempt::RetryResponse(res);
                }
                Attempt::Done(res)
            }
            Ok(Err(e)) => {
                // The client's body failed (over its limit, cut off...): its error, not the
                // endpoint's.
                if let Some(cause) = body_failure.take() {
                    return Attempt::Fail(client_body_error(cause));
                }
                self.endpoint_failed(metrics, ep);
                let kind = classify(&e);
                let err = self.send_error(metrics, ep.addr, e, kind);
                if policy.retries(kind) {
                    Attempt::Retry(err)
                } else {
                    Attempt::Fail(err)
                }
            }
            Err(_elapsed) => {
                // A timed-out endpoint is at least this slow: let the balancer know.
                ep.observe_rtt(timeout.after);
                self.endpoint_failed(metrics, ep);
                let err = self.timeout(timeout.after);
                if timeout.per_try && policy.retry_timeout() {
                    Attempt::Retry(err)
                } else {
                    Attempt::Fail(err)
                }
            }
        }
    }

    /// Whether a response is held against the endpoint and the service's breaker: a 5xx,
    /// unless a tier behind shed it or the service does not count 5xx.
    fn counts_as_failure<B>(&self, res: &Response<B>) -> bool {
        res.status().is_server_error()
            && self.settings.count_server_errors
            && !res.headers().contains_key(X_OVERLOADED)
    }

    fn endpoint_failed(&self, metrics: &Metrics, ep: &Endpoint) {
        let o = &self.settings.outlier_detection;
        if !ep.record_failure(o.consecutive_failures) {
            return;
        }
        let endpoints = self.endpoints.load();
        let ejected = endpoints.iter().filter(|e| e.is_ejected()).count();
        let allowed = endpoints.len() * usize::from(o.max_ejection_percent.min(100)) / 100;
        if ejected < allowed.max(if endpoints.len() > 1 { 1 } else { 0 }) {
            let time = ep.eject(o.base_ejection_time.get(), o.max_ejection_time.get());
            metrics.upstream.ejection(&self.name, &ep.label);
            tracing::warn!(service = %self.name, endpoint = %ep.addr, ejected_for = ?time, "endpoint ejected");
        }
    }

    fn send_error(
        &self,
        metrics: &Metrics,
        addr: SocketAddr,
        e: hyper_util::client::legacy::Error,
        kind: RetryOn,
    ) -> ProxyError {
        if kind == RetryOn::ConnectFailure {
            metrics.upstream_connect_error(&self.name);
            let timed_out = find_cause::<std::io::Error>(&e)
                .map(|io| io.kind() == std::io::ErrorKind::TimedOut)
                .unwrap_or(false);
            if timed_out {
                return self.timeout(self.connect_timeout);
            }
            return ProxyError::UpstreamConnect {
                service: self.name.to_string(),
                addr,
                source: Box::new(e),
            };
        }
        ProxyError::UpstreamProtocol {
            service: self.name.to_string(),
            addr,
            source: Box::new(e),
        }
    }

    fn timeout(&self, after: Duration) -> ProxyError {
        ProxyError::UpstreamTimeout {
            service: self.name.to_string(),
            after,
        }
    }

    fn overloaded(&self, metrics: &Metrics, o: Overload) -> ProxyError {
        let (reason, retry_after) = match o {
            Overload::MaxRequests => ("max_requests", Duration::from_secs(1)),
            Overload::MaxPending => ("max_pending_requests", Duration::from_secs(1)),
            Overload::BreakerOpen { retry_after } => ("breaker_open", retry_after),
        };
        metrics.upstream.overloaded(&self.name, reason);
        ProxyError::Overloaded {
            service: self.name.to_string(),
            reason,
            retry_after,
        }
    }
}

/// Which retry condition a send error falls under.
fn classify(e: &hyper_util::client::legacy::Error) -> RetryOn {
    if e.is_connect() {
        return RetryOn::ConnectFailure;
    }
    if find_cause::<h2::Error>(e).and_then(|h| h.reason()) == Some(h2::Reason::REFUSED_STREAM) {
        return RetryOn::RefusedStream;
    }
    RetryOn::Reset
}
