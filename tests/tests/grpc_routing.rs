//! gRPC through the gateway with a real tonic service behind it (h2c) and a tonic client in
//! front: unary and server-streaming calls routed by `/package.Service/Method`, trailers and
//! status details intact, messages streamed as they come, gateway errors as gRPC statuses.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use gatehouse_tests::start;
use http::uri::PathAndQuery;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;

#[derive(Clone, PartialEq, prost::Message)]
struct GetOrder {
    #[prost(string, tag = "1")]
    id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Order {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(uint32, tag = "2")]
    seq: u32,
}

const GET: &str = "/orders.v1.OrderService/Get";
const WATCH: &str = "/orders.v1.OrderService/Watch";
/// The status details a failing call carries (any bytes; usually a `google.rpc.Status`).
const DETAILS: &[u8] = b"\x08\x05\x12\x0bno such one";

async fn get(req: Request<GetOrder>) -> Result<Response<Order>, Status> {
    let id = req.into_inner().id;
    if id == "missing" {
        let mut status = Status::with_details(
            Code::NotFound,
            "order missing not found",
            Bytes::from_static(DETAILS),
        );
        status
            .metadata_mut()
            .insert("x-order-version", "7".parse().expect("metadata"));
        return Err(status);
    }
    let mut res = Response::new(Order { id, seq: 1 });
    res.metadata_mut()
        .insert("x-served-by", "orders".parse().expect("metadata"));
    Ok(res)
}

type OrderStream = futures_util::stream::BoxStream<'static, Result<Order, Status>>;

/// Five orders 100ms apart; for id `fail`, a status with details after them.
async fn watch(req: Request<GetOrder>) -> Result<Response<OrderStream>, Status> {
    let id = req.into_inner().id;
    let fail = id == "fail";
    let stream = futures_util::stream::unfold(0u32, move |seq| {
        let id = id.clone();
        async move {
            if seq > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            match seq {
                0..5 => Some((Ok(Order { id, seq }), seq + 1)),
                5 if fail => Some((
                    Err(Status::with_details(
                        Code::Aborted,
                        "stream broke",
                        Bytes::from_static(DETAILS),
                    )),
                    seq + 1,
                )),
                _ => None,
            }
        }
    });
    Ok(Response::new(stream.boxed()))
}

/// The tonic service on an h2c port.
async fn serve_orders() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let res = match req.uri().path() {
                            GET => {
                                tonic::server::Grpc::new(ProstCodec::<Order, GetOrder>::default())
                                    .unary(tower::service_fn(get), req)
                                    .await
                            }
                            WATCH => {
                                tonic::server::Grpc::new(ProstCodec::<Order, GetOrder>::default())
                                    .server_streaming(tower::service_fn(watch), req)
                                    .await
                            }
                            _ => Status::unimplemented("no such method").into_http(),
                        };
                        Ok::<_, Infallible>(res)
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http2_only()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

async fn client(addr: SocketAddr) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to the gateway");
    tonic::client::Grpc::new(channel)
}

async fn unary(
    c: &mut tonic::client::Grpc<tonic::transport::Channel>,
    path: &'static str,
    id: &str,
) -> Result<Response<Order>, Status> {
    c.ready().await.expect("ready");
    c.unary(
        Request::new(GetOrder { id: id.into() }),
        PathAndQuery::from_static(path),
        ProstCodec::<GetOrder, Order>::default(),
    )
    .await
}

async fn gateway() -> (gatehouse_common::runtime::Running, SocketAddr) {
    let orders = serve_orders().await;
    let yaml = format!(
        r#"
listeners: [{{ name: main, address: 127.0.0.1:0 }}]
admin: {{ address: 127.0.0.1:0 }}
routes:
  - name: orders-get
    match: {{ path: {GET} }}
    service: orders
    response_headers: {{ add: {{ x-route: "{{route}}" }} }}
  - name: orders
    match: {{ path_prefix: /orders.v1.OrderService }}
    service: orders
    response_headers: {{ add: {{ x-route: "{{route}}" }} }}
  - name: dead
    match: {{ path_prefix: /dead.v1.Dead }}
    service: dead
services:
  orders: {{ endpoints: ["{orders}"], protocol: h2c }}
  dead: {{ endpoints: ["127.0.0.1:1"], protocol: h2c }}
"#
    );
    let proxy = start(&yaml).await;
    let addr = proxy.addr("main").await.expect("listener");
    (proxy, addr)
}

#[tokio::test]
async fn unary_calls_pass_with_metadata_and_status_details() {
    let (_proxy, addr) = gateway().await;
    let mut c = client(addr).await;

    let res = unary(&mut c, GET, "o-1").await.expect("call succeeds");
    assert_eq!(
        res.metadata().get("x-served-by").map(|v| v.to_str().ok()),
        Some(Some("orders"))
    );
    assert_eq!(
        res.metadata().get("x-route").map(|v| v.to_str().ok()),
        Some(Some("orders-get"))
    );
    assert_eq!(
        res.into_inner(),
        Order {
            id: "o-1".into(),
            seq: 1
        }
    );

    let status = unary(&mut c, GET, "missing").await.expect_err("not found");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "order missing not found");
    assert_eq!(status.details(), DETAILS);
    assert_eq!(
        status
            .metadata()
            .get("x-order-version")
            .map(|v| v.to_str().ok()),
        Some(Some("7"))
    );
}

#[tokio::test]
async fn server_streaming_passes_each_message_as_it_comes_and_the_final_status() {
    let (_proxy, addr) = gateway().await;
    let mut c = client(addr).await;
    for id in ["ok", "fail"] {
        c.ready().await.expect("ready");
        let start = Instant::now();
        let res = c
            .server_streaming(
                Request::new(GetOrder { id: id.into() }),
                PathAndQuery::from_static(WATCH),
                ProstCodec::<GetOrder, Order>::default(),
            )
            .await
            .expect("stream opens");
        assert_eq!(
            res.metadata().get("x-route").map(|v| v.to_str().ok()),
            Some(Some("orders"))
        );
        let mut stream = res.into_inner();
        let first = stream
            .message()
            .await
            .expect("first message")
            .expect("some");
        // The first message arrives long before the stream ends (400ms later): not buffered.
        assert!(
            start.elapsed() < Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(first.seq, 0);
        let mut seqs = vec![first.seq];
        let end = loop {
            match stream.message().await {
                Ok(Some(o)) => seqs.push(o.seq),
                Ok(None) => break None,
                Err(status) => break Some(status),
            }
        };
        assert_eq!(seqs, vec![0, 1, 2, 3, 4], "{id}");
        match (id, end) {
            ("ok", None) => {
                stream.trailers().await.expect("a clean end: grpc-status 0");
            }
            ("fail", Some(status)) => {
                assert_eq!(status.code(), Code::Aborted);
                assert_eq!(status.message(), "stream broke");
                assert_eq!(status.details(), DETAILS);
            }
            (id, end) => panic!("{id}: unexpected end {end:?}"),
        }
    }
}

#[tokio::test]
async fn gateway_errors_are_grpc_statuses() {
    let (_proxy, addr) = gateway().await;
    let mut c = client(addr).await;
    let status = unary(&mut c, "/unknown.v1.Nope/Get", "x")
        .await
        .expect_err("no route");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert!(
        status.message().contains("no route"),
        "{}",
        status.message()
    );
    let status = unary(&mut c, "/dead.v1.Dead/Get", "x")
        .await
        .expect_err("dead service");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}
