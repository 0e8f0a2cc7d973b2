//! `catalog`: `GET /products` and `GET /products/{id}`, saying which instance answered.

use bytes::Bytes;
use http::{Request, Response};
use serde_json::{Value, json};

use super::{RestApp, only_get, segment};
use crate::respond::{Body, not_found, ok};
use crate::shop::{PRODUCTS, Product, product};

/// The catalog; `instance` goes into every body (and `x-instance`) to make balancing visible.
pub(crate) struct Catalog {
    pub(crate) instance: u32,
}

fn summary(p: &Product) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "category": p.category,
    })
}

impl RestApp for Catalog {
    fn handle(&self, req: &Request<Bytes>) -> Response<Body> {
        if let Some(resp) = only_get(req) {
            return resp;
        }
        let path = req.uri().path();
        if path == "/products" {
            let products: Vec<Value> = PRODUCTS.iter().map(summary).collect();
            return ok(&json!({"instance": self.instance, "products": products}));
        }
        match segment(path, "/products/") {
            Some(id) => match product(id) {
                Some(p) => {
                    let mut body = summary(p);
                    body["instance"] = self.instance.into();
                    ok(&body)
                }
                None => not_found(&format!("no product {id}")),
            },
            None => not_found(&format!("no resource {path}")),
        }
    }
}
