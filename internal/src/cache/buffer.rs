//! Reading a response body into memory for the store, up to a limit, without losing a byte
//! when it turns out larger, ends with trailers or fails: then what was read is replayed ahead
//! of the rest and the response streams on as if it had never been touched.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use gatehouse_common::BoxError;
use gatehouse_common::body::{ProxyBody, empty, full};
use http::{HeaderMap, Response, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

/// An upstream response as `fetch` gives it to the cache.
#[derive(Debug)]
pub enum Fetched {
    /// The whole body in memory: a candidate for the store.
    Buffered(Response<Bytes>),
    /// A body still streaming: buffered by the cache only when the head says it may be
    /// stored, otherwise passed through untouched.
    Streaming(Response<ProxyBody>),
}

impl From<Response<ProxyBody>> for Fetched {
    fn from(res: Response<ProxyBody>) -> Self {
        Fetched::Streaming(res)
    }
}

impl From<Response<Bytes>> for Fetched {
    fn from(res: Response<Bytes>) -> Self {
        Fetched::Buffered(res)
    }
}

impl Fetched {
    /// The response to send on.
    pub fn into_response(self) -> Response<ProxyBody> {
        match self {
            Fetched::Buffered(res) => res.map(full),
            Fetched::Streaming(res) => res,
        }
    }

    /// The status and headers.
    pub(super) fn head(&self) -> (http::StatusCode, &HeaderMap) {
        match self {
            Fetched::Buffered(res) => (res.status(), res.headers()),
            Fetched::Streaming(res) => (res.status(), res.headers()),
        }
    }
}

/// Reads `res`'s body into memory if it ends within `limit` bytes, with no trailers and no
/// error: [`Fetched::Buffered`]. Otherwise [`Fetched::Streaming`], whose body yields exactly
/// what the original would have (the bytes read so far, then the trailers, the error or the
/// rest). A `Content-Length` over `limit` is not read at all.
///
/// Never fails: a body error is the client's to see, in its place in the body, as without the
/// cache.
pub async fn buffer(res: Response<ProxyBody>, limit: u64) -> Fetched {
    let declared = res
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Fetched::Streaming(res);
    }
    let (head, mut body) = res.into_parts();
    // Chunks are kept as they came (no copy) until the body is known to fit.
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut read: u64 = 0;
    loop {
        let stop = match body.frame().await {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    read = read.saturating_add(data.len() as u64);
                    chunks.push(data);
                    if read <= limit {
                        continue;
                    }
                    // Too large: the rest streams behind what was read.
                    None
                }
                // Trailers cannot be stored with the body: replay them and end.
                Err(frame) => Some(Ok(frame)),
            },
            Some(Err(err)) => Some(Err(err)),
        };
        let mut prefix: VecDeque<Result<Frame<Bytes>, BoxError>> = chunks
            .into_iter()
            .filter(|c| !c.is_empty())
            .map(|c| Ok(Frame::data(c)))
            .collect();
        let rest = match stop {
            None => body,
            Some(last) => {
                prefix.push_back(last);
                empty()
            }
        };
        return Fetched::Streaming(Response::from_parts(
            head,
            Prefixed { prefix, rest }.boxed_unsync(),
        ));
    }
    let body = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut all = BytesMut::with_capacity(usize::try_from(read).unwrap_or(0));
            for c in &chunks {
                all.extend_from_slice(c);
            }
            all.freeze()
        }
    };
    Fetched::Buffered(Response::from_parts(head, body))
}

/// A body that yields frames already read, then polls the rest.
struct Prefixed {
    prefix: VecDeque<Result<Frame<Bytes>, BoxError>>,
    rest: ProxyBody,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match this.prefix.pop_front() {
            Some(frame) => Poll::Ready(Some(frame)),
            None => Pin::new(&mut this.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let queued: u64 = self
            .prefix
            .iter()
            .filter_map(|f| f.as_ref().ok().and_then(Frame::data_ref))
            .map(|d| d.len() as u64)
            .sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(queued));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(queued));
        }
        hint
    }
}
