//! The Gatehouse demo: an e-commerce shop of small REST and gRPC services behind the gateways.
//!
//! [`serve`] starts one demo service in-process (main listener plus admin listener, port 0
//! allowed) and returns the addresses it bound; the `gatehouse-topology service NAME` command is
//! a thin layer over it. Every service answers the documented shapes of `topology/README.md`,
//! exposes `/healthz`, `/readyz`, `/metrics` and `POST /_chaos` on its admin listener, and can be
//! told to fail or slow down at run time ([`chaos`]).

mod admin;
pub mod chaos;
pub mod cli;
mod error;
mod http;
mod metrics;
mod respond;
mod run;
mod service_name;
mod services;
mod shop;
mod state;
pub mod up;

/// Generated gRPC code of `proto/orders.proto` (package `shop.orders.v1`): messages, the
/// `orders_client::OrdersClient` and `orders_server::OrdersServer`.
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("shop.orders.v1");
}

/// Generated gRPC code of `proto/catalog.proto` (package `shop.catalog.v1`): the gRPC face of
/// the REST `catalog`, served by the internal gateway (`grpc_to_rest`); the demo has no server
/// of its own for it, tests use `catalog_client::CatalogClient`.
pub mod catalog_proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("shop.catalog.v1");
}

pub use error::{Error, Result};
pub use run::{RunningService, ServeOptions, serve};
pub use service_name::ServiceName;
pub use services::idp::{DEMO_CLIENTS, DemoClient, IDP_ISSUER, TOKEN_AUDIENCE};
pub use services::orders::worker::BrokerOptions;
