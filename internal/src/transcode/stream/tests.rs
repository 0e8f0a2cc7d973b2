//! Tests of the streamed formats: exact bytes per format, errors, laziness over long streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{FutureExt as _, StreamExt as _};

use super::*;

const STATUS: &str = r#"{"code":13,"message":"boom","details":[]}"#;

fn msg(json: &'static str) -> Result<Bytes, Bytes> {
    Ok(Bytes::from_static(json.as_bytes()))
}

fn failure() -> Result<Bytes, Bytes> {
    Err(Bytes::from_static(STATUS.as_bytes()))
}

/// Every chunk of the body, in order.
async fn chunks(mut body: ProxyBody) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let data = frame
            .expect("the body never fails")
            .into_data()
            .expect("data only");
        out.push(String::from_utf8(data.to_vec()).expect("UTF-8"));
    }
    assert!(body.is_end_stream());
    out
}

#[tokio::test]
async fn exact_bytes_per_format() {
    use Format::{JsonArray, Ndjson, Sse};
    let empty = Vec::new;
    let one = || vec![msg(r#"{"id":"1"}"#)];
    let many = || {
        vec![
            msg(r#"{"id":"1"}"#),
            msg(r#"{"id":"2"}"#),
            msg(r#"{"id":"3"}"#),
        ]
    };
    let error_first = || vec![failure(), msg(r#"{"id":"never"}"#)];
    let error_after = || {
        vec![
            msg(r#"{"id":"1"}"#),
            msg(r#"{"id":"2"}"#),
            failure(),
            msg(r#"{"id":"never"}"#),
        ]
    };
    // Pretty-printed JSON stays one line in the line-based formats.
    let multiline = || vec![msg("{\n  \"id\": \"1\"\r\n}")];
    type Items = fn() -> Vec<Result<Bytes, Bytes>>;
    let cases: Vec<(Format, &str, Items, Vec<&str>)> = vec![
        (JsonArray, "empty", empty, vec!["[]"]),
        (JsonArray, "one", one, vec![r#"[{"id":"1"}"#, "]"]),
        (
            JsonArray,
            "many",
            many,
            vec![r#"[{"id":"1"}"#, r#",{"id":"2"}"#, r#",{"id":"3"}"#, "]"],
        ),
        (
            JsonArray,
            "error first",
            error_first,
            vec![r#"[{"error":{"code":13,"message":"boom","details":[]}}]"#],
        ),
        (
            JsonArray,
            "error after some",
            error_after,
            vec![
                r#"[{"id":"1"}"#,
                r#",{"id":"2"}"#,
                r#",{"error":{"code":13,"message":"boom","details":[]}}]"#,
            ],
        ),
        (
            JsonArray,
            "multiline kept",
            multiline,
            vec!["[{\n  \"id\": \"1\"\r\n}", "]"],
        ),
        (Ndjson, "empty", empty, vec![]),
        (Ndjson, "one", one, vec!["{\"id\":\"1\"}\n"]),
        (
            Ndjson,
            "many",
            many,
            vec!["{\"id\":\"1\"}\n", "{\"id\":\"2\"}\n", "{\"id\":\"3\"}\n"],
        ),
        (
            Ndjson,
            "error first",
            error_first,
            vec!["{\"error\":{\"code\":13,\"message\":\"boom\",\"details\":[]}}\n"],
        ),
        (
            Ndjson,
            "error after some",
            error_after,
            vec![
                "{\"id\":\"1\"}\n",
                "{\"id\":\"2\"}\n",
                "{\"error\":{\"code\":13,\"message\":\"boom\",\"details\":[]}}\n",
            ],
        ),
        (
            Ndjson,
            "multiline joined",
            multiline,
            vec!["{   \"id\": \"1\"  }\n"],
        ),
        (Sse, "empty", empty, vec![]),
        (Sse, "one", one, vec!["data: {\"id\":\"1\"}\n\n"]),
        (
            Sse,
            "many",
            many,
            vec![
                "data: {\"id\":\"1\"}\n\n",
                "data: {\"id\":\"2\"}\n\n",
                "data: {\"id\":\"3\"}\n\n",
            ],
        ),
        (
            Sse,
            "error first",
            error_first,
            vec!["event: error\ndata: {\"code\":13,\"message\":\"boom\",\"details\":[]}\n\n"],
        ),
        (
            Sse,
            "error after some",
            error_after,
            vec![
                "data: {\"id\":\"1\"}\n\n",
                "data: {\"id\":\"2\"}\n\n",
                "event: error\ndata: {\"code\":13,\"message\":\"boom\",\"details\":[]}\n\n",
            ],
        ),
        (
            Sse,
            "multiline joined",
            multiline,
            vec!["data: {   \"id\": \"1\"  }\n\n"],
        ),
    ];
    for (format, name, items, want) in cases {
        let body = streamed_body(format, futures_util::stream::iter(items()));
        assert_eq!(chunks(body).await, want, "{format:?}: {name}");
    }
}

#[test]
fn headers_per_format() {
    let cases = [
        (Format::JsonArray, "application/json", None),
        (Format::Ndjson, "application/x-ndjson", None),
        (Format::Sse, "text/event-stream", Some("no-cache")),
    ];
    for (format, content_type, cache_control) in cases {
        let mut headers = HeaderMap::new();
        format.set_headers(&mut headers);
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{format:?}");
        assert_eq!(
            headers
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
            cache_control,
            "{format:?}"
        );
    }
}

/// 10,000 messages come out one chunk per message, each pulled from the stream only when the
/// body is asked for its next chunk: nothing is read ahead or held.
#[tokio::test]
async fn long_streams_are_pulled_lazily() {
    const N: usize = 10_000;
    for format in [Format::JsonArray, Format::Ndjson, Format::Sse] {
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let items = futures_util::stream::iter(0..N).map(move |i| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(Bytes::from(format!(r#"{{"n":{i}}}"#)))
        });
        let mut body = streamed_body(format, items);
        let mut frames = 0;
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            frames += 1;
            assert_eq!(
                pulled.load(Ordering::SeqCst),
                frames.min(N),
                "{format:?}: pulled ahead"
            );
            bytes.extend_from_slice(&frame.expect("ok").into_data().expect("data"));
        }
        let values: Vec<serde_json::Value> = match format {
            Format::JsonArray => {
                assert_eq!(frames, N + 1, "one chunk per message, then `]`");
                serde_json::from_slice(&bytes).expect("one JSON array")
            }
            Format::Ndjson => {
                assert_eq!(frames, N);
                bytes
                    .split(|&b| b == b'\n')
                    .filter(|line| !line.is_empty())
                    .map(|line| serde_json::from_slice(line).expect("a JSON line"))
                    .collect()
            }
            Format::Sse => {
                assert_eq!(frames, N);
                String::from_utf8(bytes)
                    .expect("UTF-8")
                    .split_terminator("\n\n")
                    .map(|event| {
                        let data = event.strip_prefix("data: ").expect("a data event");
                        serde_json::from_str(data).expect("JSON data")
                    })
                    .collect()
            }
        };
        assert_eq!(values.len(), N, "{format:?}");
        assert_eq!(values[N - 1]["n"], N - 1, "{format:?}");
    }
}

/// A message is written as soon as the stream yields it; the body waits (no chunk) meanwhile.
#[tokio::test]
async fn writes_each_message_when_it_arrives() {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Bytes>>(1);
    let items = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut body = streamed_body(Format::Ndjson, items);
    assert!(
        body.frame().now_or_never().is_none(),
        "nothing to write yet"
    );
    tx.send(msg(r#"{"id":"1"}"#)).await.expect("open");
    let first = body.frame().await.expect("a chunk").expect("ok");
    assert_eq!(first.into_data().expect("data"), "{\"id\":\"1\"}\n");
    assert!(
        body.frame().now_or_never().is_none(),
        "waiting for the next message"
    );
    drop(tx);
    assert!(body.frame().await.is_none());
    assert!(body.is_end_stream());
}

/// The pieces fit as the handler will use them: gRPC frames read from an upstream body, each
/// message turned into JSON, the status from the trailers ending the stream. The stream is `Send`
/// as `streamed_body` requires.
#[tokio::test]
async fn fed_from_grpc_frames() {
    use crate::transcode::frame::{Frames, encode};
    use crate::transcode::status::Status;

    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("5"));
    trailers.insert("grpc-message", HeaderValue::from_static("no%20more"));
    let upstream: Vec<Result<Frame<Bytes>, BoxError>> = vec![
        Ok(Frame::data(encode(b"1").expect("small"))),
        Ok(Frame::data(encode(b"2").expect("small"))),
        Ok(Frame::trailers(trailers)),
    ];
    let upstream = http_body_util::StreamBody::new(futures_util::stream::iter(upstream));
    let frames = Frames::new(upstream.boxed_unsync(), 1024);
    let items = futures_util::stream::unfold(Some(frames), |frames| async move {
        let mut frames = frames?;
        let pool = prost_reflect::DescriptorPool::new();
        match frames.next().await {
            // A stand-in for the protobuf → JSON step.
            Ok(Some(msg)) => {
                let json = format!(r#"{{"n":{}}}"#, String::from_utf8_lossy(&msg));
                Some((Ok(Bytes::from(json)), Some(frames)))
            }
            Ok(None) => match frames.trailers().and_then(Status::from_metadata) {
                Some(status) if status.code == 0 => None,
                Some(status) => Some((Err(status.to_json(&pool)), None)),
                None => Some((Err(Status::missing().to_json(&pool)), None)),
            },
            Err(e) => Some((Err(e.status().to_json(&pool)), None)),
        }
    });
    let body = streamed_body(Format::Ndjson, items);
    let want = [
        "{\"n\":1}\n",
        "{\"n\":2}\n",
        "{\"error\":{\"code\":5,\"message\":\"no more\",\"details\":[]}}\n",
    ];
    assert_eq!(chunks(body).await, want);
}
