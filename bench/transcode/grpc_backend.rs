//! The gRPC service of the transcoding benchmark (bench/transcode.sh; bench/README.md,
//! "Transcoding"): `gatehouse.bench.v1.Bench` of bench/configs/transcode-bench.proto, with
//! hand-written prost messages, on tonic's server codec over hyper (h2c, and HTTP/1.1 for
//! `GET /stats`). Unary calls answer at once; `ListOrders` sends `count` messages as fast as the
//! connection takes them. Built as an example of gatehouse-internal (its dev-dependencies have
//! tonic): `cargo build --release -p gatehouse-internal --example transcode-bench-backend`.
//!
//! ```text
//! transcode-bench-backend serve PORT         # the service on 127.0.0.1:PORT
//! transcode-bench-backend frames DIR COUNT…  # the load tools' request bodies (framed protobuf, JSON)
//! transcode-bench-backend check URL COUNT    # every method over gRPC at URL (through the gateway)
//! ```
//!
//! `GET /stats` answers the counters as JSON: calls per method, streams started, finished (sent
//! every message), dropped before the end (the client or the gateway went away) and still open,
//! and messages sent.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::net::TcpListener;
use tonic::Status;
use tonic_prost::ProstCodec;

#[derive(Clone, PartialEq, prost::Message)]
struct CreateOrderRequest {
    #[prost(string, tag = "1")]
    product_id: String,
    #[prost(uint32, tag = "2")]
    quantity: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GetOrderRequest {
    #[prost(string, tag = "1")]
    order_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListOrdersRequest {
    #[prost(uint32, tag = "1")]
    count: u32,
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
    #[prost(int64, tag = "5")]
    unit_price_cents: i64,
    #[prost(string, tag = "6")]
    status: String,
}

/// The most messages one stream sends.
const MAX_COUNT: u32 = 100_000_000;
const SERVICE: &str = "/gatehouse.bench.v1.Bench/";

fn order(order_id: String, product_id: String, quantity: u32) -> Order {
    Order {
        order_id,
        product_id,
        quantity,
        customer: "bench-customer".into(),
        unit_price_cents: 1999,
        status: "CONFIRMED".into(),
    }
}

#[derive(Default)]
struct Stats {
    create: AtomicU64,
    get: AtomicU64,
    list: AtomicU64,
    streams_finished: AtomicU64,
    streams_dropped: AtomicU64,
    messages: AtomicU64,
    other: AtomicU64,
}

impl Stats {
    fn json(&self) -> String {
        let list = self.list.load(Relaxed);
        let finished = self.streams_finished.load(Relaxed);
        let dropped = self.streams_dropped.load(Relaxed);
        format!(
            "{{\"create\": {}, \"get\": {}, \"list\": {}, \"streams_finished\": {}, \
             \"streams_dropped\": {}, \"streams_open\": {}, \"messages\": {}, \"other\": {}}}\n",
            self.create.load(Relaxed),
            self.get.load(Relaxed),
            list,
            finished,
            dropped,
            list.saturating_sub(finished + dropped),
            self.messages.load(Relaxed),
            self.other.load(Relaxed),
        )
    }
}

/// `count` orders; counts each message as tonic takes it, and the stream's end or drop.
struct Orders {
    next: u32,
    count: u32,
    stats: Arc<Stats>,
}

impl Stream for Orders {
    type Item = Result<Order, Status>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.next >= self.count {
            return Poll::Ready(None);
        }
        let i = self.next;
        self.next += 1;
        self.stats.messages.fetch_add(1, Relaxed);
        Poll::Ready(Some(Ok(order(format!("o-{i}"), "p-1".into(), 2))))
    }
}

impl Drop for Orders {
    fn drop(&mut self) {
        match self.next >= self.count {
            true => self.stats.streams_finished.fetch_add(1, Relaxed),
            false => self.stats.streams_dropped.fetch_add(1, Relaxed),
        };
    }
}

async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("bind 127.0.0.1:{port}"))?;
    let stats = Arc::new(Stats::default());
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let stats = stats.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let stats = stats.clone();
                    async move { Ok::<_, Infallible>(route(req, stats).await) }
                });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

