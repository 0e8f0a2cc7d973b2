//! The bridge without sockets: which content types are gRPC-Web, base64 split anywhere and
//! padded chunks end to end, the trailers frame, and what each kind of answer becomes.

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use gatehouse_common::BoxError;
use gatehouse_common::body::{ProxyBody, full};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, StreamBody};

use super::body::trailers_frame;
use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

/// A body of these frames, one poll each.
fn frames(list: Vec<Frame<Bytes>>) -> ProxyBody {
    let items: VecDeque<Result<Frame<Bytes>, BoxError>> = list.into_iter().map(Ok).collect();
    StreamBody::new(futures_util::stream::iter(items)).boxed_unsync()
}

fn chunks(list: &[&[u8]]) -> ProxyBody {
    frames(
        list.iter()
            .map(|c| Frame::data(Bytes::copy_from_slice(c)))
            .collect(),
    )
}

async fn bytes_of(body: ProxyBody) -> Result<Vec<u8>, BoxError> {
    let collected = body.collect().await?;
    assert!(collected.trailers().is_none(), "no HTTP trailers");
    Ok(collected.to_bytes().to_vec())
}

/// (request is text, answer is text, answer type, upstream type)
type Detected = (bool, bool, &'static str, &'static str);

#[test]
fn recognises_grpc_web_content_types() {
    // content type, accept → what is detected
    let cases: [(&str, &str, Option<Detected>); 11] = [
        (
            "application/grpc-web",
            "",
            Some((false, false, "application/grpc-web", "application/grpc")),
        ),
        (
            "application/grpc-web+proto",
            "",
            Some((
                false,
                false,
                "application/grpc-web+proto",
                "application/grpc+proto",
            )),
        ),
        (
            "application/grpc-web-text",
            "",
            Some((true, true, "application/grpc-web-text", "application/grpc")),
        ),
        (
            "application/grpc-web-text+proto",
            "",
            Some((
                true,
                true,
                "application/grpc-web-text+proto",
                "application/grpc+proto",
            )),
        ),
        (
            "Application/GRPC-Web+Proto; charset=utf-8",
            "",
            Some((
                false,
                false,
                "application/grpc-web+proto",
                "application/grpc+proto",
            )),
        ),
        (
            "application/grpc-web+json",
            "",
            Some((
                false,
                false,
                "application/grpc-web+json",
                "application/grpc+json",
            )),
        ),
        // Binary request, text answer asked for by Accept (PROTOCOL-WEB).
        (
            "application/grpc-web+proto",
            "application/grpc-web-text",
            Some((
                false,
                true,
                "application/grpc-web-text+proto",
                "application/grpc+proto",
            )),
        ),
        ("application/grpc", "", None),
        ("application/grpc+proto", "", None),
        ("application/grpc-webby", "", None),
        ("application/grpc-web+", "", None),
    ];
    for (ct, accept, want) in cases {
        let mut h = headers(&[("content-type", ct)]);
        if !accept.is_empty() {
            h.insert("accept", HeaderValue::from_str(accept).expect("accept"));
        }
        let got = GrpcWeb::detect(&h).map(|w| {
            (
                w.text_request,
                w.text_response,
                w.content_type.to_str().expect("ascii").to_owned(),
                w.upstream_type.to_str().expect("ascii").to_owned(),
            )
        });
        let want = want.map(|(a, b, c, d)| (a, b, c.to_owned(), d.to_owned()));
        assert_eq!(got, want, "content-type {ct:?}, accept {accept:?}");
    }
    assert!(GrpcWeb::detect(&HeaderMap::new()).is_none());
}

#[tokio::test]
async fn text_requests_decode_wherever_the_chunks_split() {
    let payload: Vec<u8> = (0u8..=255).chain(0..17).collect();
    let text = STANDARD.encode(&payload);
    for split in 0..=text.len() {
        let (a, b) = text.as_bytes().split_at(split);
        let body = TextRequestBody::new(chunks(&[a, b])).boxed_unsync();
        assert_eq!(
            bytes_of(body).await.expect("decodes"),
            payload,
            "split at {split}"
        );
    }
    // One character per chunk.
    let singles: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
    let body = TextRequestBody::new(chunks(&singles)).boxed_unsync();
    assert_eq!(bytes_of(body).await.expect("decodes"), payload);
}

