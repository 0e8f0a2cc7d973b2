//! Body types of the proxy: the boxed body type, a request body that enforces the size limit
//! while streaming, and a response body that reports when it ends (for the access log).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use pin_project_lite::pin_project;

use crate::BoxError;

/// The body type every Gatehouse service answers with: upstream bodies stream through it
/// unchanged; local answers (errors, admin) are small full bodies.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> ProxyBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body of already-read bytes and optional trailers, replayed (a retry, a mirror copy).
pub fn replay(data: Bytes, trailers: Option<http::HeaderMap>) -> ProxyBody {
    let mut frames: Vec<Result<Frame<Bytes>, BoxError>> = Vec::with_capacity(2);
    if !data.is_empty() {
        frames.push(Ok(Frame::data(data)));
    }
    if let Some(t) = trailers {
        frames.push(Ok(Frame::trailers(t)));
    }
    if frames.is_empty() {
        return empty();
    }
    http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
}

/// The request body grew past the configured limit while streaming.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit of {limit} bytes")]
pub struct BodyLimitExceeded {
    pub limit: u64,
}

/// Set in a [`LimitedBody`]'s counter once the body has ended: the request was read whole.
/// (A bit of the counter rather than a flag of its own: no second allocation per request.)
pub const BODY_ENDED: u64 = 1 << 63;

pin_project! {
    /// A request body that counts bytes as they stream and fails once they pass `limit`.
    ///
    /// Counting while streaming (instead of buffering) keeps memory flat for large uploads;
    /// a `Content-Length` over the limit is refused before the upstream is contacted.
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        seen: u64,
        limit: u64,
        counter: Arc<AtomicU64>,
    }
}

impl<B> LimitedBody<B> {
    /// Wraps `inner`; `counter` receives the running byte count (read by the access log), with
    /// [`BODY_ENDED`] set once the body ended.
    pub fn new(inner: B, limit: u64, counter: Arc<AtomicU64>) -> Self {
        LimitedBody {
            inner,
            seen: 0,
            limit,
            counter,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.seen += data.len() as u64;
                    if *this.seen > *this.limit {
                        this.counter.store(*this.seen, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(BodyLimitExceeded {
                            limit: *this.limit,
                        }))));
                    }
                    let ended = match this.inner.is_end_stream() {
                        true => BODY_ENDED,
                        false => 0,
                    };
                    this.counter.store(*this.seen | ended, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                this.counter.fetch_or(BODY_ENDED, Ordering::Relaxed);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Called once when a response body ends, fails or is dropped.
pub trait OnEnd: Send + 'static {
    /// `bytes` is what was sent; `complete` is false when the body failed or was dropped early.
    fn on_end(self, bytes: u64, complete: bool);
}

pin_project! {
    /// A response body that counts bytes sent and calls [`OnEnd`] exactly once.
    pub struct ObservedBody<E: OnEnd> {
        #[pin]
        inner: ProxyBody,
        bytes: u64,
        end: Option<E>,
    }
    impl<E: OnEnd> PinnedDrop for ObservedBody<E> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(end) = this.end.take() {
                end.on_end(*this.bytes, false);
            }
        }
    }
}

impl<E: OnEnd> ObservedBody<E> {
    pub fn new(inner: ProxyBody, end: E) -> Self {
        let mut body = ObservedBody {
            inner,
            bytes: 0,
            end: Some(end),
        };
        // An empty body (HEAD, 204, trailers-only gRPC) may never be polled: finish it now.
        if body.inner.is_end_stream()
            && let Some(end) = body.end.take()
        {
            end.on_end(0, true);
        }
        body
    }
}

impl<E: OnEnd> Body for ObservedBody<E> {
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
                if let Some(data) = frame.data_ref() {
                    *this.bytes += data.len() as u64;
                }
                // Trailers are the last frame, and hyper may not poll again after the body says
                // it has ended: finish here rather than on drop.
                if (frame.is_trailers() || this.inner.is_end_stream())
                    && let Some(end) = this.end.take()
                {
                    end.on_end(*this.bytes, true);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(end) = this.end.take() {
                    end.on_end(*this.bytes, false);
                }
            }
            Poll::Ready(None) => {
                if let Some(end) = this.end.take() {
                    end.on_end(*this.bytes, true);
                }
            }
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
