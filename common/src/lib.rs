//! Shared runtime of the Gatehouse binaries: config, TLS, the HTTP proxy core, observability and lifecycle.
//!
//! Each binary (`gatehouse-edge`, `gatehouse-internal`, `gatehouse-sidecar`) is a thin layer over this
//! crate: it parses its CLI, loads its config with [`config`], and starts [`runtime::run`].

pub mod admin;
pub mod body;
pub mod cli;
pub mod client;
pub mod config;
pub mod conn;
pub mod ctx;
pub mod error;
pub mod filter;
pub mod forward;
pub mod handler;
pub mod headers;
pub mod identity;
pub mod lifecycle;
pub mod metrics;
pub mod plan;
pub mod proxy;
pub mod respond;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod settings;
pub mod stack;
pub mod telemetry;
pub mod template;
pub mod tier;
pub mod tls;
pub mod trace_context;
pub mod upstream;

/// The error type carried by streaming bodies and services across the proxy.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