async fn route(
    req: http::Request<hyper::body::Incoming>,
    stats: Arc<Stats>,
) -> http::Response<tonic::body::Body> {
    let method = req.uri().path().strip_prefix(SERVICE).unwrap_or("");
    match method {
        "CreateOrder" => {
            stats.create.fetch_add(1, Relaxed);
            let create = tower::service_fn(|req: tonic::Request<CreateOrderRequest>| async move {
                let r = req.into_inner();
                Ok::<_, Status>(tonic::Response::new(order(
                    "o-1".into(),
                    r.product_id,
                    r.quantity,
                )))
            });
            tonic::server::Grpc::new(ProstCodec::<Order, CreateOrderRequest>::default())
                .unary(create, req)
                .await
        }
        "GetOrder" => {
            stats.get.fetch_add(1, Relaxed);
            let get = tower::service_fn(|req: tonic::Request<GetOrderRequest>| async move {
                let r = req.into_inner();
                Ok::<_, Status>(tonic::Response::new(order(r.order_id, "p-1".into(), 2)))
            });
            tonic::server::Grpc::new(ProstCodec::<Order, GetOrderRequest>::default())
                .unary(get, req)
                .await
        }
        "ListOrders" => {
            stats.list.fetch_add(1, Relaxed);
            let list = tower::service_fn(move |req: tonic::Request<ListOrdersRequest>| {
                let stats = stats.clone();
                async move {
                    let count = req.into_inner().count.min(MAX_COUNT);
                    let orders = Orders {
                        next: 0,
                        count,
                        stats,
                    };
                    Ok::<_, Status>(tonic::Response::new(orders))
                }
            });
            tonic::server::Grpc::new(ProstCodec::<Order, ListOrdersRequest>::default())
                .server_streaming(list, req)
                .await
        }
        _ if req.uri().path() == "/stats" => {
            let mut res = http::Response::new(tonic::body::Body::new(http_body_util::Full::new(
                Bytes::from(stats.json()),
            )));
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            res
        }
        _ => {
            stats.other.fetch_add(1, Relaxed);
            Status::unimplemented("no such method").into_http()
        }
    }
}

/// One message with gRPC's 5-byte prefix (not compressed).
fn framed(msg: &impl Message) -> Bytes {
    let body = msg.encode_to_vec();
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
    out.put_slice(&body);
    out.freeze()
}

/// The request bodies the load tools send: `create.grpc`, `get.grpc`, `list-<count>.grpc`
/// (framed protobuf) and `create.json` (the same CreateOrder as JSON).
fn frames(dir: &str, counts: &[u32]) -> anyhow::Result<()> {
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(format!("{dir}/{name}"), bytes).with_context(|| format!("{dir}/{name}"))
    };
    write(
        "create.grpc",
        &framed(&CreateOrderRequest {
            product_id: "p-1".into(),
            quantity: 2,
        }),
    )?;
    write(
        "get.grpc",
        &framed(&GetOrderRequest {
            order_id: "o-1".into(),
        }),
    )?;
    write("create.json", br#"{"productId": "p-1", "quantity": 2}"#)?;
    for count in counts {
        write(
            &format!("list-{count}.grpc"),
            &framed(&ListOrdersRequest { count: *count }),
        )?;
    }
    Ok(())
}

/// Calls every method over gRPC at `url` (the gateway's passthrough route) and checks the
/// answers; prints one JSON line.
async fn check(url: &str, count: u32) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect()
        .await
        .with_context(|| format!("connect {url}"))?;
    let mut client = tonic::client::Grpc::new(channel);
    let path = |m: &str| -> anyhow::Result<http::uri::PathAndQuery> {
        Ok(format!("{SERVICE}{m}").parse()?)
    };

    client.ready().await?;
    let created: Order = client
        .unary(
            tonic::Request::new(CreateOrderRequest {
                product_id: "p-1".into(),
                quantity: 2,
            }),
            path("CreateOrder")?,
            ProstCodec::<CreateOrderRequest, Order>::default(),
        )
        .await
        .context("CreateOrder")?
        .into_inner();
    if created != order("o-1".into(), "p-1".into(), 2) {
        bail!("CreateOrder answered {created:?}");
    }

    client.ready().await?;
    let got: Order = client
        .unary(
            tonic::Request::new(GetOrderRequest {
                order_id: "o-7".into(),
            }),
            path("GetOrder")?,
            ProstCodec::<GetOrderRequest, Order>::default(),
        )
        .await
        .context("GetOrder")?
        .into_inner();
    if got.order_id != "o-7" {
        bail!("GetOrder answered {got:?}");
    }

    client.ready().await?;
    let mut stream = client
        .server_streaming(
            tonic::Request::new(ListOrdersRequest { count }),
            path("ListOrders")?,
            ProstCodec::<ListOrdersRequest, Order>::default(),
        )
        .await
        .context("ListOrders")?
        .into_inner();
    let mut n = 0u32;
    while let Some(o) = stream.next().await {
        let o = o.context("ListOrders stream")?;
        if o.order_id != format!("o-{n}") {
            bail!("ListOrders message {n} is {o:?}");
        }
        n += 1;
    }
    if n != count {
        bail!("ListOrders sent {n} messages, not {count}");
    }
    println!(
        "{{\"create\": \"ok\", \"get\": \"ok\", \"list_messages\": {n}, \"grpc_status\": \"OK\"}}"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |s: &str| -> anyhow::Result<u32> { s.parse().with_context(|| format!("{s:?}")) };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve", port] => serve(port.parse().context("port")?).await,
        ["frames", dir, counts @ ..] => {
            let counts = counts
                .iter()
                .map(|c| number(c))
                .collect::<Result<Vec<_>, _>>()?;
            frames(dir, &counts)
        }
        ["check", url, count] => check(url, number(count)?).await,
        _ => bail!(
            "usage: transcode-bench-backend serve PORT | frames DIR COUNT... | check URL COUNT"
        ),
    }
}
