//! Traffic control through real sockets: a weighted split lands within two points of its
//! weights, sticky hashing keeps a user on one side, mirroring copies its share to a shadow
//! (bodies included, within the limit) and a shadow that hangs does not slow the primary.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_common::body::full;
use gatehouse_tests::named::{header, named, percentile, send};
use gatehouse_tests::{Backend, BackendHandle, Client, start};
use http::{Response, StatusCode};

fn yaml(routes: &str, services: &[(&str, &BackendHandle)]) -> String {
    let mut y = format!(
        "listeners: [{{ name: main, address: 127.0.0.1:0 }}]\nadmin: {{ address: 127.0.0.1:0 }}\nroutes:\n{routes}\nservices:\n"
    );
    for (name, h) in services {
        y.push_str(&format!("  {name}: {{ endpoints: [\"{}\"] }}\n", h.addr));
    }
    y
}

/// Sends `n` GETs to `path` from `concurrency` tasks; counts answers by `x-backend`.
async fn spread(
    addr: std::net::SocketAddr,
    path: &str,
    n: usize,
    concurrency: usize,
    headers: Arc<dyn Fn(usize) -> Vec<(String, String)> + Send + Sync>,
) -> HashMap<String, usize> {
    let client = Client::h2c();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let client = client.clone();
        let url = format!("http://{addr}{path}");
        let headers = headers.clone();
        tasks.push(tokio::spawn(async move {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for i in (t..n).step_by(concurrency) {
                let hs = headers(i);
                let hs: Vec<(&str, &str)> =
                    hs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let (s, h, _) = send(&client, "GET", &url, &hs, None).await;
                assert_eq!(s, StatusCode::OK);
                *counts
                    .entry(header(&h, "x-backend").to_owned())
                    .or_default() += 1;
            }
            counts
        }));
    }
    let mut total = HashMap::new();
    for t in tasks {
        for (k, v) in t.await.expect("task") {
            *total.entry(k).or_default() += v;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_split_lands_within_two_points() {
    let v1 = named("users-v1").await;
    let v2 = named("users-v2").await;
    let routes = "  - name: users\n    split: [{ service: users-v1, weight: 90 }, { service: users-v2, weight: 10 }]";
    let proxy = start(&yaml(routes, &[("users-v1", &v1), ("users-v2", &v2)])).await;
    let addr = proxy.addr("main").await.expect("listener");
    let n = 5_000;
    let counts = spread(addr, "/users", n, 16, Arc::new(|_| Vec::new())).await;
    let share = |name: &str| 100.0 * *counts.get(name).unwrap_or(&0) as f64 / n as f64;
    assert_eq!(counts.values().sum::<usize>(), n);
    assert!((share("users-v1") - 90.0).abs() <= 2.0, "{counts:?}");
    assert!((share("users-v2") - 10.0).abs() <= 2.0, "{counts:?}");

    // `/routes` shows the split's services and weights.
    let (_, _, body) = Client::http1()
        .get(&format!("http://{}/routes", proxy.admin_addr))
        .await;
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v[0]["action"], "split");
    assert_eq!(v[0]["service"], serde_json::json!(["users-v1", "users-v2"]));
    assert_eq!(
        v[0]["split"][1],
        serde_json::json!({"service": "users-v2", "weight": 10})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_split_keeps_a_user_on_one_side() {
    let v1 = named("users-v1").await;
    let v2 = named("users-v2").await;
    let routes = "  - name: by-header\n    match: { path_prefix: /h }\n    split: [{ service: users-v1, weight: 50 }, { service: users-v2, weight: 50 }]\n    sticky: { header: x-user }\n  - name: by-cookie\n    match: { path_prefix: /c }\n    split: [{ service: users-v1, weight: 80 }, { service: users-v2, weight: 20 }]\n    sticky: { cookie: uid }";
    let proxy = start(&yaml(routes, &[("users-v1", &v1), ("users-v2", &v2)])).await;
    let addr = proxy.addr("main").await.expect("listener");
    let client = Client::http1();
    for (path, key) in [("/h", "x-user"), ("/c", "cookie")] {
        let mut sides: HashMap<String, usize> = HashMap::new();
        for user in 0..200 {
            let value = match key {
                "cookie" => format!("theme=dark; uid=user-{user}"),
                _ => format!("user-{user}"),
            };
            let mut seen = Vec::new();
            for _ in 0..5 {
                let (_, h, _) = send(
                    &client,
                    "GET",
                    &format!("http://{addr}{path}"),
                    &[(key, &value)],
                    None,
                )
                .await;
                seen.push(header(&h, "x-backend").to_owned());
            }
            assert!(
                seen.iter().all(|s| *s == seen[0]),
                "{path} user-{user}: {seen:?}"
            );
            *sides.entry(seen[0].clone()).or_default() += 1;
        }
        // Users spread over both sides, roughly by weight.
        let v2_users = *sides.get("users-v2").unwrap_or(&0);
        let want = if path == "/h" { 100 } else { 40 };
        assert!(v2_users.abs_diff(want) <= 30, "{path}: {sides:?}");
    }
    // Without the key, requests are spread at random.
    let counts = spread(addr, "/h", 400, 4, Arc::new(|_| Vec::new())).await;
    assert!(counts.len() == 2, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_copies_its_share_with_small_bodies() {
    let primary = named("primary").await;
    let shadow = named("shadow").await;
    let routes = "  - name: sampled\n    match: { path_prefix: /sampled }\n    service: primary\n    mirror: { service: shadow, percent: 25 }\n  - name: all\n    service: primary\n    mirror: { service: shadow }";
    let proxy = start(&yaml(routes, &[("primary", &primary), ("shadow", &shadow)])).await;
    let addr = proxy.addr("main").await.expect("listener");

    let n = 800;
    let counts = spread(addr, "/sampled", n, 8, Arc::new(|_| Vec::new())).await;
    assert_eq!(counts.get("primary"), Some(&n), "{counts:?}");
    let mirrored = wait_for_count(&shadow, 150, Duration::from_secs(5)).await;
    // 25% of 800 = 200; a binomial's standard deviation here is ~12.
    assert!((150..=250).contains(&mirrored), "shadow saw {mirrored}");
    let seen = shadow.last();
    assert!(seen.uri.starts_with("/sampled"));
    assert!(
        seen.headers["host"]
            .to_str()
            .expect("host")
            .contains("-shadow"),
        "{:?}",
        seen.headers["host"]
    );

    // Bodies: a small one is mirrored whole, a large one (> 64 KiB) is not mirrored.
    let before = shadow.count();
    let client = Client::http1();
    let small = "x".repeat(1000);
    let (s, _, _) = send(
        &client,
        "POST",
        &format!("http://{addr}/small"),
        &[],
        Some(full(small.clone())),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    wait_for_count(&shadow, before + 1, Duration::from_secs(5)).await;
    let seen = shadow.last();
    assert_eq!((seen.uri.as_str(), seen.body_len), ("/small", 1000));
    assert_eq!(primary.last().body_len, 1000);
    let large = vec![b'y'; 100 * 1024];
    let (s, _, _) = send(
        &client,
        "POST",
        &format!("http://{addr}/large"),
        &[],
        Some(full(large)),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(primary.last().body_len, 100 * 1024);
    // Streamed without a length: teed, and dropped at the limit.
    let streamed = gatehouse_tests::bodies::generated(200 * 1024, 16 * 1024);
    let (s, _, _) = send(
        &client,
        "POST",
        &format!("http://{addr}/streamed"),
        &[],
        Some(streamed),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(primary.last().body_len, 200 * 1024);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        shadow.count(),
        before + 1,
        "large bodies must not be mirrored"
    );

    let (_, _, body) = Client::http1()
        .get(&format!("http://{}/routes", proxy.admin_addr))
        .await;
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v[0]["name"], "sampled");
    assert_eq!(
        v[0]["mirror"],
        serde_json::json!({"service": "shadow", "percent": 25.0})
    );
}

/// A mirror copy is a child request of the primary: the shadow sees the primary's request id,
/// the same trace with a span of its own, the `-shadow` host; it counts as a child.
#[tokio::test]
async fn a_mirror_copy_is_a_child_of_the_primary() {
    let primary = named("primary").await;
    let shadow = named("shadow").await;
    let routes = "  - name: all\n    service: primary\n    mirror: { service: shadow }";
    let proxy = start(&yaml(routes, &[("primary", &primary), ("shadow", &shadow)])).await;
    let addr = proxy.addr("main").await.expect("listener");
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, _, _) = send(
        &Client::http1(),
        "GET",
        &format!("http://{addr}/x"),
        &[
            ("host", "api.test:8080"),
            ("x-request-id", "mirror-1"),
            ("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01")),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(wait_for_count(&shadow, 1, Duration::from_secs(5)).await, 1);
    let (p, s) = (primary.last(), shadow.last());
    assert_eq!(header(&s.headers, "x-request-id"), "mirror-1");
    assert_eq!(header(&s.headers, "host"), "api.test-shadow:8080");
    let parts = |h: &http::HeaderMap| -> Vec<String> {
        header(h, "traceparent")
            .split('-')
            .map(str::to_owned)
            .collect()
    };
    let (pt, st) = (parts(&p.headers), parts(&s.headers));
    assert_eq!(pt[1], trace);
    assert_eq!(st[1], trace, "the copy continues the primary's trace");
    assert_ne!(st[2], pt[2], "with a span of its own, not the primary's");
    let metrics = proxy.shared().metrics.render();
    assert!(
        metrics.contains(
            r#"gatehouse_child_requests_total{route="all",service="shadow",origin="mirror",status_class="2xx"} 1"#
        ),
        "{metrics}"
    );
}

async fn wait_for_count(b: &BackendHandle, want: usize, max: Duration) -> usize {
    let start = Instant::now();
    while b.count() < want && start.elapsed() < max {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let stragglers land.
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.count()
}

/// p99 of `n` sequential GETs.
async fn p99(client: &Client, url: &str, n: usize) -> Duration {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (s, _, _) = send(client, "GET", url, &[], None).await;
        assert_eq!(s, StatusCode::OK);
        samples.push(t.elapsed());
    }
    percentile(&mut samples, 99)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_shadow_does_not_slow_the_primary() {
    let primary = named("primary").await;
    let hanging = Backend::new()
        .handle("/", |_| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Response::new(full("late"))
        })
        .run()
        .await;
    let routes = "  - name: plain\n    match: { path_prefix: /plain }\n    service: primary\n  - name: mirrored\n    match: { path_prefix: /mirrored }\n    service: primary\n    mirror: { service: shadow }";
    let proxy = start(&yaml(
        routes,
        &[("primary", &primary), ("shadow", &hanging)],
    ))
    .await;
    let addr = proxy.addr("main").await.expect("listener");
    let client = Client::http1();
    // Warm the pool, then measure without and with the mirror.
    p99(&client, &format!("http://{addr}/plain"), 20).await;
    let base = p99(&client, &format!("http://{addr}/plain"), 200).await;
    let mirrored = p99(&client, &format!("http://{addr}/mirrored"), 200).await;
    eprintln!("primary p99: {base:?} without mirror, {mirrored:?} mirrored to a hanging shadow");
    // A mirror that held the primary would take the shadow's 5s; allow a loaded CI machine.
    let bound = Duration::from_millis(50).max(base * 4);
    assert!(
        mirrored < bound,
        "primary p99 {mirrored:?} while the shadow hangs (without mirror {base:?})"
    );
    assert_eq!(primary.count(), 420);
    // The shadow did get the copies (they are hanging there now).
    let shadow_got = wait_for_count(&hanging, 150, Duration::from_secs(3)).await;
    assert!(shadow_got >= 150, "shadow saw {shadow_got}");
}
