//! End-to-end: the whole topology as processes (`gatehouse_topology::up::up`) on a private port
//! base and state directory, exercised through the edge over TLS.
//!
//! Assumes the gateway binaries are built in the same target directory (`cargo build --bins`
//! first, as scripts/test.sh does): they are looked up beside `gatehouse-topology`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[path = "e2e/https.rs"]
mod https;

use https::{Https, bin_dir, client, config_dir, get, port_base, send, tls_config, token};

use base64::Engine;
use bytes::Bytes;
use gatehouse_topology::ServiceName;
use gatehouse_topology::proto::orders_client::OrdersClient;
use gatehouse_topology::proto::{CreateOrderRequest, GetOrderRequest, ListOrdersRequest, Order};
use gatehouse_topology::up::{Topology, UpOptions, config_env, ensure_pki, sidecar_config, up};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_topology() {
    let state = tempfile::tempdir().expect("tempdir");
    let opts = UpOptions {
        state_dir: state.path().to_path_buf(),
        port_base: Some(port_base(20_000)),
        bin_dir: Some(bin_dir()),
        config_dir: Some(config_dir()),
        build: false,
        ready_timeout: Duration::from_secs(30),
    };
    // The Topology kills its children when dropped, so a panic or the timeout leaves nothing.
    let mut topo = up(opts).await.expect("topology up");
    eprintln!("topology ready in {:?}", topo.ready_after);
    tokio::time::timeout(Duration::from_secs(180), checks(&mut topo))
        .await
        .expect("e2e checks within 180s");
    topo.shutdown().await;
}

