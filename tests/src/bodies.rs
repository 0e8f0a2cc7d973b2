//! Request bodies for tests: generated streams of any size, and bodies with trailers.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use gatehouse_common::BoxError;
use gatehouse_common::body::ProxyBody;
use http::HeaderMap;
use http_body::{Body, Frame};
use http_body_util::BodyExt;

/// A body of `total` bytes sent in `chunk`-sized frames without a known length (chunked on
/// HTTP/1.1), generated on the fly so the test itself holds one chunk at a time.
pub fn generated(total: u64, chunk: usize) -> ProxyBody {
    Generated {
        remaining: total,
        chunk: Bytes::from(vec![b'x'; chunk]),
    }
    .boxed_unsync()
}

struct Generated {
    remaining: u64,
    chunk: Bytes,
}

impl Body for Generated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = (self.chunk.len() as u64).min(self.remaining) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }
}

/// A body made of the given data frames followed by `trailers`.
pub fn with_trailers(chunks: Vec<&'static str>, trailers: HeaderMap) -> ProxyBody {
    let mut frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
        .into_iter()
        .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
        .collect();
    frames.push(Ok(Frame::trailers(trailers)));
    http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
}
