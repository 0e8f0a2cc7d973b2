//! The resilient upstream client against real backends made to fail on purpose: killed
//! instances, a slow instance, a service that always fails, non-idempotent requests, deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gatehouse_common::body::{empty, full};
use gatehouse_tests::{Backend, BackendHandle, Client, bodies, collect, start};
use http::{Request, Response, StatusCode};

fn proxy_yaml(service: &str) -> String {
    format!(
        "listeners: [{{ name: main, address: \"127.0.0.1:0\" }}]\nadmin: {{ address: \"127.0.0.1:0\" }}\nroutes: [{{ name: all, service: app }}]\nservices:\n  app:\n{service}\n"
    )
}

fn endpoints(backends: &[&BackendHandle]) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{}\"", b.addr)).collect();
    format!("    endpoints: [{}]", list.join(", "))
}

async fn upstreams(admin: std::net::SocketAddr) -> serde_json::Value {
    let (_, _, body) = Client::http1()
        .get(&format!("http://{admin}/upstreams"))
        .await;
    serde_json::from_slice(&body).expect("upstreams json")
}

fn named(name: &'static str) -> Backend {
    Backend::new().route("/", name)
}

/// Three instances, one killed mid-run: retries on connect failure hide it; it is ejected, and
/// comes back (half-open, then healthy) once restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_instance_costs_nothing() {
    let a = named("a").run().await;
    let b = named("b").run().await;
    let c = named("c").run().await;
    let c_addr = c.addr;
    let yaml = proxy_yaml(&format!(
        "{}\n    retry: {{ retry_on: [connect-failure, reset, gateway-error], max_attempts: 3 }}\n    outlier_detection: {{ consecutive_failures: 1, base_ejection_time: 1s }}",
        endpoints(&[&a, &b, &c])
    ));
    let proxy = start(&yaml).await;
    let addr = proxy.addr("main").await.expect("listener");
    let client = Client::http1();
    let mut failures = 0;
    let mut c_handle = Some(c);
    for i in 0..2000 {
        if i == 500 {
            c_handle.take().expect("c").kill();
        }
        let (status, _, _) = client.get(&format!("http://{addr}/x")).await;
        if status != StatusCode::OK {
            failures += 1;
        }
    }
    println!("2000 requests with one instance killed at #500: {failures} failures");
    assert_eq!(failures, 0);
    let table = upstreams(proxy.admin_addr).await;
    let dead = table["app"]["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["address"] == c_addr.to_string())
        .cloned()
        .expect("c listed");
    assert_eq!(dead["state"], "ejected", "{table}");
    assert!(dead["ejected_until"].is_string(), "{table}");

    // Restart c on the same port: after the ejection it is probed and serves again.
    let _c = named("c").run_on(c_addr).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut served_by_c = false;
    while Instant::now() < deadline && !served_by_c {
        let (_, _, body) = client.get(&format!("http://{addr}/x")).await;
        served_by_c = &body[..] == b"c";
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        served_by_c,
        "the restarted instance never got traffic again"
    );
    let table = upstreams(proxy.admin_addr).await;
    let back = table["app"]["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["address"] == c_addr.to_string())
        .cloned()
        .expect("c listed");
    assert_eq!(back["state"], "healthy", "{table}");
}

/// One instance slowed to 200 ms: P2C over peak-EWMA sends it under 10% of the traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_instance_gets_little_traffic() {
    let fast1 = named("fast1").run().await;
    let fast2 = named("fast2").run().await;
    let slow = Backend::new()
        .handle("/", |_| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Response::new(full("slow"))
        })
        .run()
        .await;
    let proxy = start(&proxy_yaml(&endpoints(&[&fast1, &fast2, &slow]))).await;
    let addr = proxy.addr("main").await.expect("listener");
    // 8 concurrent clients, 600 requests in all.
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let client = Client::http1();
            while done.fetch_add(1, Ordering::Relaxed) < 600 {
                let (status, _, _) = client.get(&format!("http://{addr}/x")).await;
                assert_eq!(status, StatusCode::OK);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let total = fast1.count() + fast2.count() + slow.count();
    let share = slow.count() as f64 / total as f64 * 100.0;
    println!(
        "slow endpoint share: {:.1}% of {total} requests (round robin would give 33%)",
        share
    );
    assert!(share < 10.0, "slow endpoint got {share:.1}%");
}

