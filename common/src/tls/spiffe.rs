//! SPIFFE IDs (`spiffe://<trust-domain>/<path>`): parsing by the SPIFFE ID rules, extraction from
//! a certificate's single URI SAN, and the authorization policy (exact IDs and `/*` wildcards).

use std::fmt;
use std::str::FromStr;

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use super::{Reason, TlsError};

/// The trust domain used when a listener sets `client_ca` without `trust_domain`.
pub const DEFAULT_TRUST_DOMAIN: &str = "gatehouse.local";

const SCHEME: &str = "spiffe://";
/// Longest SPIFFE ID accepted (the URI SAN limit of the X.509-SVID spec).
const MAX_LEN: usize = 2048;

/// A valid SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    /// The whole ID, `spiffe://td/path`.
    id: String,
    /// Where the path starts in `id` (equal to `id.len()` for a trust domain ID).
    path_at: usize,
}

/// Why a string is not a SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SPIFFE ID `{id}`: {why}")]
pub struct SpiffeIdError {
    pub id: String,
    pub why: &'static str,
}

impl SpiffeId {
    /// Parses `spiffe://<trust-domain>[/<segment>...]`: lowercase trust domain of letters,
    /// digits, `.`, `-`, `_`; path segments of letters, digits, `.`, `-`, `_`, none empty, `.`
    /// or `..`; no port, user info, query or fragment.
    pub fn parse(id: &str) -> Result<SpiffeId, SpiffeIdError> {
        let bad = |why| SpiffeIdError {
            id: id.to_owned(),
            why,
        };
        if id.len() > MAX_LEN {
            return Err(bad("longer than 2048 bytes"));
        }
        let rest = id
            .strip_prefix(SCHEME)
            .ok_or(bad("must start with `spiffe://`"))?;
        let (td, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        validate_trust_domain(td).map_err(bad)?;
        if !path.is_empty() {
            for seg in path[1..].split('/') {
                if seg.is_empty() {
                    return Err(bad("empty path segment"));
                }
                if seg == "." || seg == ".." {
                    return Err(bad("`.` and `..` segments are not allowed"));
                }
                if !seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                {
                    return Err(bad(
                        "path segments allow only letters, digits, `.`, `-` and `_`",
                    ));
                }
            }
        }
        Ok(SpiffeId {
            id: id.to_owned(),
            path_at: SCHEME.len() + td.len(),
        })
    }

    /// The SPIFFE ID of a workload certificate: exactly one URI SAN, a valid `spiffe://` ID
    /// with a path (a bare trust domain ID names no workload).
    pub fn from_cert(cert: &CertificateDer<'_>) -> Result<SpiffeId, Reason> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
            .map_err(|_| Reason::BadCertificate)?;
        let san = parsed
            .subject_alternative_name()
            .map_err(|_| Reason::BadCertificate)?;
        let mut uris = san.iter().flat_map(|s| {
            s.value.general_names.iter().filter_map(|n| match n {
                GeneralName::URI(u) => Some(*u),
                _ => None,
            })
        });
        let uri = uris.next().ok_or(Reason::NoSpiffeId)?;
        if uris.next().is_some() {
            return Err(Reason::MultipleUriSans);
        }
        if !uri.starts_with(SCHEME) {
            return Err(Reason::NoSpiffeId);
        }
        let id = SpiffeId::parse(uri).map_err(|_| Reason::InvalidSpiffeId)?;
        if id.path().is_empty() {
            return Err(Reason::InvalidSpiffeId);
        }
        Ok(id)
    }

    /// The trust domain, e.g. `gatehouse.local`.
    pub fn trust_domain(&self) -> &str {
        &self.id[SCHEME.len()..self.path_at]
    }

    /// The path, e.g. `/service/orders` (empty for a trust domain ID).
    pub fn path(&self) -> &str {
        &self.id[self.path_at..]
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(s)
    }
}

/// Checks a trust domain name: 1 to 255 lowercase letters, digits, `.`, `-`, `_`.
pub fn validate_trust_domain(td: &str) -> Result<(), &'static str> {
    if td.is_empty() || td.len() > 255 {
        return Err("the trust domain must have 1 to 255 characters");
    }
    if !td
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
    {
        return Err("the trust domain allows only lowercase letters, digits, `.`, `-` and `_`");
    }
    Ok(())
}

/// One entry of an `allow` list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// This ID exactly.
    Exact(String),
    /// Every ID under this prefix (`spiffe://td/service/` from `spiffe://td/service/*`): one
    /// segment or more.
    Under(String),
}

/// Which peer SPIFFE IDs are admitted: those of one trust domain, optionally narrowed by an
/// allow list of exact IDs and `spiffe://td/path/*` wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    trust_domain: String,
    /// `None`: the whole trust domain.
    allow: Option<Vec<Pattern>>,
}

impl Policy {
    /// Every workload of `trust_domain`.
    pub fn trust_domain(trust_domain: &str) -> Result<Policy, TlsError> {
        Policy::new(trust_domain, None)
    }

    /// Validates a policy. Each `allow` entry is an ID of `trust_domain` or such an ID followed
    /// by `/*`; errors name the entry (`allow[i]`). An empty list is refused (it would admit
    /// nobody; leave `allow` out to admit the whole trust domain).
    pub fn new(trust_domain: &str, allow: Option<&[String]>) -> Result<Policy, TlsError> {
        validate_trust_domain(trust_domain)
            .map_err(|why| TlsError::setting("trust_domain", format!("`{trust_domain}`: {why}")))?;
        let allow = match allow {
            None => None,
            Some([]) => {
                return Err(TlsError::setting(
                    "allow",
                    "an empty list admits nobody; leave `allow` out to admit the whole trust domain",
                ));
            }
            Some(list) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, entry)| {
                        pattern(trust_domain, entry)
                            .map_err(|m| TlsError::setting(format!("allow[{i}]"), m))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Policy {
            trust_domain: trust_domain.to_owned(),
            allow,
        })
    }

    /// The trust domain peers must belong to.
    pub fn domain(&self) -> &str {
        &self.trust_domain
    }

    /// Admits `id`, or says why not: [`Reason::ForeignTrustDomain`] or
    /// [`Reason::IdentityNotAllowed`].
    pub fn check(&self, id: &SpiffeId) -> Result<(), Reason> {
        if id.trust_domain() != self.trust_domain {
            return Err(Reason::ForeignTrustDomain);
        }
        let Some(allow) = &self.allow else {
            return Ok(());
        };
        let admitted = allow.iter().any(|p| match p {
            Pattern::Exact(want) => id.as_str() == want,
            Pattern::Under(prefix) => id.as_str().starts_with(prefix.as_str()),
        });
        if admitted {
            Ok(())
        } else {
            Err(Reason::IdentityNotAllowed)
        }
    }
}

fn pattern(trust_domain: &str, entry: &str) -> Result<Pattern, String> {
    let (id, wildcard) = match entry.strip_suffix("/*") {
        Some(base) => (base, true),
        None => (entry, false),
    };
    let id = SpiffeId::parse(id).map_err(|e| e.to_string())?;
    if id.trust_domain() != trust_domain {
        return Err(format!(
            "`{entry}` is outside the trust domain `{trust_domain}` and would never match"
        ));
    }
    if wildcard {
        Ok(Pattern::Under(format!("{id}/")))
    } else if id.path().is_empty() {
        Err(format!(
            "`{entry}` names no workload; use `{entry}/*` for the whole trust domain"
        ))
    } else {
        Ok(Pattern::Exact(id.to_string()))
    }
}

#[cfg(test)]
mod tests;
