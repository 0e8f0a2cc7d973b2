//! Test kit for Gatehouse: fake backends as builders, HTTP/1.1 and HTTP/2 clients, and helpers
//! to start a binary in-process from YAML. Everything is real sockets on 127.0.0.1 port 0.

pub mod backend;
pub mod bodies;
pub mod cli;
pub mod client;
pub mod h3;
pub mod named;
pub mod nats;
pub mod proxy;
pub mod redis;
pub mod server;

pub use backend::{Backend, BackendHandle, Seen};
pub use client::{Client, collect};
pub use proxy::start;

/// Current resident set size of this process, in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
