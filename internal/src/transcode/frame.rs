//! gRPC's length-prefixed messages: encoding one, and reading them one by one from a streaming
//! body (then its trailers), with a size limit.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gatehouse_common::BoxError;
use gatehouse_common::body::ProxyBody;
use http::HeaderMap;
use http_body_util::BodyExt;

use super::status::{self, Status};

/// The prefix of every message: 1 byte compressed flag, 4 bytes big-endian length.
const PREFIX: usize = 5;

/// Why a message could not be framed or read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A message declared (or, when encoding, was) larger than the limit. Refused from its prefix,
    /// before any of it is buffered.
    #[error("a gRPC message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: u64, limit: u64 },
    /// The compressed flag was set. The gateway only ever accepts `identity` (it sends no
    /// `grpc-accept-encoding` listing anything else), so a compressed message is refused rather
    /// than inflated.
    #[error("a compressed gRPC message was received, but only identity encoding is accepted")]
    Compressed,
    /// A flag byte other than 0 or 1 (0x80 is gRPC-Web's trailer frame, not valid in gRPC).
    #[error("invalid gRPC message flag 0x{0:02x}")]
    BadFlag(u8),
    /// The body ended in the middle of a message.
    #[error("the body ended inside a gRPC message ({buffered} bytes of an unfinished frame)")]
    Truncated { buffered: usize },
    /// The body itself failed (connection reset, stream reset, timeout…).
    #[error("the body failed while reading gRPC messages")]
    Body(#[source] BoxError),
}

impl FrameError {
    /// The gRPC code that describes the failure to the other side.
    ///
    /// - `TooLarge` → `RESOURCE_EXHAUSTED`, gRPC's code for a message over the size limit.
    /// - `Compressed`, `BadFlag`, `Truncated` → `INTERNAL`: the peer broke the protocol, which is
    ///   what gRPC clients report for a compressed response they cannot read. (A gRPC *server*
    ///   refusing a compressed request answers `UNIMPLEMENTED` with `grpc-accept-encoding:
    ///   identity`; the reverse-direction handler picks that itself.)
    /// - `Body` → `UNAVAILABLE`: the transport failed mid-call, as grpc-go reports it; the
    ///   client may retry.
    pub fn code(&self) -> i32 {
        match self {
            FrameError::TooLarge { .. } => status::RESOURCE_EXHAUSTED,
            FrameError::Compressed | FrameError::BadFlag(_) | FrameError::Truncated { .. } => {
                status::INTERNAL
            }
            FrameError::Body(_) => status::UNAVAILABLE,
        }
    }

    /// The failure as a status: [`code`](Self::code) and this error's message.
    pub fn status(&self) -> Status {
        Status::new(self.code(), self.to_string())
    }
}

/// One message framed for a gRPC body (flag 0, not compressed).
///
/// Fails only for a message the 4-byte length cannot express (4 GiB and over).
pub fn encode(msg: &[u8]) -> Result<Bytes, FrameError> {
    let mut out = BytesMut::with_capacity(PREFIX + msg.len());
    encode_into(msg, &mut out)?;
    Ok(out.freeze())
}

/// Appends one framed message to `dst` (to batch several into one body chunk).
pub fn encode_into(msg: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
    let len = u32::try_from(msg.len()).map_err(|_| FrameError::TooLarge {
        len: msg.len() as u64,
        limit: u64::from(u32::MAX),
    })?;
    dst.reserve(PREFIX + msg.len());
    dst.put_u8(0);
    dst.put_u32(len);
    dst.put_slice(msg);
    Ok(())
}

/// Reads the messages of a gRPC body as they complete, then its trailers.
///
/// Memory is bounded by one message (at most `max_message_bytes`) plus one body chunk: a new
/// chunk is read only when the buffered bytes do not hold a whole message, and a message longer
/// than the limit is refused from its prefix.
pub struct Frames {
    body: ProxyBody,
    buf: BytesMut,
    max: usize,
    trailers: Option<HeaderMap>,
    /// The body has ended or failed: `next` answers `Ok(None)` from now on.
    done: bool,
}

impl Frames {
    /// Reads `body`, refusing any message over `max_message_bytes` (gRPC's default receive
    /// limit is 4 MiB).
    pub fn new(body: ProxyBody, max_message_bytes: usize) -> Self {
        Frames {
            body,
            buf: BytesMut::new(),
            max: max_message_bytes,
            trailers: None,
            done: false,
        }
    }

    /// The next whole message (its payload, without the prefix); `Ok(None)` once the body ended
    /// cleanly, after which [`trailers`](Self::trailers) holds the trailers, if any. After an
    /// error the body is not read again and `next` answers `Ok(None)`.
    pub async fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            match self.split_message() {
                Ok(Some(msg)) => return Ok(Some(msg)),
                Ok(None) => {}
                Err(e) => {
                    // What is buffered cannot be framed: let it go with the body.
                    self.done = true;
                    self.buf = BytesMut::new();
                    return Err(e);
                }
            }
            if self.done {
                return Ok(None);
            }
            match self.body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.buf.extend_from_slice(&data),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.trailers = Some(trailers);
                        }
                    }
                },
                Some(Err(e)) => {
                    self.done = true;
                    self.buf = BytesMut::new();
                    return Err(FrameError::Body(e));
                }
                None => {
                    self.done = true;
                    if !self.buf.is_empty() {
                        let buffered = self.buf.len();
                        self.buf = BytesMut::new();
                        return Err(FrameError::Truncated { buffered });
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// The body's trailers, once [`next`](Self::next) has answered `Ok(None)` (a gRPC response
    /// carries its `grpc-status` there, unless it was trailers-only).
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// A whole message from the front of the buffer, if it is all there.
    fn split_message(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = self.buf.get(..PREFIX) else {
            return Ok(None);
        };
        match prefix[0] {
            0 => {}
            1 => return Err(FrameError::Compressed),
            flag => return Err(FrameError::BadFlag(flag)),
        }
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > self.max {
            return Err(FrameError::TooLarge {
                len: len as u64,
                limit: self.max as u64,
            });
        }
        if self.buf.len() - PREFIX < len {
            // Room for the rest of this message, so the next chunks append without regrowing.
            self.buf.reserve(PREFIX + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(PREFIX);
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

#[cfg(test)]
mod tests;
