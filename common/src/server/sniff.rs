//! Which protocol a new connection speaks: HTTP/2 when it opens with the HTTP/2 preface,
//! HTTP/1 as soon as a byte differs from it.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use super::ActivityIo;
use crate::plan::Limits;

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    Http1,
    Http2,
}

/// Reads until the protocol is known (at most the preface's 24 bytes) and leaves what it read
/// to be replayed. `None`: the client closed, stayed silent past the header-read timeout, or
/// the gateway is draining.
pub(super) async fn protocol<I: AsyncRead + Unpin>(
    io: &mut ActivityIo<I>,
    limits: Limits,
    drain: &CancellationToken,
) -> Option<Protocol> {
    let mut buf = [0u8; PREFACE.len()];
    let mut n = 0;
    let deadline = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(deadline);
    let proto = loop {
        let read = tokio::select! {
            r = io.read(&mut buf[n..]) => r,
            _ = &mut deadline => {
                tracing::debug!("no request head within the header-read timeout");
                return None;
            }
            _ = drain.cancelled() => return None,
        };
        match read {
            Ok(0) => return None,
            Ok(k) => n += k,
            Err(e) => {
                tracing::debug!(error = %e, "connection failed before its first request");
                return None;
            }
        }
        match decide(&buf[..n]) {
            Some(p) => break p,
            None => continue,
        }
    };
    io.replay = Bytes::copy_from_slice(&buf[..n]);
    Some(proto)
}

/// `None` while `seen` is a proper prefix of the preface.
fn decide(seen: &[u8]) -> Option<Protocol> {
    if !PREFACE.starts_with(seen) {
        Some(Protocol::Http1)
    } else if seen.len() == PREFACE.len() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decides_on_the_first_byte_that_differs_or_the_whole_preface() {
        let cases: &[(&[u8], Option<Protocol>)] = &[
            (b"G", Some(Protocol::Http1)),
            (b"GET / HTTP/1.1\r\n", Some(Protocol::Http1)),
            (b"P", None),
            (b"POST", Some(Protocol::Http1)),
            (b"PRI * HTTP/2.0\r\n", None),
            (b"PRI * HTTP/1.1\r\n", Some(Protocol::Http1)),
            (PREFACE, Some(Protocol::Http2)),
        ];
        for (seen, want) in cases {
            assert_eq!(decide(seen), *want, "{:?}", String::from_utf8_lossy(seen));
        }
    }
}
