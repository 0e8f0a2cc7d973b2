//! REST → gRPC end to end: a real tonic service (h2c) behind the internal gateway, a plain HTTP
//! client in front; tables of what the client sent ↔ what it got and what the service saw,
//! every status of the gRPC → HTTP table, the three streaming formats with an error mid-stream,
//! client streams, and 10,000 streamed messages.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use gatehouse_common::body::full;
use gatehouse_common::config;
use gatehouse_common::runtime::Running;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::Client;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tonic_types::{ErrorDetails, StatusExt};

// The messages of tests/fixtures/transcode/things.proto, as the service's own code.
#[derive(Clone, PartialEq, prost::Message)]
struct Inner {
    #[prost(uint64, tag = "1")]
    serial: u64,
    #[prost(bool, tag = "2")]
    fragile: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Int32Value {
    #[prost(int32, tag = "1")]
    value: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Thing {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    display_name: String,
    #[prost(int64, tag = "3")]
    weight_grams: i64,
    #[prost(int32, tag = "4")]
    kind: i32,
    #[prost(string, repeated, tag = "5")]
    tags: Vec<String>,
    #[prost(message, optional, tag = "6")]
    created: Option<Timestamp>,
    #[prost(message, optional, tag = "7")]
    inner: Option<Inner>,
    #[prost(message, optional, tag = "8")]
    rating: Option<Int32Value>,
    #[prost(string, tag = "9")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GetThingRequest {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    shelf: String,
    #[prost(bool, tag = "3")]
    verbose: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CreateThingRequest {
    #[prost(message, optional, tag = "1")]
    thing: Option<Thing>,
    #[prost(bool, tag = "2")]
    validate_only: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListThingsRequest {
    #[prost(uint32, tag = "1")]
    count: u32,
    #[prost(int32, tag = "2")]
    kind: i32,
    #[prost(string, repeated, tag = "3")]
    tags: Vec<String>,
    #[prost(uint32, tag = "4")]
    fail_after: u32,
    #[prost(message, optional, tag = "5")]
    filter: Option<Inner>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct FailRequest {
    #[prost(int32, tag = "1")]
    code: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Count {
    #[prost(uint32, tag = "1")]
    count: u32,
    #[prost(int64, tag = "2")]
    total_weight: i64,
}

/// A weight above 2^53: JSON numbers would lose it, so the mapping writes int64 as a string.
const HEAVY: i64 = 9_007_199_254_740_993;

/// What the service saw of the last call: its path and metadata.
type Seen = Arc<Mutex<Vec<(String, HeaderMap)>>>;

fn thing(id: &str) -> Thing {
    Thing {
        id: id.to_owned(),
        display_name: format!("thing {id}"),
        weight_grams: HEAVY,
        kind: 2,
        ..Default::default()
    }
}

async fn get_thing(req: tonic::Request<GetThingRequest>) -> Result<tonic::Response<Thing>, Status> {
    let r = req.into_inner();
    if r.id == "missing" {
        return Err(Status::with_error_details(
            Code::NotFound,
            "no thing `missing`",
            ErrorDetails::with_bad_request_violation("id", "no such thing"),
        ));
    }
    let mut t = thing(&r.id);
    if !r.shelf.is_empty() {
        t.tags.push(r.shelf);
    }
    if r.verbose {
        t.tags.push("verbose".into());
    }
    t.name = format!("Name of {}", r.id);
    Ok(tonic::Response::new(t))
}

async fn create_thing(
    req: tonic::Request<CreateThingRequest>,
) -> Result<tonic::Response<Thing>, Status> {
    let r = req.into_inner();
    let mut t = r.thing.unwrap_or_default();
    if t.id.is_empty() {
        t.id = "t-new".into();
    }
    if r.validate_only {
        t.tags.push("validated".into());
    }
    Ok(tonic::Response::new(t))
}

async fn update_thing(req: tonic::Request<Thing>) -> Result<tonic::Response<Thing>, Status> {
    Ok(tonic::Response::new(req.into_inner()))
}

async fn fail(req: tonic::Request<FailRequest>) -> Result<tonic::Response<Thing>, Status> {
    match req.into_inner().code {
        0 => Ok(tonic::Response::new(thing("ok"))),
        c => Err(Status::new(Code::from(c), format!("failing with {c}"))),
    }
}

type ThingStream = futures_util::stream::BoxStream<'static, Result<Thing, Status>>;

/// `count` things (id `t-<i>`), each with the request's kind and tags and a 1 KiB name; after
/// `fail_after` of them (if set) the stream ends with ABORTED.
async fn list_things(
    req: tonic::Request<ListThingsRequest>,
) -> Result<tonic::Response<ThingStream>, Status> {
    let r = req.into_inner();
    let stream = futures_util::stream::unfold(0u32, move |i| {
        let r = r.clone();
        async move {
            if r.fail_after > 0 && i == r.fail_after {
                return Some((Err(Status::aborted("stream broke")), u32::MAX));
            }
            if i >= r.count {
                return None;
            }
            let mut t = thing(&format!("t-{i}"));
            t.kind = r.kind;
            t.tags = r.tags.clone();
            t.name = "n".repeat(1024);
            Some((Ok(t), i + 1))
        }
    });
    Ok(tonic::Response::new(stream.boxed()))
}

async fn count_things(
    req: tonic::Request<tonic::Streaming<Thing>>,
) -> Result<tonic::Response<Count>, Status> {
    let mut stream = req.into_inner();
    let mut c = Count::default();
    while let Some(t) = stream.next().await {
        let t = t?;
        c.count += 1;
        c.total_weight += t.weight_grams;
    }
    Ok(tonic::Response::new(c))
}

/// The tonic service on an h2c port; `seen` records each call's path and metadata.
async fn serve_things(seen: Seen) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            if let Ok(mut s) = seen.lock() {
                                s.push((path.clone(), req.headers().clone()));
                            }
                            let m = path.rsplit('/').next().unwrap_or("").to_owned();
                            let res = match m.as_str() {
                                "GetThing" | "GetName" => {
                                    tonic::server::Grpc::new(
                                        ProstCodec::<Thing, GetThingRequest>::default(),
                                    )
                                    .unary(tower::service_fn(get_thing), req)
                                    .await
                                }
                                "CreateThing" => {
                                    tonic::server::Grpc::new(
                                        ProstCodec::<Thing, CreateThingRequest>::default(),
                                    )
                                    .unary(tower::service_fn(create_thing), req)
                                    .await
                                }
                                "UpdateThing" => {
                                    tonic::server::Grpc::new(ProstCodec::<Thing, Thing>::default())
                                        .unary(tower::service_fn(update_thing), req)
                                        .await
                                }
                                "Fail" => {
                                    tonic::server::Grpc::new(
                                        ProstCodec::<Thing, FailRequest>::default(),
                                    )
                                    .unary(tower::service_fn(fail), req)
                                    .await
                                }
                                "ListThings" => {
                                    tonic::server::Grpc::new(
                                        ProstCodec::<Thing, ListThingsRequest>::default(),
                                    )
                                    .server_streaming(tower::service_fn(list_things), req)
                                    .await
                                }
                                "CountThings" => {
                                    tonic::server::Grpc::new(ProstCodec::<Count, Thing>::default())
                                        .client_streaming(tower::service_fn(count_things), req)
                                        .await
                                }
                                _ => Status::unimplemented("no such method").into_http(),
                            };
                            Ok::<_, Infallible>(res)
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http2_only()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

fn fixtures() -> String {
    format!("{}/tests/fixtures/transcode", env!("CARGO_MANIFEST_DIR"))
}

async fn gateway() -> (Running, String, Seen) {
    let seen = Seen::default();
    let addr = serve_things(seen.clone()).await;
    let dir = fixtures();
    let yaml = format!(
        r#"
listeners: [{{ name: main, address: 127.0.0.1:0 }}]
admin: {{ address: 127.0.0.1:0 }}
internal:
  descriptors: {{ protos: ["{dir}/things.proto"] }}
routes:
  - name: things
    match: {{ path_prefix: /v1 }}
    handler:
      rest_to_grpc: {{ service: things, grpc_services: [gatehouse.test.v1.Things] }}
services:
  things: {{ endpoints: ["{addr}"], protocol: h2c }}
"#
    );
    let loaded = config::parse::<ProxySettings>("internal.yaml", &yaml).expect("config");
    let running = gatehouse_internal::run(loaded, None)
        .await
        .expect("internal gateway starts");
    let base = format!("http://{}", running.addr("main").await.expect("listener"));
    (running, base, seen)
}

async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(full(body.to_owned())).expect("request");
    gatehouse_tests::collect(Client::http1().send(req).await).await
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// What a REST client sent ↔ what it got, for each binding form.
#[tokio::test]
async fn bindings_map_path_query_and_body() {
    let (_gw, base, seen) = gateway().await;
    let create = r#"{"displayName": "drill", "weightGrams": "12", "kind": "KIND_TOOL",
        "tags": ["a", "b"], "created": "2026-01-02T03:04:05Z", "inner": {"serial": "5", "fragile": true},
        "rating": 4}"#;
    #[rustfmt::skip]
    let cases: Vec<(Method, &str, &str, Value)> = vec![
        (Method::GET, "/v1/things/t-1", "",
            json!({"id": "t-1", "displayName": "thing t-1", "weightGrams": HEAVY.to_string(),
                   "kind": "KIND_TOY", "tags": [], "name": "Name of t-1"})),
        // An additional binding; a query parameter for a field the path does not bind.
        (Method::GET, "/v1/shelves/s1/things/t-2?verbose=true", "",
            json!({"id": "t-2", "tags": ["s1", "verbose"]})),
        // Percent-decoded path values.
        (Method::GET, "/v1/things/t%2F3%20x", "", json!({"id": "t/3 x"})),
        // `body: "thing"`: the body is the field; the query fills the rest.
        (Method::POST, "/v1/things?validate_only=true", create,
            json!({"id": "t-new", "displayName": "drill", "weightGrams": "12", "kind": "KIND_TOOL",
                   "tags": ["a", "b", "validated"], "created": "2026-01-02T03:04:05Z",
                   "inner": {"serial": "5", "fragile": true}, "rating": 4})),
        // Both spellings of a field in; the proto name too.
        (Method::POST, "/v1/things", r#"{"display_name": "saw", "weight_grams": 7, "kind": 1}"#,
            json!({"displayName": "saw", "weightGrams": "7", "kind": "KIND_TOOL"})),
        // `body: "*"` with a path variable: the path's value wins.
        (Method::PATCH, "/v1/things/t-9", r#"{"id": "other", "displayName": "renamed"}"#,
            json!({"id": "t-9", "displayName": "renamed"})),
        // `response_body`: the field alone.
        (Method::GET, "/v1/things/t-4/name", "", json!("Name of t-4")),
    ];
    for (method, path, body, want) in cases {
        let (status, headers, got) = send(
            method.clone(),
            &format!("{base}{path}"),
            &[("content-type", "application/json")],
            body,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{method} {path}: {}",
            String::from_utf8_lossy(&got)
        );
        assert_eq!(headers[CONTENT_TYPE], "application/json", "{method} {path}");
        let got = json_of(&got);
        match &want {
            Value::Object(fields) => {
                for (k, v) in fields {
                    assert_eq!(&got[k], v, "{method} {path}: `{k}` in {got}");
                }
            }
            other => assert_eq!(&got, other, "{method} {path}"),
        }
    }
    // The service got gRPC calls with the trace context and a deadline.
    let calls = seen.lock().expect("seen").clone();
    let (path, headers) = &calls[0];
    assert_eq!(path, "/gatehouse.test.v1.Things/GetThing");
    assert_eq!(headers[CONTENT_TYPE], "application/grpc");
    assert!(headers.contains_key("traceparent"), "{headers:?}");
    assert!(headers.contains_key("x-request-id"), "{headers:?}");
}

/// What the gateway refuses itself (400 / 404 / 405 with code 3 / 5 / 12) and what the
/// service refused, with its details.
#[tokio::test]
async fn refusals_carry_the_grpc_status() {
    let (_gw, base, seen) = gateway().await;
    #[rustfmt::skip]
    let cases: Vec<(Method, &str, &str, u16, i32, &str)> = vec![
        (Method::GET, "/v1/things/t-1?bogus=1", "", 400, 3, "bogus"),
        (Method::POST, "/v1/things", "{not json", 400, 3, "JSON"),
        (Method::POST, "/v1/things", r#"{"colour": "red"}"#, 400, 3, "colour"),
        (Method::POST, "/v1/things", r#"{"weightGrams": "heavy"}"#, 400, 3, ""),
        (Method::GET, "/v1/things?count=-1", "", 400, 3, "count"),
        (Method::DELETE, "/v1/things/t-1", "", 405, 12, ""),
        (Method::GET, "/v1/nothing/here", "", 404, 5, ""),
        (Method::GET, "/v1/things/missing", "", 404, 5, "no thing `missing`"),
    ];
    for (method, path, body, status, code, says) in cases {
        let calls_before = seen.lock().expect("seen").len();
        let (got_status, headers, got) =
            send(method.clone(), &format!("{base}{path}"), &[], body).await;
        assert_eq!(
            got_status.as_u16(),
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&got)
        );
        assert_eq!(
            headers[CONTENT_TYPE], "application/problem+json",
            "{method} {path}"
        );
        let v = json_of(&got);
        assert_eq!(v["code"], code, "{method} {path}: {v}");
        assert_eq!(v["status"], status, "{method} {path}");
        assert!(
            v["message"].as_str().expect("message").contains(says),
            "{method} {path}: {v}"
        );
        assert!(v["details"].is_array(), "{method} {path}: {v}");
        if status == 405 {
            assert_eq!(headers["allow"], "GET, PATCH", "{method} {path}");
        }
        if code != 5 || path.ends_with("here") {
            // Refused by the gateway: the service never saw it.
            assert_eq!(
                seen.lock().expect("seen").len(),
                calls_before,
                "{method} {path}"
            );
        }
    }
    // The service's details, by the JSON mapping of `Any`.
    let (_, _, got) = send(Method::GET, &format!("{base}/v1/things/missing"), &[], "").await;
    let v = json_of(&got);
    assert_eq!(
        v["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest",
        "{v}"
    );
    assert_eq!(v["details"][0]["fieldViolations"][0]["field"], "id", "{v}");
}

/// Every gRPC code → its HTTP status (the table Envoy and grpc-gateway use).
#[tokio::test]
async fn every_grpc_code_has_its_http_status() {
    let (_gw, base, _seen) = gateway().await;
    let table: [(i32, u16); 17] = [
        (0, 200),
        (1, 499),
        (2, 500),
        (3, 400),
        (4, 504),
        (5, 404),
        (6, 409),
        (7, 403),
        (8, 429),
        (9, 400),
        (10, 409),
        (11, 400),
        (12, 501),
        (13, 500),
        (14, 503),
        (15, 500),
        (16, 401),
    ];
    for (code, http) in table {
        let (status, _, body) = send(Method::GET, &format!("{base}/v1/fail/{code}"), &[], "").await;
        assert_eq!(
            status.as_u16(),
            http,
            "code {code}: {}",
            String::from_utf8_lossy(&body)
        );
        if code != 0 {
            let v = json_of(&body);
            assert_eq!(v["code"], code);
            assert_eq!(v["message"], format!("failing with {code}"));
        }
    }
}

/// Server streaming in the three formats, with and without an error after two messages.
#[tokio::test]
async fn server_streams_by_accept() {
    let (_gw, base, _seen) = gateway().await;
    let url = |q: &str| format!("{base}/v1/things?kind=KIND_TOOL&tags=x&tags=y&{q}");
    // JSON array.
    let (status, headers, body) = send(
        Method::GET,
        &url("count=3"),
        &[("accept", "application/json")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    let v = json_of(&body);
    let items = v.as_array().expect("array");
    assert_eq!(items.len(), 3);
    assert_eq!(items[2]["id"], "t-2");
    assert_eq!(items[0]["kind"], "KIND_TOOL");
    assert_eq!(items[0]["tags"], json!(["x", "y"]));
    let (_, _, body) = send(
        Method::GET,
        &url("count=3&fail_after=2"),
        &[("accept", "application/json")],
        "",
    )
    .await;
    let v = json_of(&body);
    let items = v.as_array().expect("array");
    assert_eq!(items.len(), 3, "{v}");
    assert_eq!(items[1]["id"], "t-1");
    assert_eq!(items[2]["error"]["code"], 10, "{v}");
    assert_eq!(items[2]["error"]["message"], "stream broke");
    let (_, _, body) = send(
        Method::GET,
        &url("count=0"),
        &[("accept", "application/json")],
        "",
    )
    .await;
    assert_eq!(json_of(&body), json!([]));

    // NDJSON.
    let (status, headers, body) = send(
        Method::GET,
        &url("count=3&fail_after=2"),
        &[("accept", "application/x-ndjson")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], "application/x-ndjson");
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["id"], "t-0");
    assert_eq!(lines[2]["error"]["code"], 10);

    // Server-sent events.
    let (status, headers, body) = send(
        Method::GET,
        &url("count=2"),
        &[("accept", "text/event-stream")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], "text/event-stream");
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    let data: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).expect("JSON data"))
        .collect();
    assert_eq!(data.len(), 2, "{text}");
    assert_eq!(data[1]["id"], "t-1");
    let (_, _, body) = send(
        Method::GET,
        &url("count=2&fail_after=1"),
        &[("accept", "text/event-stream")],
        "",
    )
    .await;
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(text.contains("event: error\ndata: {"), "{text}");

    // A call failing before any message gets its own status; an unknown format is refused.
    let (status, _, body) = send(
        Method::GET,
        &url("count=3&fail_after=0&tags=z"),
        &[("accept", "text/html")],
        "",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_ACCEPTABLE,
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// Client streaming: a JSON array or NDJSON body becomes the stream of messages.
#[tokio::test]
async fn client_streams_take_an_array_or_ndjson() {
    let (_gw, base, _seen) = gateway().await;
    let (status, _, body) = send(
        Method::POST,
        &format!("{base}/v1/things:count"),
        &[("content-type", "application/json")],
        r#"[{"weightGrams": "1"}, {"weightGrams": "2"}, {"weight_grams": 3}]"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body), json!({"count": 3, "totalWeight": "6"}));
    let (status, _, body) = send(
        Method::POST,
        &format!("{base}/v1/things:count"),
        &[("content-type", "application/x-ndjson")],
        "{\"weightGrams\": \"10\"}\n{\"weightGrams\": \"20\"}\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body), json!({"count": 2, "totalWeight": "30"}));
}

/// 10,000 messages of ~1 KiB stream through as NDJSON: all arrive in order, and the process's
/// memory does not grow by the size of the stream (it is not buffered whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_stream_through() {
    let (_gw, base, _seen) = gateway().await;
    let req = Request::get(format!("{base}/v1/things?count=10000"))
        .header(ACCEPT, "application/x-ndjson")
        .body(gatehouse_common::body::empty())
        .expect("request");
    let before = gatehouse_tests::rss_bytes();
    let res = Client::http1().send(req).await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let mut pending = Vec::new();
    let mut lines = 0usize;
    let mut peak = before;
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("frame");
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let v: Value = serde_json::from_slice(&line).expect("a JSON line");
            assert_eq!(v["id"], format!("t-{lines}"));
            lines += 1;
        }
        if lines.is_multiple_of(1000) {
            peak = peak.max(gatehouse_tests::rss_bytes());
        }
    }
    assert_eq!(lines, 10_000);
    // The stream is ~10.5 MB of JSON (and as much protobuf): buffering it whole would show.
    let grew = peak.saturating_sub(before);
    assert!(
        grew < 8 << 20,
        "RSS grew by {} KiB while streaming",
        grew >> 10
    );
}

/// A `.proto` changed and the config reloaded: the new bindings serve at once; a broken one is
/// refused, naming its file, line and column, and the previous bindings keep serving.
#[tokio::test]
async fn reload_changes_bindings_and_refuses_a_broken_proto() {
    let seen = Seen::default();
    let addr = serve_things(seen).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let original =
        std::fs::read_to_string(format!("{}/things.proto", fixtures())).expect("fixture");
    let proto = dir.path().join("things.proto");
    std::fs::write(&proto, &original).expect("write proto");
    let path = dir.path().join("internal.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
listeners: [{{ name: main, address: 127.0.0.1:0 }}]
admin: {{ address: 127.0.0.1:0 }}
internal:
  descriptors: {{ protos: [things.proto] }}
routes:
  - name: things
    match: {{ path_prefix: / }}
    handler:
      rest_to_grpc: {{ service: things, grpc_services: [gatehouse.test.v1.Things] }}
services:
  things: {{ endpoints: ["{addr}"], protocol: h2c }}
"#
        ),
    )
    .expect("write config");
    let loaded = config::load::<ProxySettings>(&path).expect("config");
    let running = gatehouse_internal::run(loaded, Some(path.clone()))
        .await
        .expect("internal gateway starts");
    let base = format!("http://{}", running.addr("main").await.expect("listener"));
    let status_of = |p: &'static str| {
        let url = format!("{base}{p}");
        async move { send(Method::GET, &url, &[], "").await.0 }
    };
    assert_eq!(status_of("/v1/things/t-1").await, StatusCode::OK);

    // GetThing moves to /v2/items/{id}.
    let moved = original.replace(r#"get: "/v1/things/{id}""#, r#"get: "/v2/items/{id}""#);
    assert_ne!(moved, original, "the fixture's binding changed");
    std::fs::write(&proto, &moved).expect("write proto");
    running.reload().await.expect("reload with the new binding");
    assert_eq!(status_of("/v2/items/t-1").await, StatusCode::OK);
    // Only UpdateThing (PATCH) is bound there now.
    assert_eq!(
        status_of("/v1/things/t-1").await,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // A syntax error on line 14: refused, and /v2/items still serves.
    let broken = moved.replacen("service Things {", "service Things {{", 1);
    std::fs::write(&proto, &broken).expect("write proto");
    let err = running
        .reload()
        .await
        .expect_err("a broken proto is refused");
    let text = gatehouse_common::error::chain(&err);
    let line = broken
        .lines()
        .position(|l| l.starts_with("service Things"))
        .expect("line")
        + 1;
    assert!(text.contains(&format!("things.proto:{line}:")), "{text}");
    assert!(text.contains("internal.descriptors.protos[0]"), "{text}");
    assert_eq!(status_of("/v2/items/t-1").await, StatusCode::OK);
}
