//! Tests of the gRPC framing: encoding, and reading messages however the body chunks them.

use std::convert::Infallible;

use futures_util::StreamExt as _;
use http::HeaderValue;
use http_body::Frame;
use http_body_util::StreamBody;

use super::*;

/// What reading a body gave, in order.
#[derive(Debug, PartialEq)]
enum Got {
    Msg(Bytes),
    Fail(&'static str),
    End,
}

fn m(payload: &'static [u8]) -> Got {
    Got::Msg(Bytes::from_static(payload))
}

/// The frames a test body yields, in order.
type Chunks = Vec<Result<Frame<Bytes>, BoxError>>;

fn body(frames: Chunks) -> ProxyBody {
    StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
}

fn data(bytes: &[u8]) -> Result<Frame<Bytes>, BoxError> {
    Ok(Frame::data(Bytes::copy_from_slice(bytes)))
}

fn trailers() -> Result<Frame<Bytes>, BoxError> {
    let mut map = HeaderMap::new();
    map.insert("grpc-status", HeaderValue::from_static("0"));
    Ok(Frame::trailers(map))
}

fn framed(msgs: &[&[u8]]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for msg in msgs {
        encode_into(msg, &mut out).expect("small message");
    }
    out.to_vec()
}

fn kind(e: &FrameError) -> &'static str {
    match e {
        FrameError::TooLarge { .. } => "too large",
        FrameError::Compressed => "compressed",
        FrameError::BadFlag(_) => "bad flag",
        FrameError::Truncated { .. } => "truncated",
        FrameError::Body(_) => "body",
    }
}

/// Reads until the end or an error, then once more (which must be a quiet end).
async fn read_all(frames: &mut Frames) -> Vec<Got> {
    let mut got = Vec::new();
    loop {
        match frames.next().await {
            Ok(Some(msg)) => got.push(Got::Msg(msg)),
            Ok(None) => {
                got.push(Got::End);
                break;
            }
            Err(e) => {
                got.push(Got::Fail(kind(&e)));
                break;
            }
        }
    }
    assert!(
        matches!(frames.next().await, Ok(None)),
        "quiet after the end"
    );
    got
}

#[test]
fn encodes_the_prefix() {
    let cases: [(&[u8], &[u8]); 3] = [
        (b"", &[0, 0, 0, 0, 0]),
        (b"abc", &[0, 0, 0, 0, 3, b'a', b'b', b'c']),
        (&[7; 300], &[0, 0, 0, 1, 44]),
    ];
    for (msg, prefix) in cases {
        let out = encode(msg).expect("small message");
        assert_eq!(&out[..PREFIX], &prefix[..PREFIX], "{} bytes", msg.len());
        assert_eq!(&out[PREFIX..], msg);
    }
}