/// A service that always answers 503: retries stay within the budget (counted at the backend),
/// the breaker opens and answers at once with Retry-After, then closes once the service recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_and_breaker_on_a_failing_service() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let be = Backend::new()
        .handle("/", move |_| {
            let ok = flag.load(Ordering::Relaxed);
            async move {
                let mut res = Response::new(full(if ok { "ok" } else { "down" }));
                if !ok {
                    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                }
                res
            }
        })
        .run()
        .await;
    let yaml = proxy_yaml(&format!(
        "{}\n    retry: {{ retry_on: [gateway-error], max_attempts: 3, backoff_base: 1ms, backoff_max: 2ms, budget: {{ ratio: 0.2, min_per_second: 0, window: 10s }} }}\n    outlier_detection: {{ consecutive_failures: 0 }}\n    failure_breaker: {{ consecutive_failures: 0, failure_ratio: 0.9, min_requests: 40, window: 10s, cooldown: 1s, half_open_requests: 2 }}",
        endpoints(&[&be])
    ));
    let proxy = start(&yaml).await;
    let addr = proxy.addr("main").await.expect("listener");
    let client = Client::http1();

    // Phase 1: until the breaker opens, every request reaches the backend, plus retries.
    let mut sent = 0;
    let mut first_open = None;
    for i in 0..200 {
        let (status, headers, _) = client.get(&format!("http://{addr}/x")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        if headers.get("x-gatehouse-overloaded").is_some() {
            first_open = Some(i);
            assert!(headers.get("retry-after").is_some());
            break;
        }
        sent += 1;
    }
    let opened_after = first_open.expect("the breaker never opened");
    let seen = be.count();
    let retries = seen - sent;
    println!(
        "{sent} requests before the breaker opened; backend saw {seen}: {retries} retries (budget 20%)"
    );
    assert!(
        retries as f64 <= 0.2 * sent as f64 + 1.0,
        "{retries} retries for {sent} requests"
    );
    assert!(retries > 0, "no retries at all");
    assert!(opened_after >= 30, "opened too early ({opened_after})");

    // Phase 2: open — answered at once, the backend sees nothing.
    let before = be.count();
    let t = Instant::now();
    for _ in 0..50 {
        let (status, headers, body) = client.get(&format!("http://{addr}/x")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers["x-gatehouse-overloaded"], "true");
        assert!(
            headers["retry-after"]
                .to_str()
                .expect("ascii")
                .parse::<u64>()
                .expect("seconds")
                >= 1
        );
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("problem");
        assert_eq!(problem["status"], 503);
    }
    assert_eq!(
        be.count(),
        before,
        "requests reached the backend while open"
    );
    println!("50 requests while open answered in {:?}", t.elapsed());
    assert_eq!(upstreams(proxy.admin_addr).await["app"]["breaker"], "open");

    // Phase 3: recovery — after the cooldown, probes succeed and the breaker closes.
    healthy.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut oks = 0;
    for _ in 0..10 {
        let (status, _, _) = client.get(&format!("http://{addr}/x")).await;
        if status == StatusCode::OK {
            oks += 1;
        }
    }
    assert_eq!(oks, 10);
    assert_eq!(
        upstreams(proxy.admin_addr).await["app"]["breaker"],
        "closed"
    );
}

