//! gRPC-Web through a real edge (TLS from the test PKI) to a real tonic service on h2c:
//! unary and server-streaming calls as `application/grpc-web[+proto]` and `-text` over
//! HTTP/1.1, HTTP/2 and HTTP/3; the status in the trailers frame; errors of the service and of
//! the edge itself as statuses a gRPC-Web client reads; the CORS preflight a browser sends
//! first. Request bytes are made here by hand (5-byte prefix, `base64` crate) and answers are
//! taken apart here by hand, independently of the edge's code.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::StreamExt;
use gatehouse_certs::test_util::{TestPki, jwt_keys};
use gatehouse_certs::{JwtAlg, JwtKeys, TokenRequest};
use gatehouse_common::BoxError;
use gatehouse_common::body::ProxyBody;
use gatehouse_common::config;
use gatehouse_common::runtime::Running;
use gatehouse_common::settings::ProxySettings;
use http::{HeaderMap, Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use rustls::RootCertStore;
use support::{ISSUER, jwks, token};
use tokio::net::TcpListener;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

// The demo's `shop.orders.v1` messages (topology/proto/orders.proto), the fields used here.
#[derive(Clone, PartialEq, prost::Message)]
struct GetOrderRequest {
    #[prost(string, tag = "1")]
    order_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListOrdersRequest {
    #[prost(uint32, tag = "1")]
    page_size: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Order {
    #[prost(string, tag = "1")]
    order_id: String,
    #[prost(string, tag = "2")]
    product_id: String,
    #[prost(uint32, tag = "3")]
    quantity: u32,
    #[prost(string, tag = "4")]
    customer: String,
}

const GET: &str = "/shop.orders.v1.Orders/GetOrder";
const LIST: &str = "/shop.orders.v1.Orders/ListOrders";
/// `ListOrders` with this page size sends two orders, then fails NOT_FOUND.
const BREAKS: u32 = 99;
const ORIGIN: &str = "https://shop.example";

/// The caller's subject, as the edge forwards it.
fn customer(meta: &tonic::metadata::MetadataMap) -> String {
    meta.get("x-gatehouse-subject")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nobody")
        .to_owned()
}

fn order(id: &str, customer: &str) -> Order {
    Order {
        order_id: id.to_owned(),
        product_id: "p-7".to_owned(),
        quantity: 2,
        customer: customer.to_owned(),
    }
}

async fn get(req: tonic::Request<GetOrderRequest>) -> Result<tonic::Response<Order>, Status> {
    let who = customer(req.metadata());
    let id = req.into_inner().order_id;
    if id == "missing" {
        return Err(Status::not_found("no order missing"));
    }
    let mut res = tonic::Response::new(order(&id, &who));
    res.metadata_mut()
        .insert("x-served-by", "orders".parse().expect("metadata"));
    Ok(res)
}

type OrderStream = futures_util::stream::BoxStream<'static, Result<Order, Status>>;

/// `page_size` orders 100ms apart; for [`BREAKS`], two and then NOT_FOUND.
async fn list(
    req: tonic::Request<ListOrdersRequest>,
) -> Result<tonic::Response<OrderStream>, Status> {
    let who = customer(req.metadata());
    let n = req.into_inner().page_size;
    let stream = futures_util::stream::unfold(0u32, move |i| {
        let who = who.clone();
        async move {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            match i {
                2 if n == BREAKS => Some((Err(Status::not_found("page 3 is gone")), u32::MAX)),
                _ if i >= n => None,
                _ => Some((Ok(order(&format!("o-{i}"), &who)), i + 1)),
            }
        }
    });
    Ok(tonic::Response::new(stream.boxed()))
}

/// What the service received: path, `content-type`, `te`, HTTP version.
type SeenLog = Arc<Mutex<Vec<(String, String, String, http::Version)>>>;

/// The tonic service on an h2c port; every request it gets is logged.
async fn serve_orders(seen: SeenLog) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let h = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let entry = (
                            req.uri().path().to_owned(),
                            h("content-type"),
                            h("te"),
                            req.version(),
                        );
                        seen.lock().expect("seen").push(entry);
                        async move {
                            let res = match req.uri().path() {
                                GET => {
                                    tonic::server::Grpc::new(
                                        ProstCodec::<Order, GetOrderRequest>::default(),
                                    )
                                    .unary(tower::service_fn(get), req)
                                    .await
                                }
                                LIST => {
                                    tonic::server::Grpc::new(
                                        ProstCodec::<Order, ListOrdersRequest>::default(),
                                    )
                                    .server_streaming(tower::service_fn(list), req)
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

struct TlsEdge {
    running: Running,
    addr: SocketAddr,
    pki: TestPki,
    keys: JwtKeys,
    seen: SeenLog,
    _dir: tempfile::TempDir,
}

async fn start() -> TlsEdge {
    let seen = SeenLog::default();
    let orders = serve_orders(seen.clone()).await;
    let pki = TestPki::new("gatehouse.test");
    let keys = jwt_keys(JwtAlg::Rs256);
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = pki
        .server(&["localhost", "127.0.0.1"])
        .write_to(dir.path(), "server");
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks(&[&keys])).expect("jwks");
    let yaml = format!(
        r#"
listeners:
  - name: public
    address: 127.0.0.1:0
    tls: {{ cert: {cert}, key: {key} }}
admin: {{ address: 127.0.0.1:0 }}
routes:
  - {{ name: orders, match: {{ path_prefix: /shop.orders.v1.Orders }}, service: orders }}
  - {{ name: limited, match: {{ path_prefix: /shop.orders.v1.Limited }}, service: orders }}
services:
  orders: {{ endpoints: ["{orders}"], protocol: h2c }}
edge:
  jwt:
    issuers: [{{ issuer: {ISSUER}, audiences: [gatehouse], jwks_file: {jwks} }}]
  rate_limits:
    one: {{ quota: 1, window: 60s }}
  policies:
    - name: orders
      path_prefix: /shop.orders.v1.Orders
      auth: jwt
      grpc_web: true
      cors: {{ allow_origins: ["{ORIGIN}"], allow_headers: [authorization], max_age: 10m }}
    - {{ name: limited, path_prefix: /shop.orders.v1.Limited, auth: none, grpc_web: true, rate_limit: one }}
    - {{ name: unrouted, path_prefix: /shop.other.v1, auth: none, grpc_web: true }}
"#,
        cert = cert.display(),
        key = key.display(),
        jwks = jwks_file.display(),
    );
    let loaded = config::parse::<ProxySettings>("edge.yaml", &yaml).expect("edge config");
    let running = gatehouse_edge::run(loaded, None).await.expect("edge start");
    let addr = running.addr("public").await.expect("public listener");
    TlsEdge {
        running,
        addr,
        pki,
        keys,
        seen,
        _dir: dir,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Proto {
    H1,
    H2,
    H3,
}

fn client_tls(pki: &TestPki) -> rustls::ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der()).expect("test CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// What came back: head, body, HTTP trailers, and when each body chunk arrived.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
    arrivals: Vec<Duration>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// Sends `req` (its body in these chunks, one poll each) over a fresh connection.
async fn send(edge: &TlsEdge, proto: Proto, req: Request<Vec<Bytes>>) -> Answer {
    let (mut parts, chunks) = req.into_parts();
    parts.uri = format!("https://localhost:{}{}", edge.addr.port(), parts.uri)
        .parse()
        .expect("uri");
    if proto == Proto::H3 {
        let req = Request::from_parts(parts, Bytes::from(chunks.concat()));
        let (status, headers, body) = gatehouse_tests::h3::request_with_body(
            edge.addr,
            "localhost",
            client_tls(&edge.pki),
            req,
        )
        .await;
        return Answer {
            status,
            headers,
            body: body.to_vec(),
            trailers: None,
            arrivals: Vec::new(),
        };
    }
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_tls(&edge.pki))
        .https_only();
    let (https, h2) = match proto {
        Proto::H1 => (builder.enable_http1().build(), false),
        _ => (builder.enable_http2().build(), true),
    };
    let client = Client::builder(TokioExecutor::new())
        .http2_only(h2)
        .build::<_, ProxyBody>(https);
    let frames: Vec<Result<Frame<Bytes>, BoxError>> =
        chunks.into_iter().map(|c| Ok(Frame::data(c))).collect();
    let body = StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync();
    let t0 = Instant::now();
    let res = client
        .request(Request::from_parts(parts, body))
        .await
        .expect("request");
    assert_eq!(
        res.version(),
        if h2 {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        }
    );
    let (head, mut body) = res.into_parts();
    let (mut data, mut trailers, mut arrivals) = (Vec::new(), None, Vec::new());
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("response body");
        if let Some(d) = frame.data_ref() {
            arrivals.push(t0.elapsed());
            data.extend_from_slice(d);
        } else if let Some(t) = frame.trailers_ref() {
            trailers = Some(t.clone());
        }
    }
    Answer {
        status: head.status,
        headers: head.headers,
        body: data,
        trailers,
        arrivals,
    }
}

/// A gRPC-Web call of `path` with `msg`: the 5-byte prefix by hand; for `-text` the frame is
/// sent as two padded base64 chunks end to end, cut into 5-character body chunks (so quads
/// split across chunks).
fn call(
    path: &str,
    content_type: &str,
    msg: &impl Message,
    bearer: Option<&str>,
) -> Request<Vec<Bytes>> {
    let payload = msg.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(payload.len()).expect("len").to_be_bytes());
    frame.extend_from_slice(&payload);
    let chunks = if content_type.contains("-text") {
        let text = format!(
            "{}{}",
            STANDARD.encode(&frame[..4]),
            STANDARD.encode(&frame[4..])
        );
        text.as_bytes()
            .chunks(5)
            .map(Bytes::copy_from_slice)
            .collect()
    } else {
        vec![Bytes::from(frame)]
    };
    let mut req = Request::post(path)
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .header("x-user-agent", "grpc-web-javascript/0.1");
    if content_type.contains("-text") {
        req = req.header("accept", "application/grpc-web-text");
    }
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.body(chunks).expect("request")
}

/// The body's gRPC-Web frames: (flag byte, payload). `-text` bodies are decoded quad by quad,
/// since padded chunks may follow one another.
fn frames(content_type: &str, body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let raw: Vec<u8> = if content_type.contains("-text") {
        assert_eq!(body.len() % 4, 0, "whole base64 quads");
        body.chunks(4)
            .flat_map(|q| STANDARD.decode(q).expect("base64"))
            .collect()
    } else {
        body.to_vec()
    };
    let mut out = Vec::new();
    let mut rest = &raw[..];
    while !rest.is_empty() {
        assert!(rest.len() >= 5, "a whole frame prefix: {rest:?}");
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        assert!(rest.len() >= 5 + len, "a whole frame");
        out.push((rest[0], rest[5..5 + len].to_vec()));
        rest = &rest[5 + len..];
    }
    out
}

/// The messages and the trailers frame (which must come last, once) of an answer.
fn split(content_type: &str, body: &[u8]) -> (Vec<Order>, Vec<(String, String)>) {
    let all = frames(content_type, body);
    let (last, data) = all.split_last().expect("at least the trailers frame");
    assert_eq!(last.0, 0x80, "the last frame is the trailers frame");
    let orders = data
        .iter()
        .map(|(flag, payload)| {
            assert_eq!(*flag, 0, "uncompressed data frames before the trailers");
            Order::decode(&payload[..]).expect("an Order")
        })
        .collect();
    let block = String::from_utf8(last.1.clone()).expect("ASCII trailers");
    assert!(block.ends_with("\r\n"), "{block:?}");
    let trailers = block
        .split_terminator("\r\n")
        .map(|l| {
            let (k, v) = l.split_once(": ").expect("name: value");
            assert_eq!(k, k.to_ascii_lowercase(), "lower-case names");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    (orders, trailers)
}

fn trailer<'t>(t: &'t [(String, String)], name: &str) -> Option<&'t str> {
    t.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn alice(edge: &TlsEdge) -> String {
    token(&edge.keys, &TokenRequest::new("alice"))
}

#[tokio::test]
async fn unary_calls_in_every_format_over_every_protocol() {
    let edge = start().await;
    let token = alice(&edge);
    let table = [
        (
            Proto::H1,
            "application/grpc-web+proto",
            "application/grpc+proto",
        ),
        (
            Proto::H1,
            "application/grpc-web-text+proto",
            "application/grpc+proto",
        ),
        (Proto::H1, "application/grpc-web", "application/grpc"),
        (Proto::H1, "application/grpc-web-text", "application/grpc"),
        (
            Proto::H2,
            "application/grpc-web+proto",
            "application/grpc+proto",
        ),
        (
            Proto::H2,
            "application/grpc-web-text+proto",
            "application/grpc+proto",
        ),
        (
            Proto::H3,
            "application/grpc-web+proto",
            "application/grpc+proto",
        ),
        (Proto::H3, "application/grpc-web-text", "application/grpc"),
    ];
    for (proto, ct, upstream_ct) in table {
        let case = format!("{proto:?} {ct}");
        let req = call(
            GET,
            ct,
            &GetOrderRequest {
                order_id: "o-1".into(),
            },
            Some(&token),
        );
        let a = send(&edge, proto, req).await;
        assert_eq!(a.status, StatusCode::OK, "{case}");
        assert_eq!(
            a.header("content-type"),
            ct,
            "{case}: the caller's own type"
        );
        assert_eq!(a.header("x-served-by"), "orders", "{case}: headers pass");
        assert!(
            a.headers.get("grpc-status").is_none(),
            "{case}: the status is in the body"
        );
        assert!(a.trailers.is_none(), "{case}: no HTTP trailers");
        let (orders, trailers) = split(ct, &a.body);
        assert_eq!(orders, [order("o-1", "alice")], "{case}");
        assert_eq!(trailer(&trailers, "grpc-status"), Some("0"), "{case}");

        let seen = edge
            .seen
            .lock()
            .expect("seen")
            .pop()
            .expect("the service was called");
        assert_eq!(seen.0, GET, "{case}");
        assert_eq!(seen.1, upstream_ct, "{case}: gRPC upstream");
        assert_eq!(seen.2, "trailers", "{case}: te");
        assert_eq!(seen.3, http::Version::HTTP_2, "{case}");
    }
    edge.running.shutdown();
}

#[tokio::test]
async fn server_streaming_arrives_message_by_message() {
    let edge = start().await;
    let token = alice(&edge);
    for (proto, ct) in [
        (Proto::H1, "application/grpc-web+proto"),
        (Proto::H2, "application/grpc-web-text+proto"),
        (Proto::H1, "application/grpc-web-text"),
    ] {
        let case = format!("{proto:?} {ct}");
        let a = send(
            &edge,
            proto,
            call(LIST, ct, &ListOrdersRequest { page_size: 5 }, Some(&token)),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{case}");
        assert_eq!(a.header("content-type"), ct, "{case}");
        let (orders, trailers) = split(ct, &a.body);
        let ids: Vec<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
        assert_eq!(ids, ["o-0", "o-1", "o-2", "o-3", "o-4"], "{case}");
        assert_eq!(trailer(&trailers, "grpc-status"), Some("0"), "{case}");
        // The service spaces its messages 100ms apart: the first reached the client long
        // before the last, so nothing held the stream back.
        let (first, last) = (a.arrivals[0], a.arrivals[a.arrivals.len() - 1]);
        assert!(a.arrivals.len() >= 5, "{case}: {:?}", a.arrivals);
        assert!(
            last - first >= Duration::from_millis(300),
            "{case}: {:?}",
            a.arrivals
        );
    }
    edge.running.shutdown();
}

#[tokio::test]
async fn service_errors_reach_the_client_as_statuses() {
    let edge = start().await;
    let token = alice(&edge);
    for ct in [
        "application/grpc-web+proto",
        "application/grpc-web-text+proto",
    ] {
        // Trailers-only (the call failed before any message): the status stays in the
        // headers, as the protocol allows, and the body is empty.
        let req = call(
            GET,
            ct,
            &GetOrderRequest {
                order_id: "missing".into(),
            },
            Some(&token),
        );
        let a = send(&edge, Proto::H1, req).await;
        assert_eq!(a.status, StatusCode::OK, "{ct}");
        assert_eq!(a.header("content-type"), ct);
        assert_eq!(a.header("grpc-status"), (Code::NotFound as i32).to_string());
        // Percent-encoded by the service (PROTOCOL-HTTP2), passed on as it is.
        assert_eq!(a.header("grpc-message"), "no%20order%20missing");
        assert!(a.body.is_empty(), "{ct}: {:?}", a.body);

        // Failing mid-stream: the messages so far, then the status in the trailers frame.
        let req = call(
            LIST,
            ct,
            &ListOrdersRequest { page_size: BREAKS },
            Some(&token),
        );
        let a = send(&edge, Proto::H2, req).await;
        assert_eq!(a.status, StatusCode::OK, "{ct}");
        assert!(a.trailers.is_none(), "{ct}: no HTTP trailers");
        let (orders, trailers) = split(ct, &a.body);
        assert_eq!(orders.len(), 2, "{ct}");
        assert_eq!(trailer(&trailers, "grpc-status"), Some("5"), "{ct}");
        assert_eq!(
            trailer(&trailers, "grpc-message"),
            Some("page%203%20is%20gone"),
            "{ct}"
        );
    }
    edge.running.shutdown();
}

#[tokio::test]
async fn the_edges_own_refusals_are_statuses_in_the_callers_type() {
    let edge = start().await;
    let msg = GetOrderRequest {
        order_id: "o-1".into(),
    };
    // (what, request, content type, grpc-status)
    let cases = [
        (
            "no token",
            call(GET, "application/grpc-web-text", &msg, None),
            16,
        ),
        (
            "bad token",
            call(GET, "application/grpc-web+proto", &msg, Some("not.a.token")),
            16,
        ),
        (
            "no policy",
            call(
                "/shop.nothing.v1.X/Y",
                "application/grpc-web+proto",
                &msg,
                None,
            ),
            12,
        ),
        (
            "no route",
            call(
                "/shop.other.v1.X/Y",
                "application/grpc-web-text+proto",
                &msg,
                None,
            ),
            12,
        ),
        // The first call of the limited policy reaches the service (which has no such method);
        // the second is refused by the edge's rate limit.
        (
            "limited, first",
            call(
                "/shop.orders.v1.Limited/Go",
                "application/grpc-web",
                &msg,
                None,
            ),
            12,
        ),
        (
            "limited, second",
            call(
                "/shop.orders.v1.Limited/Go",
                "application/grpc-web",
                &msg,
                None,
            ),
            8,
        ),
    ];
    for (what, mut req, code) in cases {
        let ct = req.headers()["content-type"]
            .to_str()
            .expect("ct")
            .to_owned();
        req.headers_mut()
            .insert("origin", ORIGIN.parse().expect("origin"));
        let a = send(&edge, Proto::H1, req).await;
        assert_eq!(a.status, StatusCode::OK, "{what}");
        assert_eq!(a.header("content-type"), ct, "{what}");
        assert_eq!(
            a.header("grpc-status"),
            code.to_string(),
            "{what}: {}",
            a.header("grpc-message")
        );
        assert!(!a.header("grpc-message").is_empty(), "{what}");
        assert!(a.body.is_empty(), "{what}");
    }
    // A browser script can read the refusal's status (the policy has `cors`).
    let req = call(GET, "application/grpc-web+proto", &msg, None);
    let (mut parts, body) = req.into_parts();
    parts
        .headers
        .insert("origin", ORIGIN.parse().expect("origin"));
    let a = send(&edge, Proto::H2, Request::from_parts(parts, body)).await;
    assert_eq!(a.header("grpc-status"), "16");
    assert_eq!(a.header("access-control-allow-origin"), ORIGIN);
    let exposed = a.header("access-control-expose-headers");
    for h in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.split(", ").any(|e| e == h), "{h} in {exposed}");
    }
    assert!(a.headers.contains_key("www-authenticate"));
    edge.running.shutdown();
}

#[tokio::test]
async fn browsers_preflight_then_call() {
    let edge = start().await;
    let preflight = |headers: &str| {
        Request::options(GET)
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", headers)
            .body(Vec::new())
            .expect("preflight")
    };
    let asked = "x-grpc-web, content-type, x-user-agent, authorization, grpc-timeout";
    for proto in [Proto::H1, Proto::H2] {
        let a = send(&edge, proto, preflight(asked)).await;
        assert_eq!(
            a.status,
            StatusCode::NO_CONTENT,
            "{proto:?}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(a.header("access-control-allow-origin"), ORIGIN);
        assert_eq!(a.header("access-control-allow-headers"), asked);
        assert_eq!(a.header("access-control-max-age"), "600");
    }
    // A header neither the policy nor gRPC-Web needs is still refused.
    let a = send(&edge, Proto::H1, preflight("x-grpc-web, x-secret")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        edge.seen.lock().expect("seen").is_empty(),
        "preflights stay at the edge"
    );

    // The call itself: readable by the script, status headers exposed.
    let token = alice(&edge);
    let mut req = call(
        GET,
        "application/grpc-web-text+proto",
        &GetOrderRequest {
            order_id: "o-2".into(),
        },
        Some(&token),
    );
    req.headers_mut()
        .insert("origin", ORIGIN.parse().expect("origin"));
    let a = send(&edge, Proto::H2, req).await;
    assert_eq!(a.header("access-control-allow-origin"), ORIGIN);
    assert!(
        a.header("access-control-expose-headers")
            .contains("grpc-message")
    );
    let (orders, trailers) = split("application/grpc-web-text+proto", &a.body);
    assert_eq!(orders, [order("o-2", "alice")]);
    assert_eq!(trailer(&trailers, "grpc-status"), Some("0"));
    edge.running.shutdown();
}

#[tokio::test]
async fn a_text_body_that_is_not_base64_is_refused() {
    let edge = start().await;
    let token = alice(&edge);
    let req = Request::post(GET)
        .header("content-type", "application/grpc-web-text")
        .header("authorization", format!("Bearer {token}"))
        .body(vec![
            Bytes::from_static(b"AAAA"),
            Bytes::from_static(b"AA*A"),
        ])
        .expect("request");
    let a = send(&edge, Proto::H1, req).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), "application/grpc-web-text");
    assert_eq!(a.header("grpc-status"), "3", "{}", a.header("grpc-message"));
    edge.running.shutdown();
}