async fn checks(topo: &mut Topology) {
    // topology.json follows the contract.
    let json: Value = serde_json::from_slice(
        &std::fs::read(topo.state_dir.join("topology.json")).expect("topology.json"),
    )
    .expect("json");
    // 20, and the broker when nats-server is installed, and the store when redis-server is.
    let broker = usize::from(gatehouse_tests::nats::binary().is_some());
    let store = usize::from(gatehouse_tests::redis::binary().is_some());
    assert_eq!(
        json["processes"].as_array().map(Vec::len),
        Some(20 + broker + store)
    );
    assert_eq!(json["store"].is_string(), store == 1, "{}", json["store"]);
    assert_eq!(
        json["broker"].is_string(),
        broker == 1,
        "{}",
        json["broker"]
    );
    assert_eq!(json["demo_clients"][0]["client_id"], "web-app");
    let ca = topo.cert_dir.join("ca.pem");
    let base = format!("https://{}", topo.edge_https());
    let h1 = client(&ca, false);
    let h2 = client(&ca, true);

    // Public, over HTTP/1.1, HTTP/2 and HTTP/3: the same answer.
    let mut bodies = Vec::new();
    for (c, version) in [(&h1, http::Version::HTTP_11), (&h2, http::Version::HTTP_2)] {
        let (status, v, body) = send(c, get(&format!("{base}/api/catalog/products"), None)).await;
        assert_eq!((status, v), (StatusCode::OK, version), "{body:?}");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert!(v["products"].as_array().is_some_and(|p| !p.is_empty()));
        bodies.push(v);
    }
    let h3_addr = topo
        .process("edge")
        .and_then(|p| p.listen.get("h3").copied())
        .expect("the edge's h3 address");
    let req = http::Request::get(format!("{base}/api/catalog/products"))
        .body(())
        .expect("request");
    let (status, _, body) =
        gatehouse_tests::h3::request(h3_addr, "127.0.0.1", tls_config(&ca), req).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["products"], bodies[0]["products"]);

    // Plain HTTP: 308 to the same URL over HTTPS.
    let http = topo
        .process("edge")
        .and_then(|p| p.listen.get("http").copied())
        .expect("the edge's http address");
    let head = raw_http(
        http,
        "GET /api/catalog/products?page=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 308"), "{head}");
    assert!(
        head.contains(&format!(
            "location: https://127.0.0.1:{}/api/catalog/products?page=2\r\n",
            topo.edge_https().port()
        )),
        "{head}"
    );

    // Token, then /api/users/me shows the subject; 401 without; 403 with the wrong scope.
    let web = token(&h1, &base, "web-app", "web-app-dev-secret").await;
    let (status, _, body) = send(&h1, get(&format!("{base}/api/users/me"), Some(&web))).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let me: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(me["subject"], "web-app");
    assert_eq!(me["issuer"], "gatehouse-dev-idp");
    let (status, _, _) = send(&h1, get(&format!("{base}/api/users/me"), None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mobile = token(&h1, &base, "mobile-app", "mobile-app-dev-secret").await;
    let (status, _, _) = send(&h1, get(&format!("{base}/api/users/1"), Some(&mobile))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(&h1, get(&format!("{base}/api/users/alice"), Some(&web))).await;
    assert_eq!(status, StatusCode::OK);

    // A spoofed identity header never reaches echo.
    let mut req = get(&format!("{base}/api/echo/whoami"), Some(&web));
    req.headers_mut().insert(
        "x-gatehouse-subject",
        http::HeaderValue::from_static("admin"),
    );
    let (status, _, body) = send(&h1, req).await;
    assert_eq!(status, StatusCode::OK);
    let echo: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        echo["headers"]["x-gatehouse-subject"],
        serde_json::json!(["web-app"])
    );
    assert_eq!(echo["path"], "/whoami");
    assert!(echo["headers"].get("authorization").is_none());

    // /api/echo's limit (5/s, burst 10, per subject): counted in Redis when `up` runs it.
    let mut limited = 0;
    for _ in 0..16 {
        let (status, _, _) = send(&h1, get(&format!("{base}/api/echo/x"), Some(&web))).await;
        assert!(
            matches!(status, StatusCode::OK | StatusCode::TOO_MANY_REQUESTS),
            "{status}"
        );
        limited += usize::from(status == StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(limited > 0, "16 requests at once, none limited");
    let admin = topo.process("edge").expect("edge").admin;
    let req = http::Request::get(format!("http://{admin}/metrics"))
        .body(gatehouse_common::body::empty())
        .expect("request");
    let (_, _, metrics) =
        gatehouse_tests::collect(gatehouse_tests::Client::http1().send(req).await).await;
    let metrics = String::from_utf8_lossy(&metrics);
    let up = metrics.lines().any(|l| {
        l.starts_with("gatehouse_rate_limit_store_up{store=\"rediss://") && l.ends_with(" 1")
    });
    assert_eq!(up, store == 1, "{metrics}");
    // Every check of the echo limit got Redis's answer (none decided locally instead).
    let fallbacks: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("gatehouse_rate_limit_store_fallbacks_total{limit=\"echo\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    if store == 1 {
        assert_eq!(fallbacks, 0.0, "{metrics}");
    }

    // gRPC CreateOrder: edge → internal → sidecar → orders → (its sidecar) inventory, pricing.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(&ca).expect("ca"),
        ))
        .domain_name("127.0.0.1");
    let channel = tonic::transport::Channel::from_shared(base.clone())
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("grpc connect");
    let mut orders = OrdersClient::new(channel.clone());
    let order = orders
        .create_order(create_order(&web, 2))
        .await
        .expect("CreateOrder")
        .into_inner();
    assert_eq!(order.customer, "web-app");
    assert_eq!(order.status, "CONFIRMED");
    assert!(order.unit_price_cents > 0);
    let denied = orders
        .create_order(create_order(&mobile, 1))
        .await
        .expect_err("mobile-app cannot write");
    // Refused at the edge, as a gRPC status.
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    grpc_web(&h1, &h2, &base, &web, &order).await;

    transcoding(&h1, &h2, &base, channel.clone(), &web, &mobile).await;
    orchestration(topo, &h2, &base).await;
    breaker_opens_and_recovers(topo, &h1, &base).await;
    internal_gateway_restart(topo, &h1, &h2, &base).await;

    // Kill one catalog instance during a loop of 1,000 requests: zero failures.
    let load = Load::start(&h1, &h2, &format!("{base}/api/catalog/products/1001"), 1000);
    load.wait_for(100).await;
    assert!(topo.kill("catalog-1").await);
    assert!(topo.kill("catalog-1-sidecar").await);
    let failures = load.finish().await;
    assert!(
        failures.is_empty(),
        "{} of 1000 failed after killing catalog-1: {failures:?}",
        failures.len()
    );
}

/// `requests` GETs of `url` from 4 workers (HTTP/1.1 and HTTP/2 alternately); keeps the
/// failures with the time they happened.
struct Load {
    done: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<Vec<(std::time::Instant, StatusCode, Bytes)>>>,
}

impl Load {
    fn start(h1: &Https, h2: &Https, url: &str, requests: usize) -> Load {
        let done = Arc::new(AtomicUsize::new(0));
        let workers = (0..4)
            .map(|w| {
                let (c, url, done) = (
                    if w % 2 == 0 { h1.clone() } else { h2.clone() },
                    url.to_owned(),
                    done.clone(),
                );
                tokio::spawn(async move {
                    let mut failures = Vec::new();
                    for _ in 0..requests / 4 {
                        // Past the internal gateway's cache: every request reaches a
                        // catalog instance, so a failover cannot hide behind a hit.
                        let mut req = get(&url, None);
                        req.headers_mut().insert(
                            http::header::CACHE_CONTROL,
                            http::HeaderValue::from_static("no-cache"),
                        );
                        let (status, _, body) = send(&c, req).await;
                        if status != StatusCode::OK {
                            failures.push((std::time::Instant::now(), status, body));
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    failures
                })
            })
            .collect();
        Load { done, workers }
    }

    async fn wait_for(&self, n: usize) {
        while self.done.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn finish(self) -> Vec<(std::time::Instant, StatusCode, Bytes)> {
        let mut failures = Vec::new();
        for w in self.workers {
            failures.extend(w.await.expect("worker"));
        }
        failures
    }
}

/// GET `url`: status, body, and how long it took.
async fn timed(c: &Https, url: &str) -> (StatusCode, Bytes, Duration) {
    let t = std::time::Instant::now();
    let (status, _, body) = send(c, get(url, None)).await;
    (status, body, t.elapsed())
}

/// The orchestration demo (docs/orchestration.md) through the edge over HTTP/2, no token: the
/// web and mobile pages, API versions, XML both ways, the catalog cache, and the failure
/// contract with reviews, then pricing, failing every request.
async fn orchestration(topo: &Topology, h2: &Https, base: &str) {
    let (status, v, body) = send(h2, get(&format!("{base}/api/web/products/1003"), None)).await;
    assert_eq!(
        (status, v),
        (StatusCode::OK, http::Version::HTTP_2),
        "{body:?}"
    );
    let page = json_of(&body);
    assert_eq!(
        page["product"],
        json!({"id": "1003", "name": "Milk frother",
               "description": "Induction milk frother, hot and cold foam.",
               "category": "accessories"})
    );
    assert_eq!(
        page["price"],
        json!({"unit_price_cents": 7900, "currency": "EUR"})
    );
    assert_eq!(page["stock"], json!({"available": 0, "in_stock": false}));
    assert_eq!(
        page["reviews"],
        json!({"average_rating": null, "count": 0, "items": []})
    );
    assert_eq!(
        page["related"],
        json!([{"id": "1004", "name": "Pour-over kettle"}])
    );
    assert!(page.get("errors").is_none(), "{page}");

    let mobile_url = format!("{base}/api/mobile/products/1001");
    let (status, _, body) = send(h2, get(&mobile_url, None)).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let mobile = json_of(&body);
    assert_eq!(
        mobile,
        json!({"id": "1001", "name": "Espresso machine", "price_cents": 89900,
               "currency": "EUR", "in_stock": true, "rating": mobile["rating"].clone()})
    );
    assert!(mobile["rating"].as_f64().is_some(), "{mobile}");

    let (_, _, body) = send(h2, get(&format!("{base}/api/v1/products/1002"), None)).await;
    assert_eq!(
        json_of(&body),
        json!({"id": "1002", "title": "Burr grinder", "category": "grinders"})
    );
    let (_, _, body) = send(h2, get(&format!("{base}/api/v2/products/1002"), None)).await;
    assert_eq!(json_of(&body)["name"], "Burr grinder");
    for path in [
        "/api/web/products/9999",
        "/api/mobile/products/9999",
        "/api/v1/products/9999",
    ] {
        let (status, _, body) = send(h2, get(&format!("{base}{path}"), None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body:?}");
        assert!(json_of(&body)["type"].is_string(), "{path}: a problem");
    }

    // XML out, and XML in.
    let mut req = get(&format!("{base}/api/web/products/1001"), None);
    req.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/xml"),
    );
    let res = h2.request(req).await.expect("request");
    assert_eq!(
        res.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/xml; charset=utf-8"[..])
    );
    let xml = res.into_body().collect().await.expect("body").to_bytes();
    let xml = String::from_utf8_lossy(&xml);
    assert!(xml.contains("<product xmlns:xsi="), "{xml}");
    assert!(
        xml.contains("<unit_price_cents>89900</unit_price_cents>"),
        "{xml}"
    );
    let req = Request::post(format!("{base}/api/xml/echo"))
        .header("content-type", "application/xml")
        .header("accept", "application/xml")
        .body(Full::new(Bytes::from_static(
            b"<order><productId>1001</productId><quantity>2</quantity></order>",
        )))
        .expect("request");
    let (status, _, body) = send(h2, req).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("<method>POST</method>"), "{text}");
    assert!(text.contains("productId"), "echo saw the JSON body: {text}");

    // The catalog's reads are cached at the internal gateway.
    let url = format!("{base}/api/catalog/products/1005");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let res = h2.request(get(&url, None)).await.expect("request");
        seen.push(
            res.headers()
                .get("x-cache")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
        );
    }
    assert_eq!(seen, ["MISS", "HIT"]);

    // Reviews fail every request: the mobile page still answers, rating null, partial.
    chaos(topo, "reviews", r#"{"error_rate":1.0}"#).await;
    let res = h2.request(get(&mobile_url, None)).await.expect("request");
    let partial = res.headers().get("x-gatehouse-partial").cloned();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    chaos(topo, "reviews", r#"{"error_rate":0}"#).await;
    assert_eq!(
        partial.as_ref().map(|v| v.as_bytes()),
        Some(&b"reviews"[..]),
        "{body:?}"
    );
    let mobile = json_of(&body);
    assert_eq!(mobile["rating"], Value::Null);
    assert_eq!(mobile["errors"][0]["part"], "reviews");
    // Pricing fails: the web page is a 502 naming the part.
    chaos(topo, "pricing", r#"{"error_rate":1.0}"#).await;
    let (status, _, body) = send(h2, get(&format!("{base}/api/web/products/1001"), None)).await;
    chaos(topo, "pricing", r#"{"error_rate":0}"#).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body:?}");
    let problem = json_of(&body);
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("aggregate-part-failed")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`price`")),
        "{problem}"
    );
}

/// `POST /_chaos` on a demo service's admin listener.
async fn chaos(topo: &Topology, name: &str, body: &'static str) {
    let admin = topo.process(name).expect("process").admin;
    let c = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::post(format!("http://{admin}/_chaos"))
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request");
    let res = c.request(req).await.expect("chaos request");
    assert_eq!(res.status(), StatusCode::OK);
}

/// Pricing fails every request: the internal gateway's failure breaker opens (10 in a row in
/// the demo config) and callers get fast 503s; once pricing is back and the 3s cooldown has
/// passed, requests succeed again.
async fn breaker_opens_and_recovers(topo: &Topology, c: &Https, base: &str) {
    let url = format!("{base}/api/prices/1001");
    assert_eq!(timed(c, &url).await.0, StatusCode::OK);
    chaos(topo, "pricing", r#"{"error_rate":1.0}"#).await;
    let mut opened = None;
    for i in 0..40 {
        let (status, body, _) = timed(c, &url).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:?}");
        if String::from_utf8_lossy(&body).contains("overloaded") {
            opened = Some(i);
            break;
        }
    }
    let opened = opened.expect("the breaker opened within 40 requests");
    // Open: answered by the internal gateway without calling pricing.
    let mut fast = Vec::new();
    for _ in 0..20 {
        let (status, body, took) = timed(c, &url).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:?}");
        assert!(
            String::from_utf8_lossy(&body).contains("overloaded"),
            "{body:?}"
        );
        fast.push(took);
    }
    fast.sort();
    eprintln!(
        "breaker: opened after {} failed requests; open answers median {:?}, max {:?}",
        opened + 1,
        fast[fast.len() / 2],
        fast[fast.len() - 1]
    );
    chaos(topo, "pricing", r#"{"error_rate":0}"#).await;
    let back = std::time::Instant::now();
    loop {
        let (status, _, _) = timed(c, &url).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "pricing not reachable again 15s after it recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "breaker: closed again {:?} after pricing recovered",
        back.elapsed()
    );
    for _ in 0..10 {
        assert_eq!(timed(c, &url).await.0, StatusCode::OK);
    }
}

/// The internal gateway restarts (SIGTERM, drain, start again) during a loop of requests:
/// only requests in the window where it is down may fail, and everything after it is back
/// succeeds.
async fn internal_gateway_restart(topo: &mut Topology, h1: &Https, h2: &Https, base: &str) {
    let load = Load::start(h1, h2, &format!("{base}/api/catalog/products/1001"), 1000);
    load.wait_for(100).await;
    let down = std::time::Instant::now();
    topo.restart("internal", Duration::from_secs(20))
        .await
        .expect("internal gateway restarted");
    let up = std::time::Instant::now();
    let failures = load.finish().await;
    eprintln!(
        "internal gateway restart: back after {:?}; {} of 1000 requests failed: {:?}",
        up - down,
        failures.len(),
        failures
            .iter()
            .map(|(_, s, b)| format!("{} {}", s.as_u16(), String::from_utf8_lossy(b)))
            .collect::<Vec<_>>()
    );
    let late: Vec<_> = failures.iter().filter(|(t, _, _)| *t > up).collect();
    assert!(late.is_empty(), "failures after the restart: {late:?}");
}

/// REST ↔ gRPC through the edge (docs/transcoding.md): an order created over REST is read over
/// REST and over gRPC, listed as a JSON array, NDJSON and SSE; mobile-app cannot create; the
/// REST catalog answers gRPC calls; the OpenAPI document is public.
async fn transcoding(
    h1: &Https,
    h2: &Https,
    base: &str,
    channel: tonic::transport::Channel,
    web: &str,
    mobile: &str,
) {
    let create = |token: &str| {
        Request::post(format!("{base}/api/v1/orders"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"productId": "1001", "quantity": 3}"#,
            )))
            .expect("request")
    };
    let (status, _, body) = send(h2, create(web)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let created = json_of(&body);
    assert_eq!(created["productId"], "1001");
    assert_eq!(created["quantity"], 3);
    assert_eq!(created["customer"], "web-app");
    assert_eq!(created["status"], "CONFIRMED");
    // int64 as a string, by the JSON mapping.
    assert!(created["unitPriceCents"].as_str().is_some(), "{created}");
    let id = created["orderId"].as_str().expect("orderId").to_owned();

    let (status, _, body) = send(h1, get(&format!("{base}/api/v1/orders/{id}"), Some(web))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body), created);
    let mut orders = OrdersClient::new(channel.clone());
    let req = authorized(
        gatehouse_topology::proto::GetOrderRequest {
            order_id: id.clone(),
        },
        web,
    );
    let over_grpc = orders.get_order(req).await.expect("GetOrder").into_inner();
    assert_eq!(over_grpc.order_id, id);
    assert_eq!(over_grpc.quantity, 3);
    assert_eq!(
        over_grpc.unit_price_cents.to_string(),
        created["unitPriceCents"].as_str().unwrap_or("")
    );

    // Another subject's order is NOT_FOUND: 404 with code 5.
    let (status, _, body) =
        send(h1, get(&format!("{base}/api/v1/orders/no-such"), Some(web))).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(json_of(&body)["code"], 5);

    // ListOrders in the three formats.
    for (accept, check) in [
        ("application/json", "array"),
        ("application/x-ndjson", "lines"),
        ("text/event-stream", "events"),
    ] {
        let mut req = get(&format!("{base}/api/v1/orders?page_size=50"), Some(web));
        req.headers_mut()
            .insert("accept", http::HeaderValue::from_static(accept));
        let res = h2.request(req).await.expect("request");
        assert_eq!(res.status(), StatusCode::OK, "{accept}");
        assert_eq!(res.headers()["content-type"], accept);
        let body = res.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        let items: Vec<Value> = match check {
            "array" => json_of(&body).as_array().cloned().unwrap_or_default(),
            "lines" => text
                .lines()
                .map(|l| serde_json::from_str(l).expect("line"))
                .collect(),
            _ => text
                .split("\n\n")
                .filter_map(|e| e.strip_prefix("data: "))
                .map(|d| serde_json::from_str(d).expect("data"))
                .collect(),
        };
        assert!(
            items.iter().any(|o| o["orderId"] == id.as_str()),
            "{accept}: {text}"
        );
        assert!(
            items.iter().all(|o| o["customer"] == "web-app"),
            "{accept}: {text}"
        );
    }

    // mobile-app has no orders:write: refused at the edge.
    let (status, _, body) = send(h1, create(mobile)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&body)
    );

    // The reverse: the REST catalog as shop.catalog.v1.Catalog, any valid token.
    let mut catalog =
        gatehouse_topology::catalog_proto::catalog_client::CatalogClient::new(channel);
    use gatehouse_topology::catalog_proto::{GetProductRequest, ListProductsRequest};
    let product = catalog
        .get_product(authorized(
            GetProductRequest {
                product_id: "1001".into(),
            },
            mobile,
        ))
        .await
        .expect("GetProduct")
        .into_inner();
    assert_eq!(product.id, "1001");
    assert!(
        !product.name.is_empty() && !product.category.is_empty(),
        "{product:?}"
    );
    let missing = catalog
        .get_product(authorized(
            GetProductRequest {
                product_id: "9999".into(),
            },
            mobile,
        ))
        .await
        .expect_err("unknown product");
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    let listed = catalog
        .list_products(authorized(
            ListProductsRequest {
                category: product.category.clone(),
            },
            mobile,
        ))
        .await
        .expect("ListProducts")
        .into_inner();
    assert!(listed.products.iter().any(|p| p.id == "1001"), "{listed:?}");
    assert!(
        listed
            .products
            .iter()
            .all(|p| p.category == product.category)
    );

    // The OpenAPI document, public.
    let (status, _, body) = send(h1, get(&format!("{base}/api/v1/openapi.json"), None)).await;
    assert_eq!(status, StatusCode::OK);
    let doc = json_of(&body);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["paths"]["/api/v1/orders/{order_id}"]["get"].is_object(),
        "{doc}"
    );
}

/// A gRPC request carrying `token`.
fn authorized<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    req
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

/// `CreateOrder` of `quantity` × product 1001 with `token`.
fn create_order(token: &str, quantity: u32) -> tonic::Request<CreateOrderRequest> {
    let mut req = tonic::Request::new(CreateOrderRequest {
        product_id: "1001".into(),
        quantity,
    });
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    req
}

/// gRPC-Web through the whole demo (edge → internal → sidecar → orders): `GetOrder` as
/// `application/grpc-web-text` over HTTP/1.1 and `ListOrders` as `application/grpc-web+proto`
/// over HTTP/2, the frames taken apart here by hand.
async fn grpc_web(h1: &Https, h2: &Https, base: &str, token: &str, created: &Order) {
    let call = |path: &str, content_type: &str, message: Vec<u8>| {
        let mut frame = vec![0u8];
        frame.extend_from_slice(&u32::try_from(message.len()).expect("len").to_be_bytes());
        frame.extend_from_slice(&message);
        let body = match content_type.contains("-text") {
            true => Bytes::from(base64::engine::general_purpose::STANDARD.encode(&frame)),
            false => Bytes::from(frame),
        };
        Request::post(format!("{base}{path}"))
            .header("content-type", content_type)
            .header("x-grpc-web", "1")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(body))
            .expect("request")
    };
    // (flag, payload) of each frame; the last must be the trailers frame with grpc-status 0.
    let frames = |content_type: &str, body: &[u8]| {
        let raw: Vec<u8> = match content_type.contains("-text") {
            true => body
                .chunks(4)
                .flat_map(|q| {
                    base64::engine::general_purpose::STANDARD
                        .decode(q)
                        .expect("base64")
                })
                .collect(),
            false => body.to_vec(),
        };
        let mut out = Vec::new();
        let mut rest = &raw[..];
        while rest.len() >= 5 {
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            out.push((rest[0], rest[5..5 + len].to_vec()));
            rest = &rest[5 + len..];
        }
        let (last, data) = out.split_last().expect("a trailers frame");
        assert_eq!(last.0, 0x80, "{out:?}");
        let block = String::from_utf8_lossy(&last.1).into_owned();
        assert!(block.starts_with("grpc-status: 0\r\n"), "{block}");
        data.iter()
            .map(|(_, m)| Order::decode(&m[..]).expect("Order"))
            .collect::<Vec<_>>()
    };

    let get = GetOrderRequest {
        order_id: created.order_id.clone(),
    };
    let ct = "application/grpc-web-text";
    let res = h1
        .request(call(
            "/shop.orders.v1.Orders/GetOrder",
            ct,
            get.encode_to_vec(),
        ))
        .await
        .expect("gRPC-Web GetOrder");
    assert_eq!(res.headers()["content-type"], ct);
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(frames(ct, &body), std::slice::from_ref(created));

    let ct = "application/grpc-web+proto";
    let list = ListOrdersRequest { page_size: 0 };
    let res = h2
        .request(call(
            "/shop.orders.v1.Orders/ListOrders",
            ct,
            list.encode_to_vec(),
        ))
        .await
        .expect("gRPC-Web ListOrders");
    assert_eq!(res.headers()["content-type"], ct);
    let body = res.into_body().collect().await.expect("body").to_bytes();
    let listed = frames(ct, &body);
    assert!(listed.contains(created), "{listed:?}");
}

