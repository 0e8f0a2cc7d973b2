//! Discovery config as written in YAML (`static`, `dns`, `dns_srv`), and its validation.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{ConfigError, Duration, Source};

/// The smallest `refresh` accepted, and the floor of a TTL-driven re-resolve interval.
pub(super) const MIN_REFRESH: Duration = Duration::from_secs(1);

/// Where a service's endpoints come from; externally tagged in YAML:
///
/// ```yaml
/// static: ["127.0.0.1:80", { address: "127.0.0.1:81", weight: 2 }]
/// dns: { name: orders.mesh, port: 8080, refresh: 30s }
/// dns_srv: { name: _http._tcp.orders.mesh, refresh: 30s }   # or: dns_srv: _http._tcp.orders.mesh
/// ```
///
/// (Written by hand: the YAML library reads externally tagged enums only from `!tags`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoverySettings {
    /// A fixed list of addresses.
    Static(Vec<EndpointSettings>),
    /// A and AAAA records of a name, all on one configured port.
    Dns(DnsSettings),
    /// SRV records: each target's addresses, with the record's port and weight.
    DnsSrv(DnsSrvSettings),
}

/// The keys of [`DiscoverySettings`].
const KIND_KEYS: &[&str] = &["static", "dns", "dns_srv"];

/// A key of [`DiscoverySettings`], checked while it is read (as derived structs check
/// their fields) so that an unknown key's error carries its key path.
enum Kind {
    Static,
    Dns,
    DnsSrv,
}

impl Kind {
    fn key(&self) -> &'static str {
        match self {
            Kind::Static => "static",
            Kind::Dns => "dns",
            Kind::DnsSrv => "dns_srv",
        }
    }
}

/// Reads a key of [`DiscoverySettings`]; after `first`, any key is an error.
struct KindSeed {
    first: Option<&'static str>,
}

impl<'de> DeserializeSeed<'de> for KindSeed {
    type Value = Kind;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Kind, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KindSeed {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "one of {KINDS}")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Kind, E> {
        if let Some(first) = self.first {
            let message = format!("`{key}` next to `{first}`: give only one of {KINDS}");
            return Err(E::custom(message));
        }
        match key {
            "static" => Ok(Kind::Static),
            "dns" => Ok(Kind::Dns),
            "dns_srv" => Ok(Kind::DnsSrv),
            _ => Err(E::unknown_variant(key, KIND_KEYS)),
        }
    }
}

const KINDS: &str = "`static`, `dns` or `dns_srv`";

impl<'de> Deserialize<'de> for DiscoverySettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KindVisitor;

        impl<'de> Visitor<'de> for KindVisitor {
            type Value = DiscoverySettings;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a mapping with one key: {KINDS}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(kind) = map.next_key_seed(KindSeed { first: None })? else {
                    return Err(de::Error::custom(format!("expected one of {KINDS}")));
                };
                let settings = match kind {
                    Kind::Static => DiscoverySettings::Static(map.next_value()?),
                    Kind::Dns => DiscoverySettings::Dns(map.next_value()?),
                    Kind::DnsSrv => DiscoverySettings::DnsSrv(map.next_value()?),
                };
                let first = Some(kind.key());
                map.next_key_seed(KindSeed { first })?;
                Ok(settings)
            }
        }

        deserializer.deserialize_map(KindVisitor)
    }
}

impl Serialize for DiscoverySettings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            DiscoverySettings::Static(endpoints) => map.serialize_entry("static", endpoints)?,
            DiscoverySettings::Dns(dns) => map.serialize_entry("dns", dns)?,
            DiscoverySettings::DnsSrv(srv) => map.serialize_entry("dns_srv", srv)?,
        }
        map.end()
    }
}

/// One static endpoint: `"127.0.0.1:80"` (weight 1) or `{ address: "127.0.0.1:81", weight: 2 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EndpointSettings {
    /// An address of weight 1.
    Plain(SocketAddr),
    /// An address and its weight (at least 1). In the mapping form `weight` defaults to 1.
    Weighted {
        /// The endpoint's address.
        address: SocketAddr,
        /// Its share of traffic relative to the others.
        weight: u32,
    },
}

impl EndpointSettings {
    /// The endpoint's address.
    pub fn address(&self) -> SocketAddr {
        match self {
            EndpointSettings::Plain(address) | EndpointSettings::Weighted { address, .. } => {
                *address
            }
        }
    }

    /// The endpoint's weight; 1 for the plain form.
    pub fn weight(&self) -> u32 {
        match self {
            EndpointSettings::Plain(_) => 1,
            EndpointSettings::Weighted { weight, .. } => *weight,
        }
    }
}

/// `dns: { name, port, refresh }`: A and AAAA records of `name`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// The name to resolve; a short name goes through the search domains of
    /// `/etc/resolv.conf`, as Docker's and Kubernetes' DNS expect.
    pub name: String,
    /// The port of every resolved address.
    pub port: u16,
    /// The longest time between two resolutions. Default: none, the records' TTL decides
    /// (clamped to 1s..=300s); when set, the smaller of the two applies. At least 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Duration>,
}

