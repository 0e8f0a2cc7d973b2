//! Empty: a build script makes cargo resolve `[build-dependencies]`, the host side of the hack.

fn main() {
    // Not the whole package directory (cargo's default): editing a comment in Cargo.toml would
    // rebuild the topology.
    println!("cargo::rerun-if-changed=build.rs");
}
