//! `orders` over gRPC with a tonic client: orders belong to the caller's subject, `CreateOrder`
//! asks inventory and pricing through a (fake) sidecar, `ListOrders` streams.

use std::collections::HashMap;

use gatehouse_topology::proto::orders_client::OrdersClient;
use gatehouse_topology::proto::{CreateOrderRequest, GetOrderRequest, ListOrdersRequest, Order};
use gatehouse_topology::{RunningService, ServeOptions, ServiceName};
use tonic::transport::Channel;
use tonic::{Code, Request};

use super::support::{FakeSidecar, chaos, get, start, start_with};

/// orders, inventory and pricing, wired through a fake sidecar that routes by `Host`.
struct Shop {
    orders: RunningService,
    pricing: RunningService,
    _inventory: RunningService,
    sidecar: FakeSidecar,
}

async fn shop() -> Shop {
    let inventory = start(ServiceName::Inventory).await;
    let pricing = start(ServiceName::Pricing).await;
    let routes = HashMap::from([
        ("inventory", inventory.listen()),
        ("pricing", pricing.listen()),
    ]);
    let sidecar = FakeSidecar::start(routes).await;
    let opts = ServeOptions {
        upstream_proxy: Some(sidecar.addr),
        ..ServeOptions::default()
    };
    let orders = start_with(ServiceName::Orders, opts).await;
    Shop {
        orders,
        pricing,
        _inventory: inventory,
        sidecar,
    }
}

async fn client(orders: &RunningService) -> OrdersClient<Channel> {
    OrdersClient::connect(format!("http://{}", orders.listen()))
        .await
        .expect("connect")
}

/// A request carrying the caller's subject, as the mesh sets it.
fn as_subject<T>(subject: &str, message: T) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut()
        .insert("x-gatehouse-subject", subject.parse().expect("metadata"));
    req
}

fn create(product_id: &str, quantity: u32) -> CreateOrderRequest {
    CreateOrderRequest {
        product_id: product_id.into(),
        quantity,
    }
}

async fn list(c: &mut OrdersClient<Channel>, subject: &str, page_size: u32) -> Vec<Order> {
    let mut stream = c
        .list_orders(as_subject(subject, ListOrdersRequest { page_size }))
        .await
        .expect("list")
        .into_inner();
    let mut out = Vec::new();
    while let Some(order) = stream.message().await.expect("stream") {
        out.push(order);
    }
    out
}

#[tokio::test]
async fn create_get_and_list_belong_to_the_caller() {
    let shop = shop().await;
    let mut c = client(&shop.orders).await;
    let resp = c
        .create_order(as_subject("alice", create("1001", 2)))
        .await
        .expect("create");
    assert_eq!(
        resp.metadata().get("x-instance").map(|v| v.to_str().ok()),
        Some(Some("1"))
    );
    let order = resp.into_inner();
    assert_eq!(order.product_id, "1001");
    assert_eq!(order.quantity, 2);
    assert_eq!(order.customer, "alice");
    assert_eq!(order.unit_price_cents, 89_900);
    assert_eq!(order.status, "CONFIRMED");
    assert!(!order.order_id.is_empty());
    // Both east-west calls went through the sidecar, named by Host.
    let mut hosts = shop.sidecar.hosts();
    hosts.sort();
    assert_eq!(hosts, ["inventory", "pricing"]);

    let got = c
        .get_order(as_subject(
            "alice",
            GetOrderRequest {
                order_id: order.order_id.clone(),
            },
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, order);
    let other = c
        .get_order(as_subject(
            "bob",
            GetOrderRequest {
                order_id: order.order_id.clone(),
            },
        ))
        .await
        .expect_err("bob cannot see alice's order");
    assert_eq!(other.code(), Code::NotFound);

    let second = c
        .create_order(as_subject("alice", create("1005", 3)))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(second.unit_price_cents, 2_400);
    c.create_order(as_subject("bob", create("1004", 1)))
        .await
        .expect("create");
    assert_eq!(list(&mut c, "alice", 0).await, [order.clone(), second]);
    assert_eq!(list(&mut c, "alice", 1).await, [order]);
    assert_eq!(list(&mut c, "bob", 0).await.len(), 1);
    assert!(list(&mut c, "carol", 0).await.is_empty());
}

#[tokio::test]
async fn create_refuses_what_cannot_be_ordered() {
    let shop = shop().await;
    let mut c = client(&shop.orders).await;
    let cases = [
        (create("1003", 1), Code::FailedPrecondition),
        (create("1002", 5), Code::FailedPrecondition),
        (create("9999", 1), Code::NotFound),
        (create("1001", 0), Code::InvalidArgument),
        (create("", 1), Code::InvalidArgument),
    ];
    for (req, code) in cases {
        let what = format!("{req:?}");
        let err = c
            .create_order(as_subject("alice", req))
            .await
            .expect_err(&what);
        assert_eq!(err.code(), code, "{what}: {}", err.message());
    }
    let anonymous = c
        .create_order(create("1001", 1))
        .await
        .expect_err("no subject");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let anonymous = c
        .list_orders(ListOrdersRequest { page_size: 0 })
        .await
        .expect_err("no subject");
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    // pricing failing behind the sidecar makes CreateOrder UNAVAILABLE.
    chaos(shop.pricing.admin(), r#"{"error_rate": 1}"#).await;
    let err = c
        .create_order(as_subject("alice", create("1001", 1)))
        .await
        .expect_err("pricing down");
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
}

#[tokio::test]
async fn create_without_a_sidecar_is_unavailable() {
    let orders = start(ServiceName::Orders).await;
    let mut c = client(&orders).await;
    let err = c
        .create_order(as_subject("alice", create("1001", 1)))
        .await
        .expect_err("no sidecar");
    assert_eq!(err.code(), Code::Unavailable);
    // Reads still work.
    assert!(list(&mut c, "alice", 0).await.is_empty());
}

#[tokio::test]
async fn chaos_makes_orders_unavailable_and_is_counted() {
    let orders = start(ServiceName::Orders).await;
    let mut c = client(&orders).await;
    let set = chaos(orders.admin(), r#"{"error_rate": 1.0}"#).await;
    assert_eq!(set.status, http::StatusCode::OK);
    let err = c
        .get_order(as_subject(
            "alice",
            GetOrderRequest {
                order_id: "x".into(),
            },
        ))
        .await
        .expect_err("chaos");
    assert_eq!(err.code(), Code::Unavailable);
    chaos(orders.admin(), r#"{"error_rate": 0}"#).await;
    let err = c
        .get_order(as_subject(
            "alice",
            GetOrderRequest {
                order_id: "x".into(),
            },
        ))
        .await
        .expect_err("unknown order");
    assert_eq!(err.code(), Code::NotFound);
    let metrics = get(orders.admin(), "/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains(r#"demo_requests_total{service="orders",instance="1",status="14"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"demo_requests_total{service="orders",instance="1",status="5"} 1"#),
        "{text}"
    );
}