/// Sends a raw HTTP/1.1 request; returns the response head, header names lower-cased.
async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    gatehouse_tests::client::raw_first_read(addr, request)
        .await
        .lines()
        .map(|l| match l.split_once(':') {
            Some((k, v)) => format!("{}:{v}\r\n", k.to_ascii_lowercase()),
            None => format!("{l}\r\n"),
        })
        .collect()
}

/// Every config of topology/config/ passes its binary's `validate`.
#[test]
fn configs_validate() {
    let certs = tempfile::tempdir().expect("tempdir");
    ensure_pki(certs.path()).expect("pki");
    let env = config_env(Some(30_000), certs.path()).expect("env");
    let mut files = vec![
        ("gatehouse-edge", "edge.yaml".to_owned()),
        ("gatehouse-internal", "internal.yaml".to_owned()),
    ];
    for s in ServiceName::ALL {
        files.push(("gatehouse-sidecar", sidecar_config(s).to_owned()));
    }
    files.sort();
    files.dedup();
    for (binary, file) in files {
        let path = config_dir().join(&file);
        let out = std::process::Command::new(bin_dir().join(binary))
            .args(["validate", "--config"])
            .arg(&path)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("{binary} (run `cargo build --bins` first): {e}"));
        assert!(
            out.status.success(),
            "{binary} validate {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
