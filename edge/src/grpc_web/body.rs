//! The gRPC-Web bridge's streaming bodies: `-text` requests decoded from base64 as they
//! arrive, and answers re-framed for gRPC-Web (trailers as a last frame, base64 for `-text`).
//! Neither buffers more than one chunk (plus up to 3 base64 characters carried over).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use gatehouse_common::BoxError;
use gatehouse_common::body::ProxyBody;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame};

/// The flag byte of the trailers frame: the most significant bit set, uncompressed.
const TRAILERS_FLAG: u8 = 0x80;

/// A `-text` request body that is not base64; the call fails with it (a client error).
#[derive(Debug, thiserror::Error)]
#[error("the gRPC-Web text body is not valid base64: {reason}")]
pub struct BadBase64 {
    reason: String,
}

/// A `-text` request body, decoded as it streams. Base64 chunks may split anywhere, and
/// padded chunks may follow one another (`QQ==QkM=`), as the protocol allows.
pub struct TextRequestBody {
    inner: ProxyBody,
    /// Characters of an unfinished quad, waiting for the next chunk (at most 3).
    pending: BytesMut,
    ended: bool,
}

impl TextRequestBody {
    pub fn new(inner: ProxyBody) -> Self {
        TextRequestBody {
            inner,
            pending: BytesMut::new(),
            ended: false,
        }
    }

    /// Decodes the whole quads `data` completes; the rest waits for the next chunk.
    fn decode(&mut self, data: &[u8]) -> Result<Bytes, BadBase64> {
        self.pending.extend_from_slice(data);
        let whole = self.pending.len() / 4 * 4;
        let quads = self.pending.split_to(whole);
        decode_padded_chunks(&quads)
    }

    /// The end of the body: an unfinished quad is read as if padded (a client that leaves the
    /// padding off); one character alone is no base64.
    fn finish(&mut self) -> Result<Bytes, BadBase64> {
        let mut tail = std::mem::take(&mut self.pending);
        if tail.len() == 1 {
            return Err(BadBase64 {
                reason: "the body ends inside a base64 quad".to_owned(),
            });
        }
        while !tail.len().is_multiple_of(4) {
            tail.put_u8(b'=');
        }
        decode_padded_chunks(&tail)
    }
}

/// Decodes base64 made of padded chunks laid end to end: each run up to and including a quad
/// with padding is decoded on its own. `text` is whole quads.
fn decode_padded_chunks(mut text: &[u8]) -> Result<Bytes, BadBase64> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    while !text.is_empty() {
        // The end of the quad holding the first `=`; within `text`, which is whole quads.
        let end = text
            .iter()
            .position(|&b| b == b'=')
            .map_or(text.len(), |i| (i / 4 + 1) * 4);
        let (chunk, rest) = text.split_at(end);
        STANDARD
            .decode_vec(chunk, &mut out)
            .map_err(|e| BadBase64 {
                reason: e.to_string(),
            })?;
        text = rest;
    }
    Ok(Bytes::from(out))
}

impl Body for TextRequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            let decoded = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.decode(&data),
                    // Trailers (rare on a request) pass as they are.
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    this.ended = true;
                    if this.pending.is_empty() {
                        return Poll::Ready(None);
                    }
                    this.finish()
                }
            };
            match decoded {
                Ok(data) if data.is_empty() && !this.ended => continue,
                Ok(data) if data.is_empty() => return Poll::Ready(None),
                Ok(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Err(e) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || (self.inner.is_end_stream() && self.pending.is_empty())
    }
}

/// A gRPC answer re-framed as gRPC-Web: data passes through (base64-encoded for `-text`,
/// each chunk on its own, padded, so no message waits for the next), the trailers become a
/// last frame `0x80`, length, `name: value\r\n`…, and no HTTP trailers are sent.
pub struct WebResponseBody {
    inner: ProxyBody,
    text: bool,
    /// A trailers-only answer: the status is in the headers, no trailer frame is due.
    status_in_headers: bool,
    done: bool,
}

impl WebResponseBody {
    pub fn new(inner: ProxyBody, text: bool, status_in_headers: bool) -> Self {
        WebResponseBody {
            inner,
            text,
            status_in_headers,
            done: false,
        }
    }

    fn encode(&self, data: Bytes) -> Frame<Bytes> {
        match self.text {
            true => Frame::data(Bytes::from(STANDARD.encode(&data))),
            false => Frame::data(data),
        }
    }
}

/// The gRPC-Web trailers frame: flag `0x80`, the block's length (4 bytes, big-endian), then
/// an HTTP/1 header block without the closing empty line; names are lower-case already
/// (`HeaderName`), values as the upstream sent them (`-bin` values stay base64).
pub fn trailers_frame(trailers: &HeaderMap) -> Bytes {
    let len: usize = trailers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let mut frame = BytesMut::with_capacity(5 + len);
    frame.put_u8(TRAILERS_FLAG);
    frame.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    for (name, value) in trailers {
        frame.put_slice(name.as_str().as_bytes());
        frame.put_slice(b": ");
        frame.put_slice(value.as_bytes());
        frame.put_slice(b"\r\n");
    }
    frame.freeze()
}

impl Body for WebResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => return Poll::Ready(Some(Ok(this.encode(data)))),
                    Err(frame) => {
                        let Ok(trailers) = frame.into_trailers() else {
                            continue;
                        };
                        this.done = true;
                        return Poll::Ready(Some(Ok(this.encode(trailers_frame(&trailers)))));
                    }
                },
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.done = true;
                    if this.status_in_headers {
                        return Poll::Ready(None);
                    }
                    // The service ended the call without a status: gRPC clients report that as
                    // INTERNAL; say so in the frame they read.
                    let mut t = HeaderMap::new();
                    t.insert("grpc-status", HeaderValue::from(13u16));
                    t.insert(
                        "grpc-message",
                        HeaderValue::from_static(
                            "the service ended the call without a grpc-status",
                        ),
                    );
                    return Poll::Ready(Some(Ok(this.encode(trailers_frame(&t)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.status_in_headers && self.inner.is_end_stream())
    }
}
