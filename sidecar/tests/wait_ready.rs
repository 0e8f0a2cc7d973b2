//! `gatehouse-sidecar wait-ready`: non-zero on timeout, zero once `/readyz` answers 200 — here
//! gated on the local app's health check (`readiness.http_check`).

use std::process::Command;
use std::time::{Duration, Instant};

use gatehouse_tests::{Backend, Client, start};
use http::StatusCode;

fn wait_ready(admin: std::net::SocketAddr, timeout: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse-sidecar"))
        .args([
            "wait-ready",
            "--admin",
            &admin.to_string(),
            "--timeout",
            timeout,
        ])
        .output()
        .expect("run wait-ready");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_ready_follows_the_app_health_check() {
    // The app is down at first: its port is closed.
    let app_addr = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr")
    };
    let yaml = format!(
        "listeners: [{{ name: inbound, address: \"127.0.0.1:0\" }}]\nadmin: {{ address: \"127.0.0.1:0\" }}\nreadiness: {{ http_check: \"http://{app_addr}/healthz\", check_interval: 100ms }}\nroutes: [{{ name: app, service: app }}]\nservices:\n  app: {{ endpoints: [\"{app_addr}\"] }}\n"
    );
    let sidecar = start(&yaml).await;
    let admin = sidecar.admin_addr;
    let (s, _, body) = Client::http1().get(&format!("http://{admin}/readyz")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        String::from_utf8_lossy(&body).contains("http_check"),
        "{body:?}"
    );

    let started = Instant::now();
    let admin_for_cmd = admin;
    let (code, stderr) = tokio::task::spawn_blocking(move || wait_ready(admin_for_cmd, "700ms"))
        .await
        .expect("join");
    assert_eq!(
        code,
        Some(1),
        "wait-ready must fail while the app is down: {stderr}"
    );
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(stderr.contains("not ready"), "{stderr}");

    // The app comes up: readiness follows and wait-ready succeeds.
    let _app = Backend::new()
        .route("/healthz", "ok")
        .run_on(app_addr)
        .await;
    let (code, stderr) = tokio::task::spawn_blocking(move || wait_ready(admin, "10s"))
        .await
        .expect("join");
    assert_eq!(code, Some(0), "{stderr}");
    let (s, _, _) = Client::http1().get(&format!("http://{admin}/readyz")).await;
    assert_eq!(s, StatusCode::OK);
}

#[test]
fn wait_ready_without_a_listener_fails() {
    let (code, stderr) = wait_ready("127.0.0.1:9".parse().expect("addr"), "300ms");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("cannot connect") || stderr.contains("not ready"),
        "{stderr}"
    );
}
