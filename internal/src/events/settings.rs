//! The `internal.events` section: the NATS JetStream broker the event routes use, and the
//! streams and key-value buckets the gateway makes sure exist.

use std::path::PathBuf;

use gatehouse_common::config::{Duration, Secret};
use serde::{Deserialize, Serialize};

/// How the internal gateway reaches its event broker (docs/events.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EventSettings {
    /// `nats://host:port` or `tls://host:port`, several comma-separated. Empty (the default,
    /// or `${NATS_URL:-}` unset): no broker; event routes answer 503 `broker-unavailable`.
    pub url: String,
    /// TLS to the broker: `ca` to trust (required for TLS), optionally `cert`/`key` to present.
    pub tls: Option<BrokerTls>,
    /// The NATS user of this gateway and its password (`${VAR}`; never logged).
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// How long one connection attempt may take. Default 2s.
    pub connect_timeout: Option<Duration>,
    /// Streams created when missing, once connected (an existing one is left as it is).
    pub streams: Vec<StreamSettings>,
    /// Key-value buckets (job states) created when missing, once connected.
    pub buckets: Vec<BucketSettings>,
}

impl EventSettings {
    /// Whether a broker is configured at all.
    pub fn configured(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The configured servers, one per comma-separated entry.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.url.split(',').map(str::trim).filter(|s| !s.is_empty())
    }

    pub fn connect_timeout(&self) -> std::time::Duration {
        self.connect_timeout
            .map_or(std::time::Duration::from_secs(2), |d| d.get())
    }

    /// The first setting that cannot work, as (key under `internal.events`, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, server) in self.servers().enumerate() {
            if server.parse::<async_nats::ServerAddr>().is_err() {
                return Err((
                    "url".into(),
                    format!(
                        "server {} `{server}` is not a NATS URL (nats://host:port or tls://host:port)",
                        i + 1
                    ),
                ));
            }
        }
        if self.password.is_some() && self.user.is_none() {
            return Err(("password".into(), "`password` needs its `user`".into()));
        }
        if let Some(tls) = &self.tls
            && tls.cert.is_some() != tls.key.is_some()
        {
            return Err(("tls".into(), "`cert` and `key` go together".into()));
        }
        for (i, s) in self.streams.iter().enumerate() {
            if !is_name(&s.name) {
                return Err((format!("streams[{i}].name"), NAME_RULE.into()));
            }
            if s.subjects.is_empty() {
                return Err((
                    format!("streams[{i}].subjects"),
                    "a stream needs at least one subject".into(),
                ));
            }
        }
        for (i, b) in self.buckets.iter().enumerate() {
            if !is_name(&b.name) {
                return Err((format!("buckets[{i}].name"), NAME_RULE.into()));
            }
        }
        Ok(())
    }
}

const NAME_RULE: &str = "letters, digits, `-` and `_` only (a JetStream name)";

/// A stream or bucket name JetStream takes.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// TLS to the broker.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrokerTls {
    pub ca: PathBuf,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// A stream the gateway publishes to or reads from.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    pub name: String,
    pub subjects: Vec<String>,
    /// How long a `Nats-Msg-Id` (a job id) is remembered to drop a repeated publish: the window
    /// in which the same `Idempotency-Key` answers the same job without running it twice.
    /// Default 2m.
    #[serde(default = "default_duplicate_window")]
    pub duplicate_window: Duration,
    /// How long messages are kept. Default 24h.
    #[serde(default = "default_max_age")]
    pub max_age: Duration,
}

/// A key-value bucket (job states).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BucketSettings {
    pub name: String,
    /// How long an entry is kept after its last write. Default 24h.
    #[serde(default = "default_max_age")]
    pub ttl: Duration,
}

fn default_duplicate_window() -> Duration {
    Duration::from(std::time::Duration::from_secs(120))
}

fn default_max_age() -> Duration {
    Duration::from(std::time::Duration::from_secs(24 * 3600))
}
