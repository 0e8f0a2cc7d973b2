//! The `gatehouse-topology service` command: exit codes for bad input, the JSON line with the
//! bound addresses, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::Value;

use super::support::get;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse-topology");

fn service(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["service"]).args(args).stdin(Stdio::null());
    cmd
}

#[test]
fn bad_input_exits_64() {
    let any = ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
    for args in [
        vec!["nope"],
        vec!["idp"],
        vec!["idp", "--jwt-key", "/nonexistent/key.pem"],
        vec![
            "echo",
            "--listen",
            "not-an-address",
            "--admin",
            "127.0.0.1:0",
        ],
    ] {
        let mut full = args.clone();
        if args.len() < 4 || args[1] != "--listen" {
            full.extend(any);
        }
        let out = service(&full).output().expect("run");
        assert_eq!(out.status.code(), Some(64), "{full:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[tokio::test]
async fn service_prints_its_addresses_and_stops_on_sigterm() {
    let mut child = service(&[
        "echo",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--instance",
        "3",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("read");
    let started: Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(started["service"], "echo");
    assert_eq!(started["instance"], 3);
    let listen = started["listen"]
        .as_str()
        .expect("listen")
        .parse()
        .expect("addr");
    let admin = started["admin"]
        .as_str()
        .expect("admin")
        .parse()
        .expect("addr");
    let echoed = get(listen, "/hi").await;
    assert_eq!(echoed.header("x-instance"), "3");
    assert_eq!(get(admin, "/readyz").await.status, StatusCode::OK);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
}
