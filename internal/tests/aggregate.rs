//! The `aggregate` handler end to end: real listeners, a fake service behind several service
//! names, and the failure contract row by row (docs/orchestration.md).

#[path = "../../tests/tests/mtls/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use gatehouse_common::body::full;
use gatehouse_common::config;
use gatehouse_common::runtime::Running;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::{Backend, BackendHandle, Client};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{Value, json};
use support::Logs;

/// One fake service for every part: what it answers is in the path.
/// `/json/<name>` → `{"name"}`; `/slow/<ms>/<name>` → the same after `ms`; `/status/<code>` →
/// that status with a problem body; `/text` → text/plain; `/big` → 4 KiB of JSON;
/// `/badjson` → `application/json` that does not parse; `/products/<id>` → a product in
/// category `c-<id>`; `/related?…` → the query it got.
async fn service() -> BackendHandle {
    Backend::new()
        .handle("/", |seen| async move {
            let uri = seen.uri.clone();
            let (path, query) = uri.split_once('?').unwrap_or((&uri, ""));
            let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let json_ok = |v: Value| (StatusCode::OK, "application/json", v.to_string());
            let (status, ct, body) = match segs.as_slice() {
                ["json", name] => json_ok(json!({ "name": name })),
                ["slow", ms, name] => {
                    let ms: u64 = ms.parse().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    json_ok(json!({ "name": name }))
                }
                ["status", code] => (
                    StatusCode::from_u16(code.parse().unwrap_or(500))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    "application/problem+json",
                    json!({"title": "from the service", "detail": "internal 10.0.0.7"}).to_string(),
                ),
                ["text"] => (StatusCode::OK, "text/plain", "plain".to_owned()),
                ["big"] => json_ok(Value::String("x".repeat(4096))),
                ["badjson"] => (StatusCode::OK, "application/json", "{not json".to_owned()),
                ["products", id] => json_ok(json!({"id": id, "category": format!("c-{id}")})),
                ["related"] => json_ok(json!({ "query": query })),
                _ => (StatusCode::NOT_FOUND, "text/plain", "no".to_owned()),
            };
            let mut res = Response::new(full(body));
            *res.status_mut() = status;
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
            res
        })
        .run()
        .await
}

/// A route `/<name>` with one aggregate of `parts` (YAML flow sequences).
fn route(name: &str, timeout: &str, parts: &str) -> String {
    format!(
        "  - name: {name}\n    match: {{ path: /{name} }}\n    timeout: {timeout}\n    \
         handler:\n      aggregate:\n        parts: {parts}\n"
    )
}

