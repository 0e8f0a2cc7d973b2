//! End-to-end tests of the `gatehouse-certs` binary on real files in temporary directories.

mod init;
mod issue;
mod jwt;

use std::path::Path;
use std::process::Command;

/// What a process did.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

fn output(cmd: &mut Command) -> Out {
    let out = cmd.output().expect("spawn process");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the built `gatehouse-certs` with `args`.
pub fn certs(args: &[&str]) -> Out {
    output(Command::new(env!("CARGO_BIN_EXE_gatehouse-certs")).args(args))
}

/// Runs `gatehouse-certs` and asserts it succeeded; returns stdout.
pub fn certs_ok(args: &[&str]) -> String {
    let out = certs(args);
    assert_eq!(
        out.code,
        Some(0),
        "gatehouse-certs {args:?} failed: {out:?}"
    );
    out.stdout
}

/// Runs Debian's `/usr/bin/openssl` with `args`.
pub fn openssl(args: &[&str]) -> Out {
    output(Command::new("/usr/bin/openssl").args(args))
}

/// A path as `&str` for argv.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// The URI SANs of the first certificate in a PEM file, read with x509-parser.
pub fn uri_sans(path: &Path) -> Vec<String> {
    let pem = std::fs::read_to_string(path).expect("read cert");
    gatehouse_certs::inspect(&pem).expect("inspect").sans.uris
}
