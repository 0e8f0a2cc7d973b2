//! The `proxy` handler's shaping, XML and cache end to end, and an aggregate's shaping: real
//! listeners, a fake catalog, what the client sent ↔ what it got and what the service saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gatehouse_common::body::full;
use gatehouse_common::config;
use gatehouse_common::runtime::Running;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::{Backend, BackendHandle, Client};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{Value, json};

/// A catalog: `/products/<id>` (max-age=60), `/private/<id>` (private), `/slow/<id>` (after
/// 200 ms, max-age=60), `/echo` (the JSON body it got back, with its content type),
/// `/reviews/<id>` (503 for id 0).
async fn catalog(hits: Arc<AtomicUsize>) -> BackendHandle {
    Backend::new()
        .handle("/", move |seen| {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                let uri = seen.uri.clone();
                let path = uri.split('?').next().unwrap_or("");
                // The `cached` route passes the client's path on as it is.
                let path = path.strip_prefix("/cached").unwrap_or(path);
                let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                let product = |id: &str| {
                    json!({"id": id, "name": "Café <Crème> & co", "description": "d",
                           "category": "machines", "instance": 1, "tags": ["a", "b"],
                           "discontinued": null})
                };
                let (status, cc, body) = match segs.as_slice() {
                    ["products", id] => (200, "max-age=60", product(id)),
                    ["private", id] => (200, "private, max-age=60", product(id)),
                    ["nostore", id] => (200, "no-store", product(id)),
                    ["slow", id] => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        (200, "max-age=60", product(id))
                    }
                    ["echo"] => {
                        let got = String::from_utf8_lossy(&seen.body_head).into_owned();
                        let ct = seen
                            .headers
                            .get(CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        (200, "no-store", json!({"content_type": ct, "body": got}))
                    }
                    ["reviews", "0"] => (503, "no-store", json!({"title": "down"})),
                    ["reviews", _] => (200, "max-age=60", json!({"average_rating": 4.5})),
                    _ => (404, "no-store", json!({"title": "no"})),
                };
                let mut res = Response::new(full(body.to_string()));
                *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                let h = res.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert(CACHE_CONTROL, HeaderValue::from_static(cc));
                res
            }
        })
        .run()
        .await
}

