//! `reviews`, `pricing` and `inventory`: one resource each, keyed by product id.

use bytes::Bytes;
use http::{Request, Response};
use serde_json::json;

use super::{RestApp, only_get, segment};
use crate::respond::{Body, not_found, ok};
use crate::shop::{CURRENCY, Product, product};

/// Answers with `answer(product)` for the product named by the path after `prefix`, or 404/405.
fn by_product(
    req: &Request<Bytes>,
    prefix: &str,
    answer: impl FnOnce(&'static Product) -> Response<Body>,
) -> Response<Body> {
    if let Some(resp) = only_get(req) {
        return resp;
    }
    let path = req.uri().path();
    match segment(path, prefix) {
        Some(id) => product(id).map_or_else(|| not_found(&format!("no product {id}")), answer),
        None => not_found(&format!("no resource {path}")),
    }
}

/// `GET /reviews/{product_id}` → `{"product_id", "reviews": [{"author","rating","text"}], "count",
/// "average_rating"}`.
pub(crate) struct Reviews;

impl RestApp for Reviews {
    fn handle(&self, req: &Request<Bytes>) -> Response<Body> {
        by_product(req, "/reviews/", |p| {
            let n = p.reviews.len();
            let sum: u32 = p.reviews.iter().map(|r| u32::from(r.rating)).sum();
            let average = (n > 0).then(|| f64::from(sum) / n as f64);
            ok(&json!({
                "product_id": p.id,
                "reviews": p.reviews,
                "count": n,
                "average_rating": average,
            }))
        })
    }
}

/// `GET /prices/{product_id}` → `{"product_id", "unit_price_cents", "currency"}`.
pub(crate) struct Pricing;

impl RestApp for Pricing {
    fn handle(&self, req: &Request<Bytes>) -> Response<Body> {
        by_product(req, "/prices/", |p| {
            ok(&json!({
                "product_id": p.id,
                "unit_price_cents": p.unit_price_cents,
                "currency": CURRENCY,
            }))
        })
    }
}

/// `GET /stock/{product_id}` → `{"product_id", "available", "in_stock"}`.
pub(crate) struct Inventory;

impl RestApp for Inventory {
    fn handle(&self, req: &Request<Bytes>) -> Response<Body> {
        by_product(req, "/stock/", |p| {
            ok(&json!({
                "product_id": p.id,
                "available": p.stock,
                "in_stock": p.stock > 0,
            }))
        })
    }
}