#[tokio::test]
async fn text_requests_take_padded_chunks_end_to_end() {
    // "A", "BC", "DEF", each encoded on its own and padded, then split mid-quad.
    let text = format!(
        "{}{}{}",
        STANDARD.encode("A"),
        STANDARD.encode("BC"),
        STANDARD.encode("DEF")
    );
    assert_eq!(text, "QQ==QkM=REVG");
    let body = TextRequestBody::new(chunks(&[b"QQ=", b"=Qk", b"M=REVG"])).boxed_unsync();
    assert_eq!(bytes_of(body).await.expect("decodes"), b"ABCDEF");
    // Unpadded at the very end: read as if padded.
    let body = TextRequestBody::new(chunks(&[b"QUJD", b"RA"])).boxed_unsync();
    assert_eq!(bytes_of(body).await.expect("decodes"), b"ABCD");
}

#[tokio::test]
async fn bad_base64_fails_the_body() {
    for bad in [&b"QUJ*"[..], b"Q===", b"QUJDR", b"=QUJ", b"QQ==Q"] {
        let body = TextRequestBody::new(chunks(&[bad])).boxed_unsync();
        let err = bytes_of(body).await.expect_err("refused");
        assert!(
            gatehouse_common::error::find_cause::<BadBase64>(&*err).is_some(),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn the_trailers_frame_is_an_http1_header_block() {
    let t = headers(&[
        ("grpc-status", "5"),
        ("grpc-message", "no order o-9"),
        ("x-tag", "a"),
        ("x-tag", "b"),
    ]);
    let frame = trailers_frame(&t);
    let block = b"grpc-status: 5\r\ngrpc-message: no order o-9\r\nx-tag: a\r\nx-tag: b\r\n";
    assert_eq!(frame[0], 0x80);
    assert_eq!(
        &frame[1..5],
        &u32::try_from(block.len()).expect("len").to_be_bytes()
    );
    assert_eq!(&frame[5..], block);
}

fn web(ct: &str, translate: bool) -> GrpcWeb {
    let mut w = GrpcWeb::detect(&headers(&[("content-type", ct)])).expect("gRPC-Web");
    w.translate = translate;
    w
}

fn answer(
    status: StatusCode,
    hdrs: &[(&str, &str)],
    body: ProxyBody,
) -> (http::response::Parts, ProxyBody) {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = headers(hdrs);
    res.into_parts()
}

#[tokio::test]
async fn grpc_answers_become_frames_with_a_trailers_frame() {
    let message = Bytes::from_static(b"\x00\x00\x00\x00\x03abc");
    let trailers = headers(&[("grpc-status", "0")]);
    for text in [false, true] {
        let ct = if text {
            "application/grpc-web-text+proto"
        } else {
            "application/grpc-web+proto"
        };
        let body = frames(vec![
            Frame::data(message.clone()),
            Frame::data(message.clone()),
            Frame::trailers(trailers.clone()),
        ]);
        let (mut parts, body) = answer(
            StatusCode::OK,
            &[
                ("content-type", "application/grpc+proto"),
                ("content-length", "16"),
            ],
            body,
        );
        let out = bytes_of(web(ct, true).response(&mut parts, body))
            .await
            .expect("body");
        assert_eq!(parts.headers["content-type"], ct);
        assert!(parts.headers.get("content-length").is_none());
        let mut want = [&message[..], &message[..]].concat();
        want.extend_from_slice(&trailers_frame(&trailers));
        if text {
            // Each chunk on its own, padded: 8 bytes → 12 characters, twice, then the frame.
            let frame = STANDARD.encode(trailers_frame(&trailers));
            let expect = format!(
                "{}{}{frame}",
                STANDARD.encode(&message),
                STANDARD.encode(&message)
            );
            assert_eq!(String::from_utf8(out).expect("ascii"), expect);
        } else {
            assert_eq!(out, want);
        }
    }
}

#[tokio::test]
async fn trailers_only_answers_keep_their_status_in_the_headers() {
    let (mut parts, body) = answer(
        StatusCode::OK,
        &[
            ("content-type", "application/grpc"),
            ("grpc-status", "5"),
            ("grpc-message", "gone"),
        ],
        gatehouse_common::body::empty(),
    );
    let body = web("application/grpc-web-text", true).response(&mut parts, body);
    assert!(body.is_end_stream(), "nothing to stream");
    assert_eq!(parts.headers["content-type"], "application/grpc-web-text");
    assert_eq!(parts.headers["grpc-status"], "5");
    assert!(bytes_of(body).await.expect("body").is_empty());
}

#[tokio::test]
async fn a_call_ended_without_status_reads_internal() {
    let (mut parts, body) = answer(
        StatusCode::OK,
        &[("content-type", "application/grpc")],
        chunks(&[b"\x00\x00\x00\x00\x00"]),
    );
    let out = bytes_of(web("application/grpc-web", true).response(&mut parts, body))
        .await
        .expect("body");
    assert_eq!(&out[..5], b"\x00\x00\x00\x00\x00");
    let block = String::from_utf8_lossy(&out[10..]).into_owned();
    assert_eq!(out[5], 0x80);
    assert!(block.starts_with("grpc-status: 13\r\n"), "{block}");
}

#[tokio::test]
async fn answers_that_are_not_grpc_become_a_status() {
    // (HTTP status, content type) → grpc-status (grpc/grpc http-grpc-status-mapping.md)
    for (status, ct, code) in [
        (404, "text/html", "12"),
        (503, "application/problem+json", "14"),
        (401, "text/plain", "16"),
        (200, "text/html", "2"),
        (500, "application/grpc", "2"),
    ] {
        let status = StatusCode::from_u16(status).expect("status");
        let (mut parts, body) = answer(
            status,
            &[("content-type", ct), ("content-length", "5")],
            full("oops!"),
        );
        let body = web("application/grpc-web+proto", true).response(&mut parts, body);
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(parts.headers["grpc-status"], code, "{status} {ct}");
        assert_eq!(parts.headers["content-type"], "application/grpc-web+proto");
        assert!(parts.headers.get("content-length").is_none());
        assert!(bytes_of(body).await.expect("body").is_empty());
    }
}

#[tokio::test]
async fn untranslated_calls_only_get_the_edges_own_answers_retyped() {
    // The edge's own refusal (trailers-only, native type) gets the caller's type.
    let (mut parts, body) = answer(
        StatusCode::OK,
        &[("content-type", "application/grpc"), ("grpc-status", "16")],
        gatehouse_common::body::empty(),
    );
    let _ = web("application/grpc-web-text", false).response(&mut parts, body);
    assert_eq!(parts.headers["content-type"], "application/grpc-web-text");
    // A service that speaks gRPC-Web itself is left alone.
    let (mut parts, body) = answer(
        StatusCode::OK,
        &[("content-type", "application/grpc-web+proto")],
        full("as is"),
    );
    let out = bytes_of(web("application/grpc-web+proto", false).response(&mut parts, body))
        .await
        .expect("body");
    assert_eq!(out, b"as is");
}

#[test]
fn grpc_web_cors_adds_its_headers_once() {
    let s = CorsSettings {
        allow_origins: vec!["https://app.example".into()],
        allow_methods: vec![],
        allow_headers: vec!["Authorization".into(), "Content-Type".into()],
        expose_headers: vec!["x-request-id".into(), "grpc-status".into()],
        allow_credentials: false,
        max_age: None,
    };
    let out = cors_settings(&s);
    assert_eq!(
        out.allow_headers,
        [
            "Authorization",
            "Content-Type",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
            "x-accept-content-transfer-encoding",
            "x-accept-response-streaming"
        ]
    );
    assert_eq!(
        out.expose_headers,
        [
            "x-request-id",
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin"
        ]
    );
    assert_eq!(out.allow_origins, s.allow_origins);
}
