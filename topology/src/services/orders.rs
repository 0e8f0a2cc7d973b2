//! `orders`: the gRPC order service (`shop.orders.v1.Orders`). Orders belong to the caller's
//! subject (`x-gatehouse-subject` metadata); `CreateOrder` asks `inventory` and `pricing`
//! through the sidecar.

mod sidecar;
mod store;
pub(crate) mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use serde::Deserialize;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};

use self::sidecar::Sidecar;
use self::store::Store;
use crate::proto::orders_server::Orders;
use crate::proto::{CreateOrderRequest, GetOrderRequest, ListOrdersRequest, Order};
use crate::services::X_INSTANCE;
use crate::services::users::X_SUBJECT;
use crate::state::State;

/// What `inventory` answers (`GET /stock/{id}`), the part `orders` reads.
#[derive(Debug, Deserialize)]
struct Stock {
    available: u32,
}

/// What `pricing` answers (`GET /prices/{id}`), the part `orders` reads.
#[derive(Debug, Deserialize)]
struct Price {
    unit_price_cents: i64,
}

/// The `Orders` service.
pub(crate) struct OrdersService {
    state: Arc<State>,
    book: Arc<Book>,
}

/// The order book and the way to the services an order needs: shared by the gRPC service and
/// the async worker ([`worker`]).
pub(crate) struct Book {
    store: Store,
    sidecar: Sidecar,
}

impl OrdersService {
    /// `upstream_proxy`: the sidecar's outbound listener; without it `CreateOrder` is `UNAVAILABLE`.
    pub(crate) fn new(state: Arc<State>, upstream_proxy: Option<SocketAddr>) -> Self {
        OrdersService {
            state,
            book: Arc::new(Book {
                store: Store::default(),
                sidecar: Sidecar::new(upstream_proxy),
            }),
        }
    }

    /// The book, for the async worker.
    pub(crate) fn book(&self) -> Arc<Book> {
        self.book.clone()
    }

    /// Runs one call under chaos (latency, then maybe `UNAVAILABLE`), counts its status, and
    /// marks the answer with `x-instance`.
    async fn observe<T>(
        &self,
        call: impl Future<Output = Result<T, Status>>,
    ) -> Result<Response<T>, Status> {
        let result = if self.state.chaos.inject().await {
            self.state.metrics.injected();
            Err(Status::unavailable(
                "failed on purpose: chaos is on (POST /_chaos on the admin listener)",
            ))
        } else {
            call.await
        };
        let code = result.as_ref().err().map_or(tonic::Code::Ok, Status::code);
        self.state.metrics.request(i32::from(code));
        result.map(|value| {
            let mut resp = Response::new(value);
            resp.metadata_mut()
                .insert(X_INSTANCE, MetadataValue::from(self.state.instance));
            resp
        })
    }

    async fn create(&self, req: Request<CreateOrderRequest>) -> Result<Order, Status> {
        let customer = subject(req.metadata())?;
        let meta = req.metadata().clone();
        let CreateOrderRequest {
            product_id,
            quantity,
        } = req.into_inner();
        self.book
            .place(&customer, &product_id, quantity, &meta, None)
            .await
    }

    async fn get(&self, req: Request<GetOrderRequest>) -> Result<Order, Status> {
        let customer = subject(req.metadata())?;
        let order_id = &req.get_ref().order_id;
        self.book
            .store
            .get(&customer, order_id)
            .ok_or_else(|| Status::not_found(format!("no order {order_id}")))
    }

    async fn list(&self, req: Request<ListOrdersRequest>) -> Result<OrderStream, Status> {
        let customer = subject(req.metadata())?;
        let orders = self.book.store.list(&customer, req.get_ref().page_size);
        Ok(Box::pin(futures_util::stream::iter(
            orders.into_iter().map(Ok),
        )))
    }
}

impl Book {
    /// Places an order as `CreateOrder` does: stock and price asked through the sidecar with
    /// `meta`'s request id, trace and identity. `id`: the order's id (an async job's); placing
    /// it again returns the same order.
    pub(crate) async fn place(
        &self,
        customer: &str,
        product_id: &str,
        quantity: u32,
        meta: &MetadataMap,
        id: Option<&str>,
    ) -> Result<Order, Status> {
        if product_id.is_empty() || product_id.contains(['/', '?', '#']) {
            return Err(Status::invalid_argument("product_id must be a product id"));
        }
        if quantity == 0 {
            return Err(Status::invalid_argument("quantity must be at least 1"));
        }
        let (stock_path, price_path) = (
            format!("/stock/{product_id}"),
            format!("/prices/{product_id}"),
        );
        let (stock, price) = tokio::join!(
            self.sidecar
                .get_json::<Stock>("inventory", &stock_path, meta),
            self.sidecar.get_json::<Price>("pricing", &price_path, meta),
        );
        let (stock, price) = (stock?, price?);
        if stock.available < quantity {
            return Err(Status::failed_precondition(format!(
                "product {product_id} is out of stock: {} available, {quantity} ordered",
                stock.available
            )));
        }
        let order = self
            .store
            .create(customer, product_id, quantity, price.unit_price_cents, id);
        tracing::info!(order_id = %order.order_id, %customer, %product_id, quantity, "order created");
        Ok(order)
    }
}

/// The caller's subject, set by the edge and passed on by the mesh.
fn subject(meta: &MetadataMap) -> Result<String, Status> {
    meta.get(X_SUBJECT)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            Status::unauthenticated(
                "no x-gatehouse-subject: call through the gateways with a token",
            )
        })
}

/// The `ListOrders` answer: the caller's orders, one message each.
type OrderStream = Pin<Box<dyn Stream<Item = Result<Order, Status>> + Send>>;

#[tonic::async_trait]
impl Orders for OrdersService {
    async fn create_order(
        &self,
        request: Request<CreateOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        self.observe(self.create(request)).await
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        self.observe(self.get(request)).await
    }

    type ListOrdersStream = OrderStream;

    async fn list_orders(
        &self,
        request: Request<ListOrdersRequest>,
    ) -> Result<Response<Self::ListOrdersStream>, Status> {
        self.observe(self.list(request)).await
    }
}
