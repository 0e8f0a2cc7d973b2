//! The `sidecar` section: settings only `gatehouse-sidecar` reads (which listener faces the
//! mesh, which faces the app, and who may call what), declared in the sidecar crate and parsed
//! by its extension (`gatehouse_common::config::section`).

use serde::{Deserialize, Serialize};

/// Settings of the sidecar tier.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SidecarSettings {
    /// The mTLS listener callers from the mesh reach (mesh → app). Its requests are authorized
    /// by `allow` and carry the caller's identity to the app as `x-gatehouse-peer`.
    pub inbound_listener: String,
    /// The loopback listener the app calls (app → mesh), with `Host: SERVICE` or absolute-form
    /// requests; routed by host to `services`. Default: none.
    #[serde(default)]
    pub outbound_listener: Option<String>,
    /// The trust domain of caller identities. Default `gatehouse.local`.
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Who may call the app, checked in order; the first rule whose path and method match
    /// decides. No rule matching: 403 (default deny).
    pub allow: Vec<AllowRule>,
}

fn default_trust_domain() -> String {
    "gatehouse.local".into()
}

/// One authorization rule of the inbound side.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AllowRule {
    /// SPIFFE IDs admitted: exact, or `spiffe://td/service/*` for a subtree.
    pub peers: Vec<String>,
    /// Path prefix (segment boundary) the rule covers. Default `/`: every path.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Methods the rule covers. Default: all.
    #[serde(default)]
    pub methods: Vec<String>,
}
