//! Tests of `Status`: reading `grpc-*` metadata, writing trailers, the JSON error body.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use prost::Message as _;
use tonic_types::pb;

use super::*;

const BAD_REQUEST_URL: &str = "type.googleapis.com/google.rpc.BadRequest";

fn pool() -> DescriptorPool {
    DescriptorPool::decode(tonic_types::pb::FILE_DESCRIPTOR_SET).expect("tonic-types descriptors")
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            *name,
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    map
}

fn bad_request() -> pb::BadRequest {
    pb::BadRequest {
        field_violations: vec![pb::bad_request::FieldViolation {
            field: "product_id".into(),
            description: "must not be empty".into(),
            ..Default::default()
        }],
    }
}

/// A `google.rpc.Status` encoded by tonic-types' own prost types, not by ours.
fn rpc_status_bytes(code: i32, message: &str, detail: &pb::BadRequest) -> Vec<u8> {
    let mut status = pb::Status {
        code,
        message: message.into(),
        details: vec![Default::default()],
    };
    status.details[0].type_url = BAD_REQUEST_URL.into();
    status.details[0].value = detail.encode_to_vec();
    status.encode_to_vec()
}

fn bad_request_detail() -> Detail {
    Detail {
        type_url: BAD_REQUEST_URL.into(),
        value: bad_request().encode_to_vec().into(),
    }
}

#[test]
fn reads_metadata() {
    let bin = rpc_status_bytes(3, "from the bin.", &bad_request());
    let padded = STANDARD.encode(&bin);
    let unpadded = STANDARD_NO_PAD.encode(&bin);
    assert_ne!(padded, unpadded, "the test needs a value that is padded");
    let with_details = |message: &str| Status {
        code: INVALID_ARGUMENT,
        message: message.into(),
        details: vec![bad_request_detail()],
    };
    let cases: Vec<(&str, HeaderMap, Option<Status>)> = vec![
        ("absent", headers(&[]), None),
        ("message only", headers(&[("grpc-message", "x")]), None),
        (
            "ok",
            headers(&[("grpc-status", "0")]),
            Some(Status::new(OK, "")),
        ),
        (
            "message percent-decoded",
            headers(&[
                ("grpc-status", "5"),
                ("grpc-message", "no%20product%20%E2%86%92%2042"),
            ]),
            Some(Status::new(NOT_FOUND, "no product → 42")),
        ),
        (
            "code outside the table kept",
            headers(&[("grpc-status", "42")]),
            Some(Status::new(42, "")),
        ),
        (
            "not a number",
            headers(&[("grpc-status", "five")]),
            Some(Status::new(UNKNOWN, "invalid grpc-status \"five\"")),
        ),
        (
            "signed",
            headers(&[("grpc-status", "-1")]),
            Some(Status::new(UNKNOWN, "invalid grpc-status \"-1\"")),
        ),
        (
            "too large",
            headers(&[("grpc-status", "4294967296")]),
            Some(Status::new(UNKNOWN, "invalid grpc-status \"4294967296\"")),
        ),
        (
            "details, padded",
            headers(&[
                ("grpc-status", "3"),
                ("grpc-message", "bad"),
                ("grpc-status-details-bin", &padded),
            ]),
            Some(with_details("bad")),
        ),
        (
            "details, unpadded",
            headers(&[
                ("grpc-status", "3"),
                ("grpc-message", "bad"),
                ("grpc-status-details-bin", &unpadded),
            ]),
            Some(with_details("bad")),
        ),
        (
            "the bin's message when grpc-message is absent",
            headers(&[("grpc-status", "3"), ("grpc-status-details-bin", &unpadded)]),
            Some(with_details("from the bin.")),
        ),
        (
            "grpc-status's code wins over the bin's",
            headers(&[("grpc-status", "9"), ("grpc-status-details-bin", &unpadded)]),
            Some(Status {
                code: FAILED_PRECONDITION,
                ..with_details("from the bin.")
            }),
        ),
        (
            "bin not base64: ignored",
            headers(&[
                ("grpc-status", "3"),
                ("grpc-message", "bad"),
                ("grpc-status-details-bin", "!!!"),
            ]),
            Some(Status::new(INVALID_ARGUMENT, "bad")),
        ),
        (
            "bin not a Status: ignored",
            headers(&[
                ("grpc-status", "3"),
                ("grpc-status-details-bin", &STANDARD.encode([0xff, 0xff])),
            ]),
            Some(Status::new(INVALID_ARGUMENT, "")),
        ),
    ];
    for (name, map, want) in cases {
        assert_eq!(Status::from_metadata(&map), want, "{name}");
    }
}

