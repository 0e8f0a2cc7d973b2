//! The built binary under real signals: SIGHUP reloads (a bad file is refused), SIGTERM drains
//! a slow in-flight request and exits 0; with `drain_delay`, SIGTERM first only turns `/readyz`
//! to 503 while new connections are still served.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gatehouse_common::body::full;
use gatehouse_tests::{Backend, Client};
use http::{Response, StatusCode};

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Waits for a JSON log line whose `message` is `msg` and returns it parsed.
fn wait_for_log(lines: &mpsc::Receiver<String>, msg: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200))
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["message"] == msg
        {
            return v;
        }
    }
    panic!("no `{msg}` log line within 15s");
}

/// `gatehouse-internal --config PATH` with JSON logs on `workers` workers, and its log lines.
fn spawn_internal(path: &std::path::Path, workers: u64) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse-internal"))
        .args([
            "--config",
            path.to_str().expect("utf-8 path"),
            "--log-format",
            "json",
        ])
        .env("TOKIO_WORKER_THREADS", workers.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gatehouse-internal");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_drains_on_one_worker() {
    reload_and_drain(1, "current_thread").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_drains_on_two_workers() {
    reload_and_drain(2, "multi_thread").await;
}

/// The scheduler follows the worker count (`TOKIO_WORKER_THREADS`): one worker runs the
/// current-thread scheduler, more the multi-thread one; reload and drain behave alike.
async fn reload_and_drain(workers: u64, scheduler: &str) {
    let a = Backend::new().route("/", "a").run().await;
    let b = Backend::new()
        .handle("/slow", |_| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Response::new(full("slow done"))
        })
        .route("/", "b")
        .run()
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("internal.yaml");
    let config = |service: &str| {
        format!(
            "listeners:\n  - name: main\n    address: 127.0.0.1:0\nadmin:\n  address: 127.0.0.1:0\nroutes:\n  - name: all\n    service: {service}\nservices:\n  a:\n    endpoints: [\"{}\"]\n  b:\n    endpoints: [\"{}\"]\n",
            a.addr, b.addr
        )
    };
    std::fs::write(&path, config("a")).expect("write");
    let (mut child, lines) = spawn_internal(&path, workers);
    let listening = wait_for_log(&lines, "listening");
    // Logged after the listeners' lines, once serving.
    let runtime = wait_for_log(&lines, "runtime started");
    assert_eq!(
        (runtime["workers"].as_u64(), runtime["scheduler"].as_str()),
        (Some(workers), Some(scheduler))
    );
    let addr = listening["address"].as_str().expect("address").to_owned();
    let url = format!("http://{addr}/x");
    let client = Client::http1();
    assert_eq!(&client.get(&url).await.2[..], b"a");

    // SIGHUP with a new file: served by b from then on.
    std::fs::write(&path, config("b")).expect("write");
    signal(&child, "-HUP");
    wait_for_log(&lines, "config reloaded");
    assert_eq!(&client.get(&url).await.2[..], b"b");

    // SIGHUP with a broken file: refused with file:line:col, b keeps serving.
    std::fs::write(&path, config("c")).expect("write");
    signal(&child, "-HUP");
    let refused = wait_for_log(
        &lines,
        "config reload refused; the previous config keeps serving",
    );
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(error.contains("internal.yaml:8:5"), "{error}");
    assert!(error.contains("unknown service `c`"), "{error}");
    assert_eq!(&client.get(&url).await.2[..], b"b");

    // SIGTERM while a slow request is in flight: it completes, then the process exits 0.
    let slow_url = format!("http://{addr}/slow");
    let slow = tokio::spawn(async move { Client::http1().get(&slow_url).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&child, "-TERM");
    let (status, _, body) = slow.await.expect("slow request");
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"slow done"[..]));
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert_eq!(exit.code(), Some(0), "exit after drain");
}

/// `drain_delay: 30s`: after SIGTERM, `/readyz` answers 503 while the listener still serves new
/// connections; the drain starts when the delay ends or, as here, at a second SIGTERM (so the
/// test waits for no timer); the listener then refuses, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_drain_delay_keeps_serving_while_not_ready() {
    let backend = Backend::new().route("/", "a").run().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("internal.yaml");
    std::fs::write(
        &path,
        format!(
            "listeners:\n  - name: main\n    address: 127.0.0.1:0\nadmin:\n  address: 127.0.0.1:0\ndrain_delay: 30s\nroutes:\n  - name: all\n    service: a\nservices:\n  a:\n    endpoints: [\"{}\"]\n",
            backend.addr
        ),
    )
    .expect("write");
    let (mut child, lines) = spawn_internal(&path, 1);
    let listening = wait_for_log(&lines, "listening");
    let admin = wait_for_log(&lines, "admin listening");
    wait_for_log(&lines, "runtime started");
    let addr = listening["address"].as_str().expect("address").to_owned();
    let readyz = format!(
        "http://{}/readyz",
        admin["address"].as_str().expect("admin")
    );
    let url = format!("http://{addr}/x");
    assert_eq!(Client::http1().get(&readyz).await.0, StatusCode::OK);

    signal(&child, "-TERM");
    let delay = wait_for_log(
        &lines,
        "not ready; accepting for drain_delay, then draining",
    );
    assert_eq!(delay["delay"], "30s", "{delay}");
    assert_eq!(
        Client::http1().get(&readyz).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // A new client, a new connection: still served.
    assert_eq!(&Client::http1().get(&url).await.2[..], b"a");

    signal(&child, "-TERM");
    wait_for_log(&lines, "SIGTERM again: draining now");
    wait_for_log(&lines, "drained");
    let refused = tokio::net::TcpStream::connect(&addr).await;
    assert!(
        refused.is_err(),
        "the listener still accepts after the drain"
    );
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert_eq!(exit.code(), Some(0), "exit after drain");
}
