//! Checks every gateway binary's `validate` command passes in the same way: the example config
//! is accepted; a bad file is refused with exit 64, file:line:col, key and suggestion.

use std::path::Path;
use std::process::{Command, Output};

fn validate(bin: &str, dir: &Path, file: &str) -> Output {
    Command::new(bin)
        .current_dir(dir)
        .args(["validate", "--config", file])
        .output()
        .expect("run the binary")
}

/// `BIN validate --config config/example.yaml` in `manifest_dir` exits 0 with the summary line.
pub fn assert_example_validates(bin: &str, name: &str, manifest_dir: &str) {
    let out = validate(bin, Path::new(manifest_dir), "config/example.yaml");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with(&format!("{name}: config/example.yaml is valid (")),
        "{stdout}"
    );
}

/// A misspelt top-level key is refused with exit 64, its position and a suggestion.
pub fn assert_bad_config_refused(bin: &str, name: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bad.yaml"), "listners: []\n").expect("write");
    let out = validate(bin, dir.path(), "bad.yaml");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "{name}: bad.yaml:1:1: at `listners`: unknown field"
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(" (did you mean `listeners`?)\n"),
        "{stderr}"
    );
}
