//! The orders kept in memory, each owned by the subject that created it.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::proto::Order;

/// Orders kept at most: 10 000, oldest dropped first, so a long demo run stays small.
const MAX_ORDERS: usize = 10_000;

/// `Order.status` of a created order.
pub(crate) const CONFIRMED: &str = "CONFIRMED";

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    orders: VecDeque<Order>,
}

/// The order book of one `orders` process.
#[derive(Debug, Default)]
pub(crate) struct Store {
    inner: Mutex<Inner>,
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a confirmed order for `customer` and returns it with its new id, or with `id`
    /// (an async job's order): an order that already has that id is returned as it is, so a
    /// job run twice makes one order.
    pub(crate) fn create(
        &self,
        customer: &str,
        product_id: &str,
        quantity: u32,
        unit_price_cents: i64,
        id: Option<&str>,
    ) -> Order {
        let mut inner = self.lock();
        if let Some(id) = id
            && let Some(existing) = inner.orders.iter().find(|o| o.order_id == id)
        {
            return existing.clone();
        }
        inner.next_id += 1;
        let order_id = match id {
            Some(id) => id.to_owned(),
            None => format!("ord-{:06}", inner.next_id),
        };
        let order = Order {
            order_id,
            product_id: product_id.to_owned(),
            quantity,
            customer: customer.to_owned(),
            unit_price_cents,
            status: CONFIRMED.to_owned(),
        };
        if inner.orders.len() == MAX_ORDERS {
            inner.orders.pop_front();
        }
        inner.orders.push_back(order.clone());
        order
    }

    /// `customer`'s order `order_id`; another customer's order is as absent as an unknown one.
    pub(crate) fn get(&self, customer: &str, order_id: &str) -> Option<Order> {
        self.lock()
            .orders
            .iter()
            .find(|o| o.order_id == order_id && o.customer == customer)
            .cloned()
    }

    /// `customer`'s orders, oldest first, at most `limit` (0: all).
    pub(crate) fn list(&self, customer: &str, limit: u32) -> Vec<Order> {
        let limit = if limit == 0 {
            usize::MAX
        } else {
            limit as usize
        };
        self.lock()
            .orders
            .iter()
            .filter(|o| o.customer == customer)
            .take(limit)
            .cloned()
            .collect()
    }
}
