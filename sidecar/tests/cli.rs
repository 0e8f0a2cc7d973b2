//! Runs the built `gatehouse-sidecar` binary: `validate` accepts the example config and refuses a
//! bad one with exit code 64. The table of config errors is in `internal/tests/cli.rs`: the
//! binaries share the config loader.

use std::path::Path;
use std::process::{Command, Output};

fn validate(dir: &Path, file: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse-sidecar"))
        .current_dir(dir)
        .args(["validate", "--config", file])
        .output()
        .expect("run gatehouse-sidecar")
}

#[test]
fn validate_accepts_the_example() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = validate(dir, "config/example.yaml");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("gatehouse-sidecar: config/example.yaml is valid ("),
        "{stdout}"
    );
}

#[test]
fn validate_refuses_a_bad_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bad.yaml"), "listners: []\n").expect("write");
    let out = validate(dir.path(), "bad.yaml");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.starts_with("gatehouse-sidecar: bad.yaml:1:1: at `listners`: unknown field"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(" (did you mean `listeners`?)\n"),
        "{stderr}"
    );
}