#[test]
fn writes_trailers() {
    let cases: Vec<(Status, &str, Option<&str>, bool)> = vec![
        (Status::new(OK, ""), "0", None, false),
        (
            Status::new(NOT_FOUND, "no product 42"),
            "5",
            Some("no product 42"),
            false,
        ),
        (
            Status::new(INTERNAL, "100% → broken\n"),
            "13",
            Some("100%25 %E2%86%92 broken%0A"),
            false,
        ),
        (Status::new(99, "odd"), "99", Some("odd"), false),
        (
            Status {
                details: vec![bad_request_detail()],
                ..Status::new(INVALID_ARGUMENT, "bad")
            },
            "3",
            Some("bad"),
            true,
        ),
    ];
    for (status, code, message, has_bin) in cases {
        let map = status.to_trailers();
        assert_eq!(
            map.get("grpc-status").map(|v| v.as_bytes()),
            Some(code.as_bytes()),
            "{status}"
        );
        assert_eq!(
            map.get("grpc-message").map(|v| v.as_bytes()),
            message.map(str::as_bytes),
            "{status}"
        );
        assert_eq!(
            map.contains_key("grpc-status-details-bin"),
            has_bin,
            "{status}"
        );
        // What we write, we read back the same.
        assert_eq!(
            Status::from_metadata(&map).as_ref(),
            Some(&status),
            "{status}"
        );
    }
}

/// The details written for a gRPC client decode with tonic-types' prost types into the same
/// `google.rpc.Status` that tonic-types encodes: our `RpcStatus` is wire-compatible.
#[test]
fn details_bin_round_trip_with_tonic_types() {
    let original = rpc_status_bytes(INVALID_ARGUMENT, "bad", &bad_request());
    let map = headers(&[
        ("grpc-status", "3"),
        ("grpc-status-details-bin", &STANDARD.encode(&original)),
    ]);
    let status = Status::from_metadata(&map).expect("a status");
    assert_eq!(status.message, "bad");
    let detail = &status.details[0];
    assert_eq!(detail.type_url, BAD_REQUEST_URL);
    assert_eq!(
        pb::BadRequest::decode(detail.value.clone()).expect("BadRequest"),
        bad_request()
    );

    let trailers = status.to_trailers();
    let bin = trailers
        .get("grpc-status-details-bin")
        .expect("details written");
    assert!(
        !bin.as_bytes().ends_with(b"="),
        "unpadded, as gRPC writes binary headers"
    );
    let bytes = STANDARD_NO_PAD.decode(bin.as_bytes()).expect("base64");
    assert_eq!(bytes, original);
    let decoded = pb::Status::decode(bytes.as_slice()).expect("google.rpc.Status");
    assert_eq!(decoded.code, INVALID_ARGUMENT);
    assert_eq!(decoded.details[0].type_url, BAD_REQUEST_URL);
}

#[test]
fn json_bodies() {
    let duration = Detail {
        type_url: "type.googleapis.com/google.protobuf.Duration".into(),
        // seconds: 1, nanos: 500_000_000
        value: prost_types_duration(1, 500_000_000).into(),
    };
    let unknown = Detail {
        type_url: "type.googleapis.com/shop.v1.Unknown".into(),
        value: Bytes::from_static(&[0x08, 0x01]),
    };
    let garbled = Detail {
        type_url: BAD_REQUEST_URL.into(),
        value: Bytes::from_static(&[0x0a, 0xff]),
    };
    let with = |details: Vec<Detail>| Status {
        details,
        ..Status::new(INVALID_ARGUMENT, "bad \"id\"")
    };
    let cases = [
        (
            "no details",
            Status::new(NOT_FOUND, "no product 42"),
            r#"{"code":5,"message":"no product 42","details":[]}"#,
        ),
        (
            "empty",
            Status::new(OK, ""),
            r#"{"code":0,"message":"","details":[]}"#,
        ),
        (
            "BadRequest by the JSON mapping",
            with(vec![bad_request_detail()]),
            r#"{"code":3,"message":"bad \"id\"","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"product_id","description":"must not be empty"}]}]}"#,
        ),
        (
            "a well-known type",
            with(vec![duration]),
            r#"{"code":3,"message":"bad \"id\"","details":[{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1.500s"}]}"#,
        ),
        (
            "a type the pool does not know",
            with(vec![unknown.clone()]),
            r#"{"code":3,"message":"bad \"id\"","details":[{"@type":"type.googleapis.com/shop.v1.Unknown","value":"CAE"}]}"#,
        ),
        (
            "bytes that are not the type",
            with(vec![garbled, unknown]),
            r#"{"code":3,"message":"bad \"id\"","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","value":"Cv8"},{"@type":"type.googleapis.com/shop.v1.Unknown","value":"CAE"}]}"#,
        ),
    ];
    let pool = pool();
    for (name, status, want) in cases {
        let got = status.to_json(&pool);
        assert_eq!(String::from_utf8_lossy(&got), want, "{name}");
    }
}

#[test]
fn json_without_the_types_in_the_pool() {
    let status = Status {
        details: vec![bad_request_detail()],
        ..Status::new(INVALID_ARGUMENT, "bad")
    };
    let want = format!(
        r#"{{"code":3,"message":"bad","details":[{{"@type":"{BAD_REQUEST_URL}","value":"{}"}}]}}"#,
        STANDARD_NO_PAD.encode(bad_request().encode_to_vec())
    );
    assert_eq!(
        String::from_utf8_lossy(&status.to_json(&DescriptorPool::new())),
        want
    );
}

/// `google.protobuf.Duration { seconds, nanos }` encoded by hand (fields 1 and 2, varints).
fn prost_types_duration(seconds: i64, nanos: i32) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::int64::encode(1, &seconds, &mut out);
    prost::encoding::int32::encode(2, &nanos, &mut out);
    out
}
