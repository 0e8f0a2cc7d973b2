//! `catalog`: `GET /products[?category=C&exclude=ID]` and `GET /products/{id}`, saying which
//! instance answered. Product reads say `Cache-Control: max-age=5`: the internal gateway's
//! response cache keeps them that long.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, HeaderValue};
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
            let (mut category, mut exclude) = (None, None);
            for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
                match &*k {
                    "category" => category = Some(v.into_owned()),
                    "exclude" => exclude = Some(v.into_owned()),
                    _ => {}
                }
            }
            let products: Vec<Value> = PRODUCTS
                .iter()
                .filter(|p| category.as_deref().is_none_or(|c| p.category == c))
                .filter(|p| exclude.as_deref() != Some(p.id))
                .map(summary)
                .collect();
            return fresh(ok(
                &json!({"instance": self.instance, "products": products}),
            ));
        }
        match segment(path, "/products/") {
            Some(id) => match product(id) {
                Some(p) => {
                    let mut body = summary(p);
                    body["instance"] = self.instance.into();
                    fresh(ok(&body))
                }
                None => not_found(&format!("no product {id}")),
            },
            None => not_found(&format!("no resource {path}")),
        }
    }
}

/// Product data changes rarely: caches may keep it five seconds.
fn fresh(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
    res
}
