//! The names of the demo services, as the command line, metrics and `x-service` spell them.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The demo services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ServiceName {
    /// REST: `GET /products`, `GET /products/{id}`.
    Catalog,
    /// REST: `GET /reviews/{product_id}`.
    Reviews,
    /// REST: `GET /prices/{product_id}`.
    Pricing,
    /// REST: `GET /stock/{product_id}`.
    Inventory,
    /// REST: `GET /users/me`, `GET /users/{id}`.
    Users,
    /// gRPC: `shop.orders.v1.Orders`.
    Orders,
    /// REST: any method and path, answered with what was received.
    Echo,
    /// REST: the development identity provider (discovery, JWKS, `POST /oauth/token`).
    Idp,
}

impl ServiceName {
    /// Every demo service.
    pub const ALL: [ServiceName; 8] = [
        ServiceName::Catalog,
        ServiceName::Reviews,
        ServiceName::Pricing,
        ServiceName::Inventory,
        ServiceName::Users,
        ServiceName::Orders,
        ServiceName::Echo,
        ServiceName::Idp,
    ];

    /// The name used on the command line, in metrics and in `x-service`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Catalog => "catalog",
            ServiceName::Reviews => "reviews",
            ServiceName::Pricing => "pricing",
            ServiceName::Inventory => "inventory",
            ServiceName::Users => "users",
            ServiceName::Orders => "orders",
            ServiceName::Echo => "echo",
            ServiceName::Idp => "idp",
        }
    }

    /// Whether the main listener speaks gRPC (HTTP/2 only) rather than REST.
    pub fn is_grpc(self) -> bool {
        self == ServiceName::Orders
    }

    /// `catalog, reviews, ...` for messages.
    pub(crate) fn list() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| Error::UnknownService(s.to_owned()))
    }
}
