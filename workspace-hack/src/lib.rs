//! No code: its dependencies' features make `cargo run -p gatehouse-topology` build what
//! `cargo build --workspace` builds. See `Cargo.toml`.