/// `dns_srv: { name, refresh }`, or just `dns_srv: NAME`: SRV records of `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsSrvSettings {
    /// The SRV name, e.g. `_http._tcp.orders.mesh`.
    pub name: String,
    /// As [`DnsSettings::refresh`]. Default: none, the TTL decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Duration>,
}

/// The mapping form of [`DnsSrvSettings`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DnsSrvMap {
    name: String,
    #[serde(default)]
    refresh: Option<Duration>,
}

impl<'de> Deserialize<'de> for DnsSrvSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SrvVisitor;

        impl<'de> Visitor<'de> for SrvVisitor {
            type Value = DnsSrvSettings;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an SRV name such as `_http._tcp.orders.mesh`, or a mapping with `name` and `refresh`")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(DnsSrvSettings {
                    name: name.to_owned(),
                    refresh: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let DnsSrvMap { name, refresh } =
                    DnsSrvMap::deserialize(MapAccessDeserializer::new(map))?;
                Ok(DnsSrvSettings { name, refresh })
            }
        }

        deserializer.deserialize_any(SrvVisitor)
    }
}

/// The mapping form of [`EndpointSettings`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightedMap {
    address: SocketAddr,
    /// Default: 1.
    #[serde(default = "one")]
    weight: u32,
}

fn one() -> u32 {
    1
}

impl<'de> Deserialize<'de> for EndpointSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EndpointVisitor;

        impl<'de> Visitor<'de> for EndpointVisitor {
            type Value = EndpointSettings;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an address such as `127.0.0.1:8080`, or a mapping with `address` and `weight`",
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                text.parse().map(EndpointSettings::Plain).map_err(|_| {
                    E::custom(format!(
                        "invalid endpoint address `{text}`: expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"
                    ))
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let WeightedMap { address, weight } =
                    WeightedMap::deserialize(MapAccessDeserializer::new(map))?;
                Ok(EndpointSettings::Weighted { address, weight })
            }
        }

        deserializer.deserialize_any(EndpointVisitor)
    }
}

/// Checks what serde cannot: a non-empty static list of distinct addresses with weights and
/// ports above 0, a valid DNS name, a non-zero port, `refresh` of at least 1s.
///
/// `key_path_prefix` is where the settings sit in the file (e.g. `services.orders`), so
/// that errors point at `services.orders.static[1].weight`; empty at the document root.
pub fn validate(
    settings: &DiscoverySettings,
    key_path_prefix: &str,
    source: &Source,
) -> Result<(), ConfigError> {
    let at = |rest: &str| {
        if key_path_prefix.is_empty() {
            rest.to_owned()
        } else {
            format!("{key_path_prefix}.{rest}")
        }
    };
    match settings {
        DiscoverySettings::Static(endpoints) => {
            if endpoints.is_empty() {
                return Err(source.error_at(&at("static"), "at least one endpoint is required"));
            }
            let mut seen = HashSet::new();
            for (i, endpoint) in endpoints.iter().enumerate() {
                let address = endpoint.address();
                if address.port() == 0 {
                    let message = format!("endpoint `{address}` has port 0");
                    return Err(source.error_at(&at(&format!("static[{i}]")), message));
                }
                if endpoint.weight() == 0 {
                    let key = at(&format!("static[{i}].weight"));
                    return Err(source.error_at(&key, "weight must be at least 1"));
                }
                if !seen.insert(address) {
                    let message = format!("endpoint `{address}` is listed twice");
                    return Err(source.error_at(&at(&format!("static[{i}]")), message));
                }
            }
            Ok(())
        }
        DiscoverySettings::Dns(dns) => {
            check_name(&dns.name, &at("dns.name"), source)?;
            if dns.port == 0 {
                return Err(source.error_at(&at("dns.port"), "port must be between 1 and 65535"));
            }
            check_refresh(dns.refresh, &at("dns.refresh"), source)
        }
        DiscoverySettings::DnsSrv(srv) => {
            check_name(&srv.name, &at("dns_srv.name"), source)?;
            check_refresh(srv.refresh, &at("dns_srv.refresh"), source)
        }
    }
}

fn check_name(name: &str, key_path: &str, source: &Source) -> Result<(), ConfigError> {
    if name.trim().is_empty() {
        return Err(source.error_at(key_path, "the DNS name must not be empty"));
    }
    if name.parse::<std::net::IpAddr>().is_err()
        && let Err(error) = hickory_resolver::proto::rr::Name::from_utf8(name)
    {
        let message = format!("`{name}` is not a valid DNS name: {error}");
        return Err(source.error_at(key_path, message));
    }
    Ok(())
}

fn check_refresh(
    refresh: Option<Duration>,
    key_path: &str,
    source: &Source,
) -> Result<(), ConfigError> {
    match refresh {
        Some(refresh) if refresh < MIN_REFRESH => {
            Err(source.error_at(key_path, "refresh must be at least 1s"))
        }
        _ => Ok(()),
    }
}
