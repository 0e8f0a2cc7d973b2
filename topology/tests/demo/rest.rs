//! The REST services answer their documented shapes: catalog, reviews, pricing, inventory,
//! users and echo.

use bytes::Bytes;
use gatehouse_topology::{ServeOptions, ServiceName};
use http::{Method, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::support::{get, request, send, send_with, start, start_with};

#[tokio::test]
async fn catalog_lists_products_and_says_which_instance_answered() {
    let opts = ServeOptions {
        instance: 2,
        ..ServeOptions::default()
    };
    let catalog = start_with(ServiceName::Catalog, opts).await;
    let all = get(catalog.listen(), "/products").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.header("content-type"), "application/json");
    assert_eq!(all.header("x-instance"), "2");
    assert_eq!(all.header("x-service"), "catalog");
    assert_eq!(all.json["instance"], 2);
    let products = all.json["products"].as_array().expect("products");
    assert_eq!(products.len(), 5);
    assert_eq!(products[0]["id"], "1001");

    let one = get(catalog.listen(), "/products/1002").await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json["id"], "1002");
    assert_eq!(one.json["name"], "Burr grinder");
    assert_eq!(one.json["instance"], 2);

    let missing = get(catalog.listen(), "/products/42").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("content-type"), "application/problem+json");
    assert_eq!(missing.json["status"], 404);

    let post = request(Method::POST, "/products")
        .body(Full::default())
        .expect("req");
    let post = send(catalog.listen(), post).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), "GET, HEAD");
    catalog.shutdown().await;
}

#[tokio::test]
async fn reviews_prices_and_stock_by_product() {
    let reviews = start(ServiceName::Reviews).await;
    let pricing = start(ServiceName::Pricing).await;
    let inventory = start(ServiceName::Inventory).await;

    let r = get(reviews.listen(), "/reviews/1001").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["product_id"], "1001");
    assert_eq!(r.json["reviews"].as_array().map(Vec::len), Some(2));
    assert_eq!(r.json["reviews"][0]["rating"], 5);
    assert_eq!(r.json["average_rating"], 4.5);
    let none = get(reviews.listen(), "/reviews/1003").await;
    assert_eq!(none.json["average_rating"], serde_json::Value::Null);

    let p = get(pricing.listen(), "/prices/1001").await;
    assert_eq!(
        p.json,
        json!({"product_id": "1001", "unit_price_cents": 89900, "currency": "EUR"})
    );
    let s = get(inventory.listen(), "/stock/1003").await;
    assert_eq!(
        s.json,
        json!({"product_id": "1003", "available": 0, "in_stock": false})
    );
    let s = get(inventory.listen(), "/stock/1005").await;
    assert_eq!(s.json["in_stock"], true);

    for (svc, path) in [
        (&reviews, "/reviews/nope"),
        (&pricing, "/prices/nope"),
        (&inventory, "/stock/nope"),
        (&pricing, "/prices/1001/extra"),
        (&pricing, "/"),
    ] {
        let a = get(svc.listen(), path).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(a.header("content-type"), "application/problem+json");
    }
}

#[tokio::test]
async fn users_me_answers_the_forwarded_identity() {
    let users = start(ServiceName::Users).await;
    let req = request(Method::GET, "/users/me")
        .header("x-gatehouse-subject", "web-app")
        .header("x-gatehouse-scopes", "users:read orders:read")
        .header("x-gatehouse-issuer", "gatehouse-dev-idp")
        .body(Full::default())
        .expect("req");
    let me = send(users.listen(), req).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(
        me.json,
        json!({"subject": "web-app", "scopes": ["users:read", "orders:read"], "issuer": "gatehouse-dev-idp"})
    );

    let anonymous = get(users.listen(), "/users/me").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.header("content-type"), "application/problem+json");
    assert_eq!(anonymous.json["status"], 401);

    let alice = get(users.listen(), "/users/alice").await;
    assert_eq!(alice.status, StatusCode::OK);
    assert_eq!(alice.json["id"], "alice");
    assert!(alice.json["email"].is_string());
    assert_eq!(
        get(users.listen(), "/users/mallory").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn echo_answers_what_it_received() {
    let echo = start(ServiceName::Echo).await;
    let req = request(Method::PUT, "/a/b?x=1&y=two")
        .header("X-Custom", "one")
        .header("x-custom", "two")
        .header(
            "x-gatehouse-peer",
            "spiffe://gatehouse.local/gateway/internal",
        )
        .body(Full::new(Bytes::from_static(b"hello")))
        .expect("req");
    let a = send(echo.listen(), req).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["method"], "PUT");
    assert_eq!(a.json["path"], "/a/b");
    assert_eq!(a.json["query"], "x=1&y=two");
    assert_eq!(a.json["body"], "hello");
    assert_eq!(a.json["headers"]["x-custom"], json!(["one", "two"]));
    assert_eq!(a.json["headers"]["content-length"], json!(["5"]));
    assert_eq!(a.json["peer"], "spiffe://gatehouse.local/gateway/internal");
    let mut keys: Vec<&String> = a.json.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["body", "headers", "method", "path", "peer", "query"]);

    // Over HTTP/2 too; no query and no peer are null.
    let req = request(Method::GET, "/h2")
        .body(Full::default())
        .expect("req");
    let a = send_with(echo.listen(), req, true).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["path"], "/h2");
    assert_eq!(a.json["query"], serde_json::Value::Null);
    assert_eq!(a.json["peer"], serde_json::Value::Null);
    assert_eq!(a.json["body"], "");
}
