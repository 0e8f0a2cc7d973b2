//! Gatehouse PKI: a development CA, SPIFFE workload and server certificates, JWT signing keys,
//! JWKS and dev tokens; the library behind the `gatehouse-certs` CLI and the test fixtures.
//!
//! Identities are SPIFFE IDs in a certificate's single URI SAN:
//! `spiffe://<trust-domain>/<kind>/<name>` (see [`spiffe_id`]).

mod ca;
mod error;
mod inspect;
mod issue;
mod jwt;
mod key;
pub mod layout;
pub mod pem;
mod spiffe;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use ca::{Ca, CaOptions};
pub use error::{Error, Result};
pub use inspect::{CertInfo, Sans, inspect, inspect_der};
pub use issue::{
    CLOCK_SKEW, DEFAULT_CA_VALIDITY, DEFAULT_LEAF_VALIDITY, IssueOptions, Issued, Validity,
};
pub use jwt::{JwtAlg, JwtKeys, TokenRequest, parse_claim, parse_duration};
pub use key::{KeyAlg, key_pair_from_pem};
pub use pem::write_private_key;
pub use spiffe::{
    Kind, spiffe_id, trust_domain_id, trust_domain_of, validate_name, validate_trust_domain,
};