async fn gateway(svc: &BackendHandle) -> (Running, String) {
    let addr = svc.addr;
    let yaml = format!(
        r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
internal:
  cache: {{ max_bytes: 1MiB }}
routes:
  - name: v1
    match: {{ path_template: "/v1/products/{{id}}" }}
    handler:
      proxy:
        service: catalog
        path: "/products/{{id}}"
        shape: {{ rename: {{ name: title }}, keep: [id, title, category] }}
  - name: v2
    match: {{ path_template: "/v2/products/{{id}}" }}
    handler:
      proxy: {{ service: catalog, path: "/products/{{id}}", shape: {{ drop: [instance] }},
               xml: {{ root: product }} }}
  - name: cached
    match: {{ path_prefix: /cached }}
    handler:
      proxy: {{ service: catalog, cache: {{}} }}
  - name: xml-echo
    match: {{ path: /xml/echo }}
    handler:
      proxy: {{ service: catalog, path: /echo, xml: {{ root: echo, accept_xml_body: true }} }}
  - name: page
    match: {{ path_template: "/page/{{id}}" }}
    handler:
      aggregate:
        parts:
          - {{ name: product, service: catalog, path: "/products/{{id}}" }}
          - {{ name: reviews, service: catalog, path: "/reviews/{{id}}", required: false }}
        shape:
          move: {{ /product/id: /id, /product/name: /name, /reviews/average_rating: /rating }}
          keep: [id, name, rating]
        cache: {{}}
        xml: {{ root: page }}
services:
  catalog: {{ endpoints: ["{addr}"] }}
"#
    );
    let loaded = config::parse::<ProxySettings>("internal.yaml", &yaml).expect("config");
    let running = gatehouse_internal::run(loaded, None)
        .await
        .expect("internal gateway starts");
    let plain = running.addr("plain").await.expect("plain listener");
    (running, format!("http://{plain}"))
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn send(
    client: &Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = client.send(req.body(full(body)).expect("request")).await;
    let (status, h, body) = gatehouse_tests::client::collect(res).await;
    (status, h, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn api_versions_are_shapes_of_one_service() {
    let hits = Arc::new(AtomicUsize::new(0));
    let svc = catalog(hits).await;
    let (_gw, base) = gateway(&svc).await;
    let client = Client::http1();
    let (status, _, body) = client.get(&format!("{base}/v1/products/1001")).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v,
        json!({"id": "1001", "title": "Café <Crème> & co", "category": "machines"})
    );
    let (_, _, body) = client.get(&format!("{base}/v2/products/1001")).await;
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["name"], "Café <Crème> & co");
    assert!(v.get("instance").is_none(), "{v}");
    // A service's error is relayed as it is.
    let (status, _, _) = client.get(&format!("{base}/v1/products")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn xml_by_accept_and_406() {
    let hits = Arc::new(AtomicUsize::new(0));
    let svc = catalog(hits).await;
    let (_gw, base) = gateway(&svc).await;
    let client = Client::http1();
    let url = format!("{base}/v2/products/1001");
    // (Accept, status, content type)
    let cases = [
        (None, 200, "application/json"),
        (
            Some("application/xml"),
            200,
            "application/xml; charset=utf-8",
        ),
        (
            Some("application/json, application/xml;q=0.5"),
            200,
            "application/json",
        ),
        (
            Some("text/html, application/xml;q=0.9, */*;q=0.8"),
            200,
            "application/xml; charset=utf-8",
        ),
        (Some("text/html"), 406, "application/problem+json"),
    ];
    for (accept, want, ct) in cases {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        let (status, h, body) = send(&client, Method::GET, &url, &headers, "").await;
        assert_eq!(status.as_u16(), want, "{accept:?}: {body}");
        assert_eq!(header(&h, "content-type"), ct, "{accept:?}");
        if want == 200 {
            assert_eq!(header(&h, "vary"), "accept", "{accept:?}");
        }
    }
    // The service was asked for JSON whatever the client accepted.
    assert_eq!(
        header(&svc.last().headers, ACCEPT.as_str()),
        "application/json"
    );
    let (_, _, xml) = send(
        &client,
        Method::GET,
        &url,
        &[("accept", "application/xml")],
        "",
    )
    .await;
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{xml}"
    );
    for want in [
        "<product xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">",
        "<name>Café &lt;Crème&gt; &amp; co</name>",
        "<tags><item>a</item><item>b</item></tags>",
        "<discontinued xsi:nil=\"true\"/>",
    ] {
        assert!(xml.contains(want), "{want} in {xml}");
    }
}

#[tokio::test]
async fn an_xml_body_reaches_the_service_as_json_and_its_answer_comes_back_as_xml() {
    let hits = Arc::new(AtomicUsize::new(0));
    let svc = catalog(hits).await;
    let (_gw, base) = gateway(&svc).await;
    let client = Client::http1();
    let url = format!("{base}/xml/echo");
    let (status, h, body) = send(
        &client,
        Method::POST,
        &url,
        &[
            ("content-type", "application/xml"),
            ("accept", "application/xml"),
        ],
        "<order><productId>1001</productId><quantity>2</quantity></order>",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(header(&h, "content-type"), "application/xml; charset=utf-8");
    let seen = svc.last();
    assert_eq!(header(&seen.headers, "content-type"), "application/json");
    let sent: Value = serde_json::from_slice(&seen.body_head).expect("json body");
    assert_eq!(sent, json!({"productId": "1001", "quantity": "2"}));
    assert!(
        body.contains("<content_type>application/json</content_type>"),
        "{body}"
    );
    // A malformed or hostile XML body is a 400 problem and never reaches the service.
    let before = svc.count();
    for bad in [
        "<order><productId>1001</order>",
        "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><order>&a;</order>",
    ] {
        let (status, h, body) = send(
            &client,
            Method::POST,
            &url,
            &[("content-type", "application/xml")],
            bad,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(header(&h, "content-type"), "application/problem+json");
    }
    assert_eq!(svc.count(), before);
}

#[tokio::test]
async fn the_cache_hits_and_coalesces_over_real_sockets() {
    let hits = Arc::new(AtomicUsize::new(0));
    let svc = catalog(hits.clone()).await;
    let (_gw, base) = gateway(&svc).await;
    let client = Client::http1();

    let (_, h, _) = client.get(&format!("{base}/cached/products/1")).await;
    assert_eq!(header(&h, "x-cache"), "MISS");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, h, body) = client.get(&format!("{base}/cached/products/1")).await;
    assert_eq!(header(&h, "x-cache"), "HIT");
    let age: u64 = header(&h, "age").parse().expect("Age");
    assert!(age >= 1, "{age}");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["id"], "1");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // private and no-store are not stored; an authorized request bypasses.
    for path in ["/cached/private/1", "/cached/nostore/1"] {
        for _ in 0..2 {
            let (_, h, _) = client.get(&format!("{base}{path}")).await;
            assert_eq!(header(&h, "x-cache"), "MISS", "{path}");
        }
    }
    let (_, h, _) = send(
        &client,
        Method::GET,
        &format!("{base}/cached/products/1"),
        &[("authorization", "Bearer x")],
        "",
    )
    .await;
    assert_eq!(header(&h, "x-cache"), "BYPASS");

    // 50 concurrent cold requests on one key: one upstream request.
    hits.store(0, Ordering::SeqCst);
    let client = Arc::new(Client::h2c());
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (client, url) = (client.clone(), format!("{base}/cached/slow/7"));
        tasks.push(tokio::spawn(async move { client.get(&url).await }));
    }
    let mut misses = 0;
    for t in tasks {
        let (status, h, _) = t.await.expect("task");
        assert_eq!(status, StatusCode::OK);
        misses += usize::from(header(&h, "x-cache") == "MISS");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "one upstream request");
    assert_eq!(misses, 1);
}

#[tokio::test]
async fn an_aggregate_is_shaped_cached_unless_partial_and_rendered_as_xml() {
    let hits = Arc::new(AtomicUsize::new(0));
    let svc = catalog(hits.clone()).await;
    let (_gw, base) = gateway(&svc).await;
    let client = Client::http1();
    let (status, h, body) = client.get(&format!("{base}/page/5")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "x-cache"), "MISS");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v,
        json!({"id": "5", "name": "Café <Crème> & co", "rating": 4.5})
    );
    let (_, h, _) = client.get(&format!("{base}/page/5")).await;
    assert_eq!(header(&h, "x-cache"), "HIT");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "two parts, once");

    // Reviews of 0 fail: rating null, partial, and never stored.
    for _ in 0..2 {
        let (status, h, body) = client.get(&format!("{base}/page/0")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&h, "x-cache"), "MISS");
        assert_eq!(header(&h, "x-gatehouse-partial"), "reviews");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["rating"], Value::Null);
        assert_eq!(v["errors"][0]["part"], "reviews");
    }
    let (_, h, xml) = send(
        &client,
        Method::GET,
        &format!("{base}/page/5"),
        &[("accept", "application/xml")],
        "",
    )
    .await;
    let xml = String::from_utf8_lossy(xml.as_bytes());
    assert_eq!(header(&h, "content-type"), "application/xml; charset=utf-8");
    assert!(xml.contains("<rating>4.5</rating>"), "{xml}");
}
