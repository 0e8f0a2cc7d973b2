//! Traffic mirroring: a copy of a share of a route's requests goes to a shadow service in a
//! task of its own; its response is read and discarded. The primary never waits for it.
//!
//! Bodies are never buffered for the mirror's sake: a bodiless request is mirrored at once;
//! otherwise the primary's body is teed (up to [`MAX_BODY`] bytes are copied as they pass
//! through) and the copy is sent when the body has ended, only if it stayed within the limit. A longer body, or
//! one the primary did not read to its end, is not mirrored.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use rand::Rng;
use tokio::sync::oneshot;

use crate::BoxError;
use crate::body::ProxyBody;
use crate::forward::{Forward, ForwardRequest};
use crate::upstream::service::Upstream;

/// The largest request body mirrored.
pub const MAX_BODY: u64 = 64 * 1024;
/// Mirrored requests in flight per route; past it, requests are not mirrored (a hung shadow
/// costs at most this many tasks).
pub const MAX_IN_FLIGHT: usize = 256;
/// How long the shadow's response body is read before it is dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A route's mirror.
#[derive(Debug)]
pub struct Mirror {
    pub service: Arc<Upstream>,
    /// Share of requests, 0 to 100.
    pub percent: f64,
    in_flight: Arc<AtomicUsize>,
}

impl Mirror {
    pub fn new(service: Arc<Upstream>, percent: f64) -> Self {
        Mirror {
            service,
            percent,
            in_flight: Arc::default(),
        }
    }

    /// Whether this request is mirrored (by `percent`, and room in flight).
    pub fn sample(&self) -> bool {
        if self.percent <= 0.0 {
            return false;
        }
        if self.percent < 100.0 && rand::rng().random_range(0.0..100.0) >= self.percent {
            return false;
        }
        self.in_flight.load(Ordering::Relaxed) < MAX_IN_FLIGHT
    }

    /// Starts mirroring a request about to be sent as `parts` + `body`; returns the body to
    /// send to the primary (the same, or teed). `parts` are the primary's, after transforms.
    /// The copy is a child request of the primary, sent through the step `forward` makes
    /// (only once the request is known to be mirrored).
    pub fn start(
        &self,
        forward: impl FnOnce() -> Forward,
        parts: &http::request::Parts,
        body: ProxyBody,
    ) -> ProxyBody {
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY) || body.size_hint().lower() > MAX_BODY {
            tracing::debug!(service = %self.service.name, "request body too large to mirror");
            return body;
        }
        let (body, copy) = if body.is_end_stream() {
            (body, None)
        } else {
            let (tx, rx) = oneshot::channel();
            let tee = Tee {
                inner: body,
                buf: BytesMut::new(),
                trailers: None,
                tx: Some(tx),
            };
            (tee.boxed_unsync(), Some(rx))
        };
        let mut shadow = http::request::Request::new(());
        *shadow.method_mut() = parts.method.clone();
        *shadow.uri_mut() = parts.uri.clone();
        *shadow.version_mut() = parts.version;
        let mut headers = parts.headers.clone();
        shadow_host(&mut headers);
        *shadow.headers_mut() = headers;
        let service = self.service.clone();
        let forward = forward();
        let guard = InFlight::new(self.in_flight.clone());
        tokio::spawn(async move {
            let _guard = guard;
            let body = match copy {
                None => crate::body::empty(),
                Some(rx) => match rx.await {
                    Ok((data, trailers)) => crate::body::replay(data, trailers),
                    // Too large, failed, or not read to the end by the primary.
                    Err(_) => return,
                },
            };
            let request = shadow.map(|()| body);
            let sent = forward
                .send(ForwardRequest::new(service.clone(), request, "mirror"))
                .await;
            match sent {
                Ok(res) => {
                    let mut body = res.into_body();
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                        while let Some(Ok(_)) = body.frame().await {}
                    })
                    .await;
                }
                Err(e) => {
                    tracing::debug!(service = %service.name, error = %e, "mirrored request failed")
                }
            }
        });
        body
    }
}

/// Envoy's convention: the shadow sees `Host: <host>-shadow[:port]`.
fn shadow_host(h: &mut HeaderMap) {
    let Some(host) = h.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let shadow = match crate::headers::split_host_port(host) {
        (name, Some(port)) if !name.is_empty() => {
            format!("{name}-shadow:{port}")
        }
        _ => format!("{host}-shadow"),
    };
    if let Ok(v) = HeaderValue::try_from(shadow) {
        h.insert(header::HOST, v);
    }
}

struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(n: Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        InFlight(n)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

type Teed = (Bytes, Option<HeaderMap>);

pin_project! {
    /// Passes the primary's body through, keeping a copy of up to [`MAX_BODY`] bytes that is
    /// handed to the mirror when the body ends.
    struct Tee {
        #[pin]
        inner: ProxyBody,
        buf: BytesMut,
        trailers: Option<HeaderMap>,
        tx: Option<oneshot::Sender<Teed>>,
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if this.tx.is_some() {
                    if let Some(data) = frame.data_ref() {
                        if (this.buf.len() + data.len()) as u64 > MAX_BODY {
                            *this.tx = None;
                            *this.buf = BytesMut::new();
                        } else {
                            this.buf.extend_from_slice(data);
                        }
                    } else if let Some(t) = frame.trailers_ref() {
                        *this.trailers = Some(t.clone());
                    }
                }
                if this.inner.is_end_stream() {
                    send(this.tx, this.buf, this.trailers);
                }
            }
            Poll::Ready(None) => send(this.tx, this.buf, this.trailers),
            Poll::Ready(Some(Err(_))) => *this.tx = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn send(
    tx: &mut Option<oneshot::Sender<Teed>>,
    buf: &mut BytesMut,
    trailers: &mut Option<HeaderMap>,
) {
    if let Some(tx) = tx.take() {
        let _ = tx.send((std::mem::take(buf).freeze(), trailers.take()));
    }
}