async fn gateway(svc: &BackendHandle) -> Running {
    let mut routes = String::new();
    let main = "{name: main, service: a, path: /json/main}";
    for (name, timeout, parts) in [
        (
            "par",
            "2s",
            "[{name: p1, service: a, path: /slow/300/p1}, {name: p2, service: b, path: \
             /slow/300/p2}, {name: p3, service: a, path: /slow/300/p3}]"
                .to_owned(),
        ),
        (
            "all",
            "2s",
            format!("[{main}, {{name: b, service: b, path: /json/b}}]"),
        ),
        (
            "opt503",
            "2s",
            format!("[{main}, {{name: extra, service: b, path: /status/503, required: false}}]"),
        ),
        (
            "opttimeout",
            "2s",
            format!(
                "[{main}, {{name: slow, service: b, path: /slow/2000/x, required: false, \
                 timeout: 200ms, fallback: {{n: 0}}}}]"
            ),
        ),
        (
            "optbreaker",
            "2s",
            format!(
                "[{main}, {{name: flaky, service: flaky, path: /status/503, required: false}}]"
            ),
        ),
        (
            "req503",
            "2s",
            format!("[{main}, {{name: price, service: b, path: /status/503}}]"),
        ),
        (
            "reqtimeout",
            "2s",
            format!("[{main}, {{name: price, service: b, path: /slow/2000/x, timeout: 200ms}}]"),
        ),
        (
            "req404",
            "2s",
            format!("[{{name: product, service: a, path: /status/404}}, {main}]"),
        ),
        (
            "req409",
            "2s",
            format!("[{main}, {{name: product, service: a, path: /status/409}}]"),
        ),
        (
            "toolarge",
            "2s",
            format!("[{main}, {{name: big, service: b, path: /big, required: false}}]"),
        ),
        (
            "notjson",
            "2s",
            format!(
                "[{main}, {{name: text, service: b, path: /text, required: false}}, {{name: \
                 bad, service: b, path: /badjson, required: false}}]"
            ),
        ),
        (
            "deadline",
            "400ms",
            format!("[{main}, {{name: slow, service: b, path: /slow/3000/x, required: false}}]"),
        ),
        (
            "depfail",
            "2s",
            "[{name: product, service: a, path: /status/503, required: false}, {name: related, \
             service: a, path: /related, query: {category: '{product:/category}'}, required: \
             false}]"
                .to_owned(),
        ),
    ] {
        routes.push_str(&route(name, timeout, &parts));
    }
    // A dependent part with the route's capture.
    routes.push_str(
        "  - name: dep\n    match: { path_template: '/dep/{id}' }\n    handler:\n      \
         aggregate:\n        parts:\n          - { name: product, service: a, path: \
         '/products/{id}' }\n          - { name: related, service: b, path: /related, query: \
         { category: '{product:/category}', exclude: '{id}' }, required: false }\n",
    );
    let addr = svc.addr;
    let yaml = format!(
        r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
error_details: public
internal:
  max_handler_body_bytes: 1KiB
routes:
{routes}
services:
  a: {{ endpoints: ["{addr}"] }}
  b: {{ endpoints: ["{addr}"] }}
  flaky:
    endpoints: ["{addr}"]
    failure_breaker: {{ consecutive_failures: 1, cooldown: 1m }}
"#
    );
    let loaded = config::parse::<ProxySettings>("internal.yaml", &yaml).expect("config");
    gatehouse_internal::run(loaded, None)
        .await
        .expect("internal gateway starts")
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

struct Gw {
    base: String,
    admin: std::net::SocketAddr,
    client: Client,
    _running: Running,
}

impl Gw {
    async fn start(svc: &BackendHandle) -> Gw {
        let running = gateway(svc).await;
        let plain = running.addr("plain").await.expect("plain listener");
        Gw {
            base: format!("http://{plain}"),
            admin: running.admin_addr,
            client: Client::http1(),
            _running: running,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, Value) {
        let (status, h, body) = self.client.get(&format!("{}{path}", self.base)).await;
        let v = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body:?}"));
        (status, h, v)
    }
}

#[tokio::test]
async fn parts_run_in_parallel() {
    let svc = service().await;
    let gw = Gw::start(&svc).await;
    let started = Instant::now();
    let (status, h, v) = gw.get("/par").await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"p1": {"name": "p1"}, "p2": {"name": "p2"}, "p3": {"name": "p3"}})
    );
    assert!(
        took < Duration::from_millis(500),
        "three 300 ms parts took {took:?}"
    );
    assert!(h.get("x-gatehouse-partial").is_none());
    // Every part said max-age=5: so does the whole.
    assert_eq!(header(&h, "cache-control"), "max-age=5");
}

