//! Reload and drain under load: a new route table, a broken file, then shutdown with a slow
//! request in flight. No request may fail that should not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gatehouse_common::body::full;
use gatehouse_common::config;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::{Backend, Client};
use http::{Response, StatusCode};

fn yaml(routes: &str, services: &str) -> String {
    format!(
        "listeners:\n  - name: main\n    address: 127.0.0.1:0\nadmin:\n  address: 127.0.0.1:0\ndrain_timeout: 10s\nroutes:\n{routes}\nservices:\n{services}\n"
    )
}

/// Polls `f` until it is true or `within` passes.
async fn eventually(within: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_then_drain() {
    let v1 = Backend::new().route("/", "v1").run().await;
    let v2 = Backend::new()
        .handle("/slow", |_| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Response::new(full("slow done"))
        })
        .route("/", "v2")
        .run()
        .await;
    let services = format!(
        "  v1:\n    endpoints: [\"{}\"]\n  v2:\n    endpoints: [\"{}\"]",
        v1.addr, v2.addr
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.yaml");
    let first = yaml(
        "  - name: api\n    match: { path_prefix: /api }\n    service: v1",
        &services,
    );
    std::fs::write(&path, &first).expect("write config");
    let loaded = config::load::<ProxySettings>(&path).expect("config");
    let running = gatehouse_common::runtime::run("gatehouse-test", loaded, Some(path.clone()))
        .await
        .expect("start");
    gatehouse_common::lifecycle::watch_config(running.clone(), path.clone());
    let addr = running.addr("main").await.expect("listener");

    // A bounded loop of requests running through everything below.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let saw_v2 = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, ok, failed, saw_v2) = (stop.clone(), ok.clone(), failed.clone(), saw_v2.clone());
        tokio::spawn(async move {
            let client = Client::http1();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let (status, _, body) = client.get(&format!("http://{addr}/api/items")).await;
                if status == StatusCode::OK {
                    ok.fetch_add(1, Ordering::Relaxed);
                    if &body[..] == b"v2" {
                        saw_v2.store(true, Ordering::Relaxed);
                    }
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 1. A new route table: /api moves to v2, and a new route appears. The file watcher picks
    //    it up (debounced), no SIGHUP needed.
    let second = yaml(
        "  - name: api\n    match: { path_prefix: /api }\n    service: v2\n  - name: slow\n    match: { path_prefix: /slow }\n    service: v2",
        &services,
    );
    std::fs::write(&path, &second).expect("write config");
    assert!(
        eventually(Duration::from_secs(10), async || saw_v2
            .load(Ordering::Relaxed))
        .await,
        "the new route table never took effect"
    );

    // 2. A broken file: refused, the running table keeps serving.
    std::fs::write(&path, second.replace("service: v2", "service: v3")).expect("write config");
    let refused = eventually(Duration::from_secs(10), async || {
        running
            .shared()
            .metrics
            .render()
            .contains("gatehouse_config_reloads_total{result=\"failure\"} 1")
    })
    .await;
    assert!(
        refused,
        "the broken file was not noticed:\n{}",
        running.shared().metrics.render()
    );
    let err = running
        .reload()
        .await
        .expect_err("a broken file must be refused");
    let msg = err.to_string();
    assert!(msg.contains("unknown service `v3`"), "{msg}");
    assert!(msg.contains("did you mean `v"), "{msg}");
    assert!(msg.contains(":10:"), "the error names the line: {msg}");
    let (status, _, body) = Client::http1().get(&format!("http://{addr}/api/x")).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"v2"[..]));

    // 3. SIGTERM-equivalent with a slow request in flight: it completes, new connections are
    //    refused, and the runtime stops.
    let slow =
        tokio::spawn(async move { Client::http1().get(&format!("http://{addr}/slow")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load loop");
    running.shutdown();
    let (status, _, body) = slow.await.expect("slow request");
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"slow done"[..]));
    tokio::time::timeout(Duration::from_secs(5), running.wait())
        .await
        .expect("drain finished");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener still accepting after drain"
    );
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("requests during reloads: {ok} ok, {failed} failed");
    assert!(ok > 50, "too few requests ran ({ok})");
    assert_eq!(failed, 0, "requests failed during reload");
}

/// Listeners added by a reload open; removed ones close.
#[tokio::test]
async fn reload_opens_and_closes_listeners() {
    let be = Backend::new().route("/", "hi").run().await;
    let services = format!("  app:\n    endpoints: [\"{}\"]", be.addr);
    let routes = "  - name: all\n    service: app";
    let base = yaml(routes, &services);
    let running = gatehouse_tests::start(&base).await;
    let extra = base.replace(
        "listeners:\n",
        "listeners:\n  - name: extra\n    address: 127.0.0.1:0\n",
    );
    let loaded = config::parse::<ProxySettings>("test.yaml", &extra).expect("config");
    running.reload_from(loaded).await.expect("reload");
    let extra_addr = running.addr("extra").await.expect("extra listener opened");
    let (s, _, b) = Client::http1().get(&format!("http://{extra_addr}/")).await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &b"hi"[..]));
    let loaded = config::parse::<ProxySettings>("test.yaml", &base).expect("config");
    running.reload_from(loaded).await.expect("reload");
    assert!(running.addr("extra").await.is_none());
    let closed = eventually(Duration::from_secs(5), async || {
        tokio::net::TcpStream::connect(extra_addr).await.is_err()
    })
    .await;
    assert!(closed, "removed listener still accepts");
    let main = running.addr("main").await.expect("main");
    let (s, _, _) = Client::http1().get(&format!("http://{main}/")).await;
    assert_eq!(s, StatusCode::OK);
}
