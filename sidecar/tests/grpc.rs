//! gRPC through the mesh: the internal gateway (a tonic client with the gateway's identity) →
//! mTLS/HTTP/2 → the orders service's sidecar → orders (tonic), which itself calls inventory and
//! pricing through its sidecar's outbound side. Unary, server streaming and error statuses arrive intact.

use std::net::SocketAddr;
use std::path::Path;

use gatehouse_certs::Kind;
use gatehouse_certs::test_util::TestPki;
use gatehouse_common::config;
use gatehouse_common::settings::ProxySettings;
use gatehouse_topology::proto::orders_client::OrdersClient;
use gatehouse_topology::proto::{CreateOrderRequest, GetOrderRequest, ListOrdersRequest};
use gatehouse_topology::{ServeOptions, ServiceName, serve};

const TD: &str = "spiffe://gatehouse.local";

fn any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn sidecar(yaml: String) -> gatehouse_common::runtime::Running {
    let loaded = config::parse::<ProxySettings>("sidecar.yaml", &yaml).expect("config");
    gatehouse_sidecar::run(loaded, None).await.expect("start")
}

fn orders_sidecar(
    d: &Path,
    orders: SocketAddr,
    inventory: SocketAddr,
    pricing: SocketAddr,
) -> String {
    let d = d.display();
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    tls: {{ cert: "{d}/orders.pem", key: "{d}/orders-key.pem", client_ca: "{d}/ca.pem" }}
    trusted_gateways: ["{TD}/gateway/internal"]
  - name: outbound
    address: 127.0.0.1:0
admin: {{ address: "127.0.0.1:0" }}
routes:
  - {{ name: inventory, match: {{ host: inventory, listeners: [outbound] }}, service: inventory }}
  - {{ name: pricing, match: {{ host: pricing, listeners: [outbound] }}, service: pricing }}
  - {{ name: orders, service: orders }}
services:
  orders: {{ endpoints: ["{orders}"], protocol: h2c }}
  inventory: {{ endpoints: ["{inventory}"] }}
  pricing: {{ endpoints: ["{pricing}"] }}
sidecar:
  inbound_listener: inbound
  outbound_listener: outbound
  allow: [{{ peers: ["{TD}/gateway/internal"] }}]
"#
    )
}

/// A request carrying the caller's subject, as the internal gateway would send it.
fn with_subject<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("x-gatehouse-subject", "alice".parse().expect("ascii"));
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unary_streaming_and_errors_through_sidecars() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new("gatehouse.local");
    pki.write_dir(dir.path());
    pki.write_identity(dir.path(), Kind::Service, "orders");

    let inventory = serve(
        ServiceName::Inventory,
        any(),
        any(),
        ServeOptions::default(),
    )
    .await
    .expect("inventory");
    let pricing = serve(ServiceName::Pricing, any(), any(), ServeOptions::default())
        .await
        .expect("pricing");
    // Orders needs its sidecar's outbound address, which needs orders' address: bind orders
    // first on a port we pick, then its sidecar.
    let orders_port = std::net::TcpListener::bind(any())
        .expect("bind")
        .local_addr()
        .expect("addr");
    let side_orders_yaml = orders_sidecar(
        dir.path(),
        orders_port,
        inventory.listen(),
        pricing.listen(),
    );
    let side_orders = sidecar(side_orders_yaml).await;
    let opts = ServeOptions {
        upstream_proxy: side_orders.addr("outbound").await,
        ..ServeOptions::default()
    };
    let _orders = serve(ServiceName::Orders, orders_port, any(), opts)
        .await
        .expect("orders");
    let inbound = side_orders.addr("inbound").await.expect("inbound");

    // The internal gateway calls the service's sidecar directly over mTLS with its own identity
    // (it is a mesh member), as tonic client here.
    let d = dir.path();
    let read = |f: &str| std::fs::read_to_string(d.join(f)).expect("read pem");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read("ca.pem")))
        .identity(tonic::transport::Identity::from_pem(
            read("internal.pem"),
            read("internal-key.pem"),
        ))
        .domain_name("orders");
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{inbound}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connect");
    let mut client = OrdersClient::new(channel);

    // Unary, with the east-west calls behind it.
    let order = client
        .create_order(with_subject(CreateOrderRequest {
            product_id: "1001".into(),
            quantity: 2,
        }))
        .await
        .expect("CreateOrder")
        .into_inner();
    assert_eq!(order.customer, "alice");
    assert!(
        order.unit_price_cents > 0,
        "price filled from pricing: {order:?}"
    );

    // Server streaming with trailers.
    let mut stream = client
        .list_orders(with_subject(ListOrdersRequest { page_size: 10 }))
        .await
        .expect("ListOrders")
        .into_inner();
    let mut listed = Vec::new();
    while let Some(o) = stream.message().await.expect("stream item") {
        listed.push(o.order_id);
    }
    assert_eq!(listed, vec![order.order_id.clone()]);

    // An error status from the service arrives as it was sent.
    let err = client
        .get_order(with_subject(GetOrderRequest {
            order_id: "no-such-order".into(),
        }))
        .await
        .expect_err("unknown order");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(!err.message().is_empty());
    // Another subject's order is not found either.
    let err = client
        .get_order({
            let mut r = tonic::Request::new(GetOrderRequest {
                order_id: order.order_id.clone(),
            });
            r.metadata_mut()
                .insert("x-gatehouse-subject", "bob".parse().expect("ascii"));
            r
        })
        .await
        .expect_err("bob may not see alice's order");
    assert_eq!(err.code(), tonic::Code::NotFound);
}
