//! SPIFFE identities: `spiffe://<trust-domain>/<kind>/<name>` and the checks on their parts.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The kind of a mesh workload: the first path segment of its SPIFFE ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A gateway (`edge`, `internal`): `spiffe://<td>/gateway/<name>`.
    Gateway,
    /// A backend service: `spiffe://<td>/service/<name>`.
    Service,
}

impl Kind {
    /// The path segment: `gateway` or `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gateway => "gateway",
            Kind::Service => "service",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gateway" => Ok(Kind::Gateway),
            "service" => Ok(Kind::Service),
            _ => Err(Error::Parse {
                what: "identity kind",
                value: s.to_owned(),
                expected: "gateway or service",
            }),
        }
    }
}

/// The SPIFFE ID of a workload: `spiffe://<trust_domain>/<kind>/<name>`.
///
/// Does not validate its parts; [`Ca`](crate::Ca) does before issuing.
pub fn spiffe_id(trust_domain: &str, kind: Kind, name: &str) -> String {
    format!("spiffe://{trust_domain}/{kind}/{name}")
}

/// The trust domain's own SPIFFE ID, `spiffe://<trust_domain>`, carried by the CA certificate.
pub fn trust_domain_id(trust_domain: &str) -> String {
    format!("spiffe://{trust_domain}")
}

/// Checks a trust domain: lowercase letters, digits, `.`, `-`, `_` (SPIFFE ID spec §2.1).
pub fn validate_trust_domain(td: &str) -> Result<()> {
    let bad = |reason| Error::InvalidName {
        what: "trust domain",
        value: td.to_owned(),
        reason,
    };
    if td.is_empty() || td.len() > 255 {
        return Err(bad("must be 1 to 255 characters"));
    }
    if !td
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
    {
        return Err(bad(
            "only lowercase letters, digits, '.', '-' and '_' are allowed",
        ));
    }
    Ok(())
}

/// Checks an identity name: a single SPIFFE path segment that is also a usable DNS label
/// and file name (letters, digits, `-`, `_`, `.`; not starting with `.` or `-`).
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| Error::InvalidName {
        what: "identity name",
        value: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > 63 {
        return Err(bad("must be 1 to 63 characters"));
    }
    if name.starts_with(['.', '-']) {
        return Err(bad("must not start with '.' or '-'"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        return Err(bad("only letters, digits, '.', '-' and '_' are allowed"));
    }
    Ok(())
}

/// The trust domain of a SPIFFE ID (`spiffe://td/...` → `td`), if it is one.
pub fn trust_domain_of(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("spiffe://")?;
    let td = rest.split('/').next().unwrap_or(rest);
    (!td.is_empty()).then_some(td)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_checks() {
        assert_eq!(
            spiffe_id("gatehouse.local", Kind::Service, "orders"),
            "spiffe://gatehouse.local/service/orders"
        );
        assert_eq!(Kind::Gateway.to_string(), "gateway");
        assert_eq!(
            trust_domain_of("spiffe://gatehouse.local/gateway/edge"),
            Some("gatehouse.local")
        );
        assert_eq!(trust_domain_of("spiffe://td"), Some("td"));
        assert_eq!(trust_domain_of("https://x"), None);
        assert!(validate_name("orders-v2").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "-flag", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(validate_trust_domain("gatehouse.local").is_ok());
        assert!(validate_trust_domain("Gatehouse.local").is_err());
    }
}