/// POST is not retried by default; it is with an explicit policy and a small body; a 1 MiB body
/// is never retried.
#[tokio::test]
async fn non_idempotent_retries() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    // Fails every other request with 503.
    let flaky = Backend::new()
        .handle("/", move |seen| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            async move {
                let mut res = Response::new(full(format!("{}", seen.body_len)));
                if n.is_multiple_of(2) {
                    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                }
                res
            }
        })
        .run()
        .await;
    let base = format!(
        "{}\n    outlier_detection: {{ consecutive_failures: 0 }}\n    retry: {{ retry_on: [gateway-error], max_attempts: 2, backoff_base: 1ms",
        endpoints(&[&flaky])
    );
    let post = |addr: std::net::SocketAddr, len: usize| {
        Request::post(format!("http://{addr}/orders"))
            .body(if len == 0 {
                empty()
            } else {
                bodies::generated(len as u64, 16 * 1024)
            })
            .expect("request")
    };

    let default_policy = start(&proxy_yaml(&format!("{base} }}"))).await;
    let addr = default_policy.addr("main").await.expect("listener");
    calls.store(0, Ordering::Relaxed);
    let (status, _, _) = collect(Client::http1().send(post(addr, 100)).await).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "POST must not be retried by default"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    let explicit = start(&proxy_yaml(&format!(
        "{base}, retry_non_idempotent: true }}"
    )))
    .await;
    let addr = explicit.addr("main").await.expect("listener");
    calls.store(0, Ordering::Relaxed);
    let (status, _, body) = collect(Client::http1().send(post(addr, 1000)).await).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "small POST retried with an explicit policy"
    );
    assert_eq!(&body[..], b"1000", "the retry replayed the whole body");
    assert_eq!(calls.load(Ordering::Relaxed), 2);

    calls.store(0, Ordering::Relaxed);
    let (status, _, _) = collect(Client::http1().send(post(addr, 1024 * 1024)).await).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a 1 MiB body is not replayable"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(
        flaky.last().body_len,
        1024 * 1024,
        "the large body still streamed through"
    );
}

/// A 300 ms overall deadline with 200 ms per try and 3 attempts ends within the deadline, and the
/// backend saw a shrinking `x-gatehouse-deadline-ms`.
#[tokio::test]
async fn deadline_includes_retries_and_propagates() {
    let be = Backend::new()
        .handle("/", |_| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Response::new(full("late"))
        })
        .run()
        .await;
    let yaml = proxy_yaml(&format!(
        "{}\n    timeouts: {{ connect: 1s, request: 300ms }}\n    outlier_detection: {{ consecutive_failures: 0 }}\n    retry: {{ retry_on: [gateway-error], max_attempts: 3, per_try_timeout: 200ms, backoff_base: 1ms }}",
        endpoints(&[&be])
    ));
    let proxy = start(&yaml).await;
    let addr = proxy.addr("main").await.expect("listener");
    let t = Instant::now();
    let (status, _, _) = Client::http1().get(&format!("http://{addr}/x")).await;
    let took = t.elapsed();
    println!("3 attempts under a 300ms deadline ended after {took:?}");
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(took < Duration::from_millis(300 + 150), "took {took:?}");
    // The backend records a request when its body is read, before sleeping.
    let seen: Vec<u64> = be
        .seen()
        .iter()
        .filter_map(|s| s.headers.get("x-gatehouse-deadline-ms"))
        .filter_map(|v| v.to_str().ok()?.parse().ok())
        .collect();
    assert!(seen.len() >= 2, "expected a retry, saw {seen:?}");
    assert!(
        seen[0] <= 300 && seen.windows(2).all(|w| w[1] < w[0]),
        "deadlines {seen:?}"
    );
}

/// A deadline sent by the caller is honoured: a shorter `x-gatehouse-deadline-ms` cuts the call.
#[tokio::test]
async fn incoming_deadline_is_honoured() {
    let be = Backend::new()
        .handle("/", |_| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Response::new(full("late"))
        })
        .run()
        .await;
    let proxy = start(&proxy_yaml(&endpoints(&[&be]))).await;
    let addr = proxy.addr("main").await.expect("listener");
    let t = Instant::now();
    let req = Request::get(format!("http://{addr}/x"))
        .header("x-gatehouse-deadline-ms", "150")
        .body(empty())
        .expect("request");
    let (status, _, _) = collect(Client::http1().send(req).await).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(t.elapsed() < Duration::from_millis(600));
    let seen = be.last();
    let ms: u64 = seen.headers["x-gatehouse-deadline-ms"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!(ms <= 150, "{ms}");
}

/// A backend answering every request 503 (marked `x-gatehouse-overloaded` when `shed`, as a
/// Gatehouse tier behind would), counting them; the proxy in front with `service` settings.
async fn always_503(
    shed: bool,
    service: &str,
) -> (
    gatehouse_common::runtime::Running,
    Arc<AtomicUsize>,
    BackendHandle,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let be = Backend::new()
        .handle("/", move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
            async move {
                let mut res = Response::new(full("down"));
                *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                if shed {
                    res.headers_mut()
                        .insert("x-gatehouse-overloaded", "true".parse().expect("value"));
                    res.headers_mut()
                        .insert("retry-after", "3".parse().expect("value"));
                }
                res
            }
        })
        .run()
        .await;
    let yaml = proxy_yaml(&format!("{}\n{service}", endpoints(&[&be])));
    (start(&yaml).await, calls, be)
}

