//! The streamed JSON formats of server-streaming calls (a JSON array, NDJSON, SSE), chosen by
//! `Accept`, and the body that writes each message in that format as it arrives.

mod accept;

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use gatehouse_common::BoxError;
use gatehouse_common::body::ProxyBody;
use http::header::{self, HeaderMap, HeaderValue};
use http_body::{Body, Frame};
use http_body_util::BodyExt;

pub use accept::negotiate;

/// How a stream of messages is written to a REST client.
///
/// An error ends the stream with one error element carrying the `google.rpc.Status` JSON (the
/// HTTP status, 200, has already gone out with the head):
///
/// | format      | message                  | end  | error                                    |
/// |-------------|--------------------------|------|------------------------------------------|
/// | `JsonArray` | `[` or `,` then the JSON | `]` (`[]` if empty) | `{"error":<status>}` as the last element, then `]` |
/// | `Ndjson`    | the JSON, `\n`           | —    | the line `{"error":<status>}`            |
/// | `Sse`       | `data: <json>\n\n`       | —    | `event: error\ndata: <status>\n\n`       |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: one JSON array, written element by element.
    JsonArray,
    /// `application/x-ndjson`: one JSON object per line.
    Ndjson,
    /// `text/event-stream`: Server-Sent Events, one `data:` event per message.
    Sse,
}

impl Format {
    /// The `Content-Type` of the answer.
    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Format::JsonArray => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Sse => "text/event-stream",
        })
    }

    /// Sets the answer's `Content-Type`, and for SSE `Cache-Control: no-cache` (an event stream
    /// is live; a cache that stored it would replay a finished one).
    pub fn set_headers(self, headers: &mut HeaderMap) {
        headers.insert(header::CONTENT_TYPE, self.content_type());
        if self == Format::Sse {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
    }

    fn media_type(self) -> (&'static str, &'static str) {
        match self {
            Format::JsonArray => ("application", "json"),
            Format::Ndjson => ("application", "x-ndjson"),
            Format::Sse => ("text", "event-stream"),
        }
    }

    /// The bytes of one message; `first` when nothing has been written yet.
    fn message(self, first: bool, json: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(json.len() + 8);
        match self {
            Format::JsonArray => {
                out.put_u8(if first { b'[' } else { b',' });
                out.put_slice(json);
            }
            Format::Ndjson => {
                put_one_line(&mut out, json);
                out.put_u8(b'\n');
            }
            Format::Sse => {
                out.put_slice(b"data: ");
                put_one_line(&mut out, json);
                out.put_slice(b"\n\n");
            }
        }
        out.freeze()
    }

    /// The bytes of the error element that ends the stream, `status` being the Status JSON.
    fn error(self, first: bool, status: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(status.len() + 24);
        match self {
            Format::JsonArray => {
                out.put_slice(if first { b"[" } else { b"," });
                out.put_slice(b"{\"error\":");
                out.put_slice(status);
                out.put_slice(b"}]");
            }
            Format::Ndjson => {
                out.put_slice(b"{\"error\":");
                put_one_line(&mut out, status);
                out.put_slice(b"}\n");
            }
            Format::Sse => {
                out.put_slice(b"event: error\ndata: ");
                put_one_line(&mut out, status);
                out.put_slice(b"\n\n");
            }
        }
        out.freeze()
    }

    /// The bytes that close a stream that ended without error, if the format has any.
    fn end(self, first: bool) -> Option<Bytes> {
        match self {
            Format::JsonArray if first => Some(Bytes::from_static(b"[]")),
            Format::JsonArray => Some(Bytes::from_static(b"]")),
            Format::Ndjson | Format::Sse => None,
        }
    }
}

/// `json` with any CR or LF replaced by a space, for the line-based formats. In JSON text they
/// can only be whitespace between tokens (inside strings they are escaped), so the value is
/// unchanged; the transcoder's own JSON is compact, so this is a check and no copy in practice.
fn put_one_line(out: &mut BytesMut, json: &[u8]) {
    if !json.iter().any(|&b| b == b'\n' || b == b'\r') {
        out.put_slice(json);
        return;
    }
    out.extend(
        json.iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
}

/// The body of a streamed answer: each item written in `format` as soon as the stream yields it,
/// one body chunk per item.
///
/// Items are `Ok(message JSON)` or `Err(Status JSON)`; the first `Err` is written as the error
/// element and ends the body (the stream is dropped then, not polled again). The stream is pulled
/// only when the connection wants more bytes, so a slow client slows the upstream through
/// backpressure and nothing but the current item is held, however long the stream.
pub fn streamed_body<S>(format: Format, items: S) -> ProxyBody
where
    S: Stream<Item = Result<Bytes, Bytes>> + Send + 'static,
{
    Streamed {
        items: Some(Box::pin(items)),
        format,
        first: true,
    }
    .boxed_unsync()
}

struct Streamed<S> {
    /// `None` once the body has ended.
    items: Option<Pin<Box<S>>>,
    format: Format,
    /// Nothing has been written yet.
    first: bool,
}

impl<S> Body for Streamed<S>
where
    S: Stream<Item = Result<Bytes, Bytes>>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(items) = this.items.as_mut() else {
            return Poll::Ready(None);
        };
        let chunk = match ready!(items.as_mut().poll_next(cx)) {
            Some(Ok(json)) => this.format.message(this.first, &json),
            Some(Err(status)) => {
                this.items = None;
                this.format.error(this.first, &status)
            }
            None => {
                this.items = None;
                match this.format.end(this.first) {
                    Some(end) => end,
                    None => return Poll::Ready(None),
                }
            }
        };
        this.first = false;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.items.is_none()
    }
}

#[cfg(test)]
mod tests;
