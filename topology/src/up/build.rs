//! The `cargo build` that `up` runs first when started by `cargo run`: the very build a shell's
//! `cargo build --workspace` does, so that after either one the other compiles nothing.

use std::ffi::OsStr;
use std::path::Path;

use anyhow::{Context, bail};
use tokio::process::Command;

/// Builds the workspace (the gateways, the sidecar and this binary) with the cargo that runs us
/// (`cargo run` sets `CARGO`); without it, does nothing. `--release` when `bin_dir` is a
/// `release` directory.
///
/// Two things make this build the one a shell's `cargo build [--release] --workspace` does, so
/// that a cold `cargo run -p gatehouse-topology -- up` compiles every crate once and later
/// alternations compile nothing:
///
/// - **The whole workspace**, not `-p` the three gateways: cargo turns on a dependency's features
///   for the packages a command selects, so `-p gatehouse-edge -p ...` built tokio without
///   `process`, and everything above it, apart from the workspace build. (The topology binary
///   itself resolves the workspace's features through `gatehouse-workspace-hack`.)
/// - **Without the variables `cargo run` set for us** ([`is_cargo_run_var`]): ring's build script
///   asks to rerun when `CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME` or `OUT_DIR` change, and cargo
///   compares them with its own environment; inherited from `cargo run` (the topology's
///   values), they rebuilt ring and everything above it (rustls, quinn, `gatehouse-common`, the
///   gateways), and the next shell build rebuilt them back.
pub(super) async fn build_workspace(bin_dir: &Path) -> anyhow::Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--workspace"]);
    let release = bin_dir.file_name().is_some_and(|n| n == "release");
    if release {
        cmd.arg("--release");
    }
    for (name, _) in std::env::vars_os() {
        if is_cargo_run_var(&name) {
            cmd.env_remove(name);
        }
    }
    eprintln!(
        "gatehouse-topology: building the binaries (cargo build{} --workspace)",
        if release { " --release" } else { "" }
    );
    let status = cmd.status().await.context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build of the binaries failed ({status})");
    }
    Ok(())
}

/// A variable that cargo sets for the program `cargo run` starts (and for build scripts and
/// rustc): `CARGO`, `CARGO_MANIFEST_*`, `CARGO_PKG_*`, `CARGO_CRATE_NAME`, `OUT_DIR`, ... The
/// user's own cargo settings (`CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_BUILD_*`,
/// `CARGO_PROFILE_*`, `RUSTFLAGS`, ...) are not among them and reach the build.
fn is_cargo_run_var(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "CARGO_TARGET_TMPDIR"
                | "OUT_DIR"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_run_vars_are_dropped_user_settings_kept() {
        let cases = [
            // What `cargo run` set for gatehouse-topology (ring watches these).
            ("CARGO", true),
            ("CARGO_MANIFEST_DIR", true),
            ("CARGO_MANIFEST_PATH", true),
            ("CARGO_PKG_NAME", true),
            ("CARGO_PKG_VERSION_MAJOR", true),
            ("CARGO_CRATE_NAME", true),
            ("OUT_DIR", true),
            // The user's.
            ("CARGO_HOME", false),
            ("CARGO_TARGET_DIR", false),
            ("CARGO_BUILD_JOBS", false),
            ("CARGO_PROFILE_RELEASE_LTO", false),
            ("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER", false),
            ("CARGO_ENCODED_RUSTFLAGS", false),
            ("RUSTFLAGS", false),
            ("RUSTUP_TOOLCHAIN", false),
            ("PATH", false),
        ];
        for (name, dropped) in cases {
            assert_eq!(is_cargo_run_var(OsStr::new(name)), dropped, "{name}");
        }
    }
}