/// A 503 marked `x-gatehouse-overloaded` comes from a Gatehouse tier behind this one that shed
/// the request (its breaker for some service is open): it is passed on as is, not retried, and
/// not held against the endpoint (which stays healthy, its breaker closed).
#[tokio::test]
async fn shed_responses_are_not_retried_nor_held_against_the_endpoint() {
    let (proxy, calls, _be) = always_503(
        true,
        "    retry: { retry_on: [gateway-error], max_attempts: 3, backoff_base: 1ms, backoff_max: 2ms }\n    outlier_detection: { consecutive_failures: 2 }\n    failure_breaker: { consecutive_failures: 3 }",
    )
    .await;
    let addr = proxy.addr("main").await.expect("listener");
    let client = Client::http1();
    for _ in 0..10 {
        let (status, headers, _) = client.get(&format!("http://{addr}/x")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers["retry-after"], "3");
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        10,
        "a shed response was retried"
    );
    assert_healthy(&proxy).await;
}

/// `count_server_errors: false` (a gateway in front of many services): relayed 5xx neither
/// eject the endpoint nor open the breaker; they are still retried per the policy.
#[tokio::test]
async fn relayed_server_errors_need_not_count() {
    let (proxy, calls, _be) = always_503(
        false,
        "    count_server_errors: false\n    retry: { retry_on: [gateway-error], max_attempts: 2, backoff_base: 1ms, backoff_max: 2ms, budget: { ratio: 1.0, min_per_second: 100 } }\n    outlier_detection: { consecutive_failures: 2 }\n    failure_breaker: { consecutive_failures: 3 }",
    )
    .await;
    let addr = proxy.addr("main").await.expect("listener");
    let client = Client::http1();
    for _ in 0..10 {
        let (status, headers, _) = client.get(&format!("http://{addr}/x")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(headers.get("x-gatehouse-overloaded").is_none());
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        20,
        "each request tried twice"
    );
    assert_healthy(&proxy).await;
}

/// The only endpoint is healthy and the breaker closed.
async fn assert_healthy(proxy: &gatehouse_common::runtime::Running) {
    let ups = upstreams(proxy.admin_addr).await;
    assert_eq!(ups["app"]["breaker"], "closed");
    assert_eq!(ups["app"]["endpoints"][0]["state"], "healthy");
}

/// Clients that give up before the answer arrives (over HTTP/1.1 and HTTP/2) leave nothing
/// behind: the in-flight gauge, the endpoint's load and the breaker's pending slots return to
/// zero, so a service with two pending slots still serves after ten abandoned requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_give_back_their_slots() {
    let be = Backend::new()
        .handle("/slow", |_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Response::new(full("late"))
        })
        .route("/fast", "fast")
        .run()
        .await;
    let yaml = proxy_yaml(&format!(
        "{}\n    circuit_breaker: {{ max_requests: 4, max_pending_requests: 2 }}",
        endpoints(&[&be])
    ));
    let proxy = start(&yaml).await;
    let addr = proxy.addr("main").await.expect("listener");
    for client in [Client::http1(), Client::h2c()] {
        for _ in 0..5 {
            let waited = tokio::time::timeout(
                Duration::from_millis(150),
                client.get(&format!("http://{addr}/slow")),
            )
            .await;
            assert!(waited.is_err(), "the slow backend answered");
        }
    }
    // The proxy learns of each abandon when the connection or stream closes: allow it a moment.
    let mut text = String::new();
    for _ in 0..100 {
        let (_, _, body) = Client::http1()
            .get(&format!("http://{}/metrics", proxy.admin_addr))
            .await;
        text = String::from_utf8_lossy(&body).into_owned();
        if text.contains("gatehouse_in_flight_requests 0\n") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(text.contains("gatehouse_in_flight_requests 0\n"), "{text}");
    assert_eq!(
        upstreams(proxy.admin_addr).await["app"]["endpoints"][0]["in_flight"],
        0
    );
    for _ in 0..5 {
        let (status, _, body) = Client::http1().get(&format!("http://{addr}/fast")).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
}