/// What the parts did ↔ what the client gets: each row of the contract.
#[tokio::test]
async fn the_failure_contract() {
    let (logs, _guard) = Logs::capture();
    let svc = service().await;
    let gw = Gw::start(&svc).await;

    let (status, h, v) = gw.get("/all").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!({"main": {"name": "main"}, "b": {"name": "b"}}));
    assert!(h.get("x-gatehouse-partial").is_none());

    // Optional parts that fail: 200, their key null (or the fallback), the partial header,
    // no-store, and an errors array without internal addresses.
    let partial = [
        ("/opt503", "extra", Value::Null, 503, "answered 503"),
        ("/opttimeout", "slow", json!({"n": 0}), 504, "timed out"),
        ("/optbreaker", "flaky", Value::Null, 503, "answered 503"),
        (
            "/optbreaker",
            "flaky",
            Value::Null,
            503,
            "is overloaded (circuit open)",
        ),
        ("/toolarge", "big", Value::Null, 502, "answer too large"),
    ];
    for (path, part, fallback, code, title) in partial {
        let started = Instant::now();
        let (status, h, v) = gw.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
        assert!(started.elapsed() < Duration::from_secs(1), "{path}");
        assert_eq!(header(&h, "x-gatehouse-partial"), part, "{path}");
        assert_eq!(header(&h, "cache-control"), "no-store", "{path}");
        assert_eq!(v["main"], json!({"name": "main"}), "{path}");
        assert_eq!(v[part], fallback, "{path}");
        assert_eq!(
            v["errors"],
            json!([{"part": part, "status": code, "title": title}]),
            "{path}"
        );
        assert!(!v.to_string().contains("127.0.0.1"), "{path}: {v}");
    }
    // The breaker answered the second time: the service saw one request.
    let flaky = svc.seen().iter().filter(|s| s.uri == "/status/503").count();
    // `/opt503` asked once, `/optbreaker` once before the breaker opened.
    assert_eq!(flaky, 2);

    // Two failed parts: both named, sorted.
    let (status, h, v) = gw.get("/notjson").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "x-gatehouse-partial"), "bad,text");
    assert_eq!(v["text"], Value::Null);
    assert_eq!(v["bad"], Value::Null);
    let titles: Vec<&str> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["title"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(titles, ["answer is not JSON", "answer is not JSON"]);

    // Required parts that fail: the status by the contract, problem+json naming the part.
    let failing = [
        (
            "/req503",
            StatusCode::BAD_GATEWAY,
            "aggregate-part-failed",
            "price",
        ),
        (
            "/reqtimeout",
            StatusCode::GATEWAY_TIMEOUT,
            "aggregate-part-timeout",
            "price",
        ),
        ("/req404", StatusCode::NOT_FOUND, "not-found", "product"),
        (
            "/req409",
            StatusCode::CONFLICT,
            "aggregate-part-rejected",
            "product",
        ),
    ];
    for (path, want, slug, part) in failing {
        let started = Instant::now();
        let (status, h, v) = gw.get(path).await;
        assert_eq!(status, want, "{path}: {v}");
        assert!(started.elapsed() < Duration::from_secs(1), "{path}");
        assert_eq!(
            header(&h, "content-type"),
            "application/problem+json",
            "{path}"
        );
        assert_eq!(v["type"], format!("urn:gatehouse:problem:{slug}"), "{path}");
        let detail = v["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains(&format!("part `{part}`")),
            "{path}: {detail}"
        );
        assert!(
            !detail.contains("127.0.0.1") && !detail.contains("10.0.0.7"),
            "{detail}"
        );
    }

    // The parent's access-log line names the failed parts; the warning has the details.
    let line = logs
        .wait_for("the parent's line of /notjson", |e| {
            e.get("message").map(String::as_str) == Some("request")
                && e.get("path").map(String::as_str) == Some("/notjson")
        })
        .await;
    assert_eq!(line["failed_parts"], "bad,text");
    // Per-part metrics by route, part and status class.
    let (_, _, metrics) = gw.client.get(&format!("http://{}/metrics", gw.admin)).await;
    let metrics = String::from_utf8_lossy(&metrics);
    for series in [
        r#"gatehouse_handler_parts_total{route="opt503",part="extra",status_class="5xx"} 1"#,
        r#"gatehouse_handler_parts_total{route="opt503",part="main",status_class="2xx"} 1"#,
        r#"gatehouse_handler_part_duration_seconds_count{route="all",part="b",status_class="2xx"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
}

#[tokio::test]
async fn the_route_deadline_bounds_the_whole_answer() {
    let svc = service().await;
    let gw = Gw::start(&svc).await;
    let started = Instant::now();
    let (status, h, v) = gw.get("/deadline").await;
    let took = started.elapsed();
    // The slow optional part fails before the route's 400 ms are up: a partial 200, in time.
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(header(&h, "x-gatehouse-partial"), "slow");
    assert_eq!(v["errors"][0]["status"], 504);
    assert!(took < Duration::from_millis(600), "took {took:?}");
}

#[tokio::test]
async fn a_dependent_part_gets_the_earlier_value_or_is_skipped() {
    let svc = service().await;
    let gw = Gw::start(&svc).await;
    let (status, _, v) = gw.get("/dep/7").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["product"], json!({"id": "7", "category": "c-7"}));
    assert_eq!(v["related"], json!({"query": "category=c-7&exclude=7"}));
    // It ran after the product: the service saw the product first.
    let order: Vec<String> = svc.seen().into_iter().map(|s| s.uri).collect();
    assert_eq!(order, ["/products/7", "/related?category=c-7&exclude=7"]);

    // When the part it needs failed, it is not asked and is reported as skipped.
    let before = svc.count();
    let (status, h, v) = gw.get("/depfail").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(header(&h, "x-gatehouse-partial"), "product,related");
    assert_eq!(
        v["errors"],
        json!([
            {"part": "product", "status": 503, "title": "answered 503"},
            {"part": "related", "status": 424, "title": "skipped: part `product` failed"},
        ])
    );
    assert_eq!(svc.count(), before + 1, "only the product was asked");
}