#[tokio::test]
async fn reads_messages_however_chunked() {
    use Got::{End, Fail};
    let two = framed(&[b"hello", b"world"]);
    let err = || -> Result<Frame<Bytes>, BoxError> { Err("connection reset".into()) };
    let cases: Vec<(&str, Chunks, usize, Vec<Got>, bool)> = vec![
        ("empty body", vec![], 16, vec![End], false),
        ("trailers only", vec![trailers()], 16, vec![End], true),
        (
            "one message",
            vec![data(&framed(&[b"hello"])), trailers()],
            16,
            vec![m(b"hello"), End],
            true,
        ),
        (
            "empty message",
            vec![data(&framed(&[b""]))],
            16,
            vec![m(b""), End],
            false,
        ),
        (
            "two in one chunk",
            vec![data(&two)],
            16,
            vec![m(b"hello"), m(b"world"), End],
            false,
        ),
        (
            "split inside the prefix and the payload",
            vec![
                data(&two[..2]),
                data(&two[2..7]),
                data(&two[7..13]),
                data(&two[13..]),
                trailers(),
            ],
            16,
            vec![m(b"hello"), m(b"world"), End],
            true,
        ),
        (
            "empty chunks",
            vec![data(b""), data(&two), data(b"")],
            16,
            vec![m(b"hello"), m(b"world"), End],
            false,
        ),
        (
            "exactly the limit",
            vec![data(&framed(&[b"hello"]))],
            5,
            vec![m(b"hello"), End],
            false,
        ),
        // Refused from the prefix alone: the payload never arrives.
        (
            "over the limit",
            vec![data(&two[..PREFIX])],
            4,
            vec![Fail("too large")],
            false,
        ),
        (
            "second over the limit",
            vec![data(&framed(&[b"ok", b"toolong"]))],
            4,
            vec![m(b"ok"), Fail("too large")],
            false,
        ),
        (
            "declared 4 GiB",
            vec![data(&[0, 0xff, 0xff, 0xff, 0xff])],
            4 << 20,
            vec![Fail("too large")],
            false,
        ),
        (
            "compressed",
            vec![data(&[1, 0, 0, 0, 1, 0x1f])],
            16,
            vec![Fail("compressed")],
            false,
        ),
        (
            "gRPC-Web trailer flag",
            vec![data(&[0x80, 0, 0, 0, 0])],
            16,
            vec![Fail("bad flag")],
            false,
        ),
        (
            "truncated prefix",
            vec![data(&two[..3])],
            16,
            vec![Fail("truncated")],
            false,
        ),
        (
            "truncated payload",
            vec![data(&two[..12])],
            16,
            vec![m(b"hello"), Fail("truncated")],
            false,
        ),
        (
            "body error mid-message",
            vec![data(&two[..12]), err()],
            16,
            vec![m(b"hello"), Fail("body")],
            false,
        ),
        (
            "body error between messages",
            vec![data(&two[..10]), err()],
            16,
            vec![m(b"hello"), Fail("body")],
            false,
        ),
    ];
    for (name, frames, limit, want, has_trailers) in cases {
        let mut frames = Frames::new(body(frames), limit);
        assert_eq!(read_all(&mut frames).await, want, "{name}");
        assert_eq!(
            frames.trailers().is_some(),
            has_trailers,
            "{name}: trailers"
        );
    }
}

#[tokio::test]
async fn one_byte_at_a_time() {
    let msgs: [&[u8]; 4] = [b"a", b"", &[9; 70], b"last"];
    let bytes = framed(&msgs);
    let chunks = bytes.iter().map(|b| data(&[*b])).collect();
    let mut frames = Frames::new(body(chunks), 1024);
    for want in msgs {
        assert_eq!(frames.next().await.expect("ok").as_deref(), Some(want));
    }
    assert!(matches!(frames.next().await, Ok(None)));
}

/// A message is handed over as soon as its last byte arrives, while the body is still open.
#[tokio::test]
async fn yields_before_the_body_ends() {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .map(|item| item.map_err(|never| -> BoxError { match never {} }));
    let mut frames = Frames::new(StreamBody::new(stream).boxed_unsync(), 16);
    let bytes = framed(&[b"first", b"second"]);
    let send = |b: &[u8]| Ok(Frame::data(Bytes::copy_from_slice(b)));
    tx.send(send(&bytes[..13])).await.expect("open");
    assert_eq!(
        frames.next().await.expect("ok").as_deref(),
        Some(&b"first"[..])
    );
    tx.send(send(&bytes[13..])).await.expect("open");
    assert_eq!(
        frames.next().await.expect("ok").as_deref(),
        Some(&b"second"[..])
    );
    drop(tx);
    assert!(matches!(frames.next().await, Ok(None)));
}

#[test]
fn errors_carry_a_code() {
    use crate::transcode::status::*;
    let cases = [
        (
            FrameError::TooLarge { len: 10, limit: 4 },
            RESOURCE_EXHAUSTED,
        ),
        (FrameError::Compressed, INTERNAL),
        (FrameError::BadFlag(0x80), INTERNAL),
        (FrameError::Truncated { buffered: 3 }, INTERNAL),
        (FrameError::Body("reset".into()), UNAVAILABLE),
    ];
    for (err, code) in cases {
        let status = err.status();
        assert_eq!(status.code, code, "{err}");
        assert_eq!(status.message, err.to_string());
    }
}
