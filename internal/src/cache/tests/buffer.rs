//! `buffer`: a body within the limit comes back in memory; any other comes back streaming and
//! yields exactly what the original would have.

use std::collections::VecDeque;

use bytes::Bytes;
use gatehouse_common::BoxError;
use http::{HeaderMap, HeaderValue, Response};
use http_body::Frame;
use http_body_util::BodyExt;

use super::Chunks;
use crate::cache::{Fetched, buffer};

fn res(body: gatehouse_common::body::ProxyBody) -> Response<gatehouse_common::body::ProxyBody> {
    Response::builder()
        .header("x-kept", "1")
        .body(body)
        .expect("response")
}

/// Every frame of a streaming answer: data as text, then `trailers` or `error`.
async fn frames(fetched: Fetched) -> Vec<String> {
    let Fetched::Streaming(res) = fetched else {
        panic!("expected a streaming response");
    };
    assert_eq!(res.headers()["x-kept"], "1");
    let mut body = res.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => out.push(String::from_utf8_lossy(&data).into_owned()),
                Err(frame) => {
                    let trailers = frame.into_trailers().expect("trailers");
                    out.push(format!("trailers {}", trailers.len()));
                }
            },
            Err(err) => {
                out.push(format!("error {err}"));
                break;
            }
        }
    }
    out
}

#[tokio::test]
async fn within_the_limit_is_buffered() {
    for (chunks, limit) in [
        (&[b"ab".as_slice(), b"cd", b"ef"][..], 6),
        (&[b"abcdef".as_slice()][..], 100),
        (&[][..], 0),
    ] {
        let Fetched::Buffered(got) = buffer(res(Chunks::body(chunks)), limit).await else {
            panic!("{chunks:?} within {limit} bytes is buffered");
        };
        assert_eq!(got.headers()["x-kept"], "1");
        assert_eq!(got.body(), &Bytes::from(chunks.concat()));
    }
}

#[tokio::test]
async fn over_the_limit_streams_every_byte() {
    let got = buffer(res(Chunks::body(&[b"ab", b"cd", b"ef", b"gh"])), 5).await;
    assert_eq!(frames(got).await, ["ab", "cd", "ef", "gh"]);
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_not_read() {
    let mut r = res(Chunks::body(&[b"0123456789"]));
    r.headers_mut()
        .insert("content-length", HeaderValue::from_static("10"));
    let got = buffer(r, 9).await;
    assert_eq!(frames(got).await, ["0123456789"]);
}

#[tokio::test]
async fn trailers_and_errors_are_replayed_in_place() {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let with_trailers = Chunks(VecDeque::from([
        Ok(Frame::data(Bytes::from_static(b"ab"))),
        Ok(Frame::trailers(trailers)),
    ]));
    let got = buffer(res(with_trailers.boxed_unsync()), 100).await;
    assert_eq!(frames(got).await, ["ab", "trailers 1"]);

    let failing = Chunks(VecDeque::from([
        Ok(Frame::data(Bytes::from_static(b"ab"))),
        Ok(Frame::data(Bytes::from_static(b"cd"))),
        Err(BoxError::from("connection reset")),
    ]));
    let got = buffer(res(failing.boxed_unsync()), 100).await;
    assert_eq!(frames(got).await, ["ab", "cd", "error connection reset"]);
}
