//! The Redis store of `shared: redis` limits: one GCRA script per check (EVALSHA; loaded
//! again by itself after a server restart), the server's clock, a short timeout. Whether the
//! store answers is logged and exported once per change, not once per request.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ClientTlsConfig, IntoConnectionInfo, TlsCertificates};

use super::Decision;
use crate::settings::RedisSettings;

/// While the store is down, one check per interval tries it again; the others decide at once
/// instead of each waiting for the timeout.
const PROBE_INTERVAL_MS: u64 = 500;
/// One connection attempt (TCP, TLS, AUTH) may take this long; checks meanwhile wait only for
/// their own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Unacknowledged writes for this long break the connection (TCP_USER_TIMEOUT), so a peer
/// that vanished is noticed in seconds, not after the kernel's ~15 minutes of retransmits.
#[cfg(target_os = "linux")]
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(2);

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// The series of shared limits (docs/edge.md lists them), registered once per process.
#[derive(Debug, Clone, Default)]
pub struct RateLimitMetrics {
    /// 1 while the store answers, by its URL (no series on an edge without one, so an alert
    /// on 0 fires only where Redis is configured).
    pub store_up: Family<StoreLabels, Gauge>,
    /// Checks of shared limits decided without the store, by limit and by what decided.
    pub store_fallbacks: Family<FallbackLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    /// `edge.redis.url` (never holds a password: refused at load).
    pub store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FallbackLabels {
    /// A limit's name, from config (bounded).
    pub limit: String,
    /// `local` or `deny` (`on_store_failure`).
    pub decided_by: &'static str,
}

impl RateLimitMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "rate_limit_store_up",
            "1 while the store of shared rate limits (Redis) answers, by its URL",
            self.store_up.clone(),
        );
        r.register(
            "rate_limit_store_fallbacks",
            "Checks of shared rate limits decided without the store (it failed, was slow or \
             down), by limit and by what decided (local bucket or deny)",
            self.store_fallbacks.clone(),
        );
    }
}

/// Why a check did not get the store's answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the store is down (tried again every {PROBE_INTERVAL_MS} ms)")]
    Down,
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
}

/// A connection to one Redis server, shared by every shared limit of the edge.
pub struct RedisStore {
    settings: RedisSettings,
    client: Client,
    /// Replaced after a failure: a manager only reconnects by itself after I/O errors, not
    /// after a refused AUTH, a READONLY replica behind a moved DNS name, or a silent peer.
    conn: ArcSwapOption<ConnectionManager>,
    timeout: Duration,
    /// UNKNOWN, UP or DOWN; read on every check, changed under `changing`.
    state: AtomicU8,
    changing: Mutex<()>,
    up: (Family<StoreLabels, Gauge>, StoreLabels),
    epoch: Instant,
    /// While down: when (ms since `epoch`) a check may try the store again.
    retry_at: AtomicU64,
    script: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.settings.url)
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish()
    }
}

impl RedisStore {
    /// Checks the settings and makes the client; connects on first use. `Err` names the key
    /// under `edge.redis` at fault.
    pub fn new(
        s: &RedisSettings,
        metrics: &RateLimitMetrics,
    ) -> Result<Self, (&'static str, String)> {
        let url = s.url.trim();
        let shown = without_userinfo(url);
        let tls = match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("redis") => false,
            Some("rediss") => true,
            _ => {
                return Err((
                    "url",
                    format!(
                        "`{shown}` is not a Redis URL (redis://host:port or rediss://host:port)"
                    ),
                ));
            }
        };
        let info = url.into_connection_info();
        // Checked before a parse error is reported, so that no message quotes it.
        let password_in_url = userinfo(url).is_some_and(|u| u.contains(':'))
            || info
                .as_ref()
                .is_ok_and(|i| i.redis_settings().password().is_some());
        if password_in_url {
            return Err((
                "url",
                "no password in the URL (it would show in /config and logs): set \
                 `password: ${REDIS_PASSWORD}`"
                    .to_owned(),
            ));
        }
        let info = info.map_err(|_| ("url", format!("`{shown}` is not a valid Redis URL")))?;
        let mut redis = info.redis_settings().clone();
        if let Some(user) = &s.username {
            redis = redis.set_username(user);
        }
        if let Some(password) = &s.password {
            redis = redis.set_password(password.expose());
        }
        // Nagle off: one small command per check, latency is the point.
        let tcp = redis::io::tcp::TcpSettings::default().set_nodelay(true);
        #[cfg(target_os = "linux")]
        let tcp = tcp.set_user_timeout(TCP_USER_TIMEOUT);
        let info = info.set_redis_settings(redis).set_tcp_settings(tcp);
        if s.timeout.get().is_zero() {
            return Err(("timeout", "must be positive".to_owned()));
        }
        if s.replicas == 0 {
            return Err(("replicas", "at least 1".to_owned()));
        }
        // rustls inside the client takes the process-wide provider.
        gatehouse_common::tls::provider();
        let client = match &s.tls {
            None => Client::open(info),
            Some(_) if !tls => {
                return Err(("tls", "TLS settings need a rediss:// URL".to_owned()));
            }
            Some(t) => {
                let read = |p: &std::path::Path| {
                    std::fs::read(p)
                        .map_err(|e| ("tls", format!("cannot read {}: {e}", p.display())))
                };
                let client_tls = match (&t.cert, &t.key) {
                    (Some(cert), Some(key)) => Some(ClientTlsConfig {
                        client_cert: read(cert)?,
                        client_key: read(key)?,
                    }),
                    (None, None) => None,
                    _ => return Err(("tls", "`cert` and `key` go together".to_owned())),
                };
                let root_cert = t.ca.as_deref().map(read).transpose()?;
                Client::build_with_tls(
                    info,
                    TlsCertificates {
                        client_tls,
                        root_cert,
                    },
                )
            }
        }
        .map_err(|e| (if tls { "tls" } else { "url" }, e.to_string()))?;
        // The series appears with the first state change: none for a store no limit uses.
        let up = (
            metrics.store_up.clone(),
            StoreLabels {
                store: url.to_owned(),
            },
        );
        Ok(RedisStore {
            settings: s.clone(),
            client,
            conn: ArcSwapOption::empty(),
            timeout: s.timeout.get(),
            state: AtomicU8::new(UNKNOWN),
            changing: Mutex::new(()),
            up,
            epoch: Instant::now(),
            retry_at: AtomicU64::new(0),
            script: redis::Script::new(include_str!("gcra.lua")),
        })
    }

    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    /// Connects and loads the script now, so the first request does not pay for it; the
    /// outcome is logged like any state change. Needs a runtime.
    pub fn warm_up(self: &Arc<Self>) {
        let store = self.clone();
        tokio::spawn(async move {
            let loaded = async {
                let mut conn = store.connection()?;
                store.script.prepare_invoke().load_async(&mut conn).await
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, loaded).await {
                Ok(Ok(_)) => store.answered(),
                Ok(Err(e)) => store.failed(&StoreError::Redis(e)),
                Err(_) => store.failed(&StoreError::Timeout(CONNECT_TIMEOUT)),
            }
        });
    }

    fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(c) = &*self.conn.load() {
            return Ok(ConnectionManager::clone(c));
        }
        // No reconnect attempts of its own (their backoff would hold checks after a crash):
        // while Redis is down, checks decide without it and one of them tries again every
        // PROBE_INTERVAL_MS, with a new manager. No response timeout of its own either (its
        // default, 500 ms, would cap `timeout`).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None)
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        self.conn.store(Some(Arc::new(conn.clone())));
        Ok(conn)
    }

    /// Takes one token from `bucket` (a full key): `interval_us` per token (fractional: a
    /// rate of 300,000/s is not rounded to 333,333/s), `burst` at most.
    pub async fn take(
        &self,
        bucket: &str,
        interval_us: f64,
        burst: u64,
    ) -> Result<Decision, StoreError> {
        if !self.may_try() {
            return Err(StoreError::Down);
        }
        let call = async {
            let mut conn = self.connection()?;
            let mut invocation = self.script.key(bucket);
            invocation.arg(interval_us).arg(burst);
            type Reply = (i64, i64, i64, i64);
            match invocation.invoke_async::<Reply>(&mut conn).await {
                // The connection broke (a Redis restart): the manager reconnects at once, so
                // one more try within the same timeout usually succeeds. Had the first call
                // run before the break, the bucket loses a token: strict, never lenient.
                Err(e) if e.is_unrecoverable_error() => {
                    invocation.invoke_async::<Reply>(&mut conn).await
                }
                r => r,
            }
        };
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(StoreError::Redis(e)),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        };
        match result {
            Ok((allowed, remaining, until_full, until_token)) => {
                self.answered();
                let us = |v: i64| Duration::from_micros(v.max(0) as u64);
                Ok(Decision {
                    allowed: allowed == 1,
                    remaining: remaining.max(0) as u64,
                    reset: us(until_full),
                    retry_after: us(until_token),
                })
            }
            Err(e) => {
                self.failed(&e);
                Err(e)
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Up (or not known yet): every check tries. Down: one check per probe interval does.
    fn may_try(&self) -> bool {
        if self.state.load(Ordering::Relaxed) != DOWN {
            return true;
        }
        let now = self.now_ms();
        let at = self.retry_at.load(Ordering::Relaxed);
        now >= at
            && self
                .retry_at
                .compare_exchange(
                    at,
                    now + PROBE_INTERVAL_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn answered(&self) {
        if self.state.load(Ordering::Relaxed) == UP {
            return;
        }
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let was = self.state.swap(UP, Ordering::Relaxed);
        if was != UP {
            self.up.0.get_or_create(&self.up.1).set(1);
            match was {
                DOWN => tracing::info!(
                    url = %self.settings.url,
                    "rate-limit store answers again: shared limits count in Redis"
                ),
                _ => tracing::info!(url = %self.settings.url, "rate-limit store connected"),
            }
        }
    }

    fn failed(&self, e: &StoreError) {
        if matches!(e, StoreError::Down) {
            return;
        }
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        self.retry_at
            .store(self.now_ms() + PROBE_INTERVAL_MS, Ordering::Relaxed);
        // The next try starts from a new connection (see `conn`).
        self.conn.store(None);
        let was = self.state.swap(DOWN, Ordering::Relaxed);
        if was != DOWN {
            self.up.0.get_or_create(&self.up.1).set(0);
            tracing::warn!(
                url = %self.settings.url,
                error = %e,
                replicas = self.settings.replicas,
                "rate-limit store unavailable: shared limits decide per on_store_failure \
                 (local: this replica's share of the quota; deny: 503)"
            );
        }
    }
}

/// The `user:password` of `scheme://user:password@host/...`, if any.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    authority.rfind('@').map(|at| &authority[..at])
}

/// `url` without its `user:password@`, to quote it in an error.
fn without_userinfo(url: &str) -> String {
    match (userinfo(url), url.split_once("://")) {
        (Some(u), Some((scheme, rest))) => format!("{scheme}://{}", &rest[u.len() + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_userinfo;

    #[test]
    fn userinfo_is_not_quoted() {
        for (url, shown) in [
            ("redis://:pw@h:6379/0", "redis://h:6379/0"),
            ("rediss://u:p@ss@h", "rediss://h"),
            ("redis://h:6379", "redis://h:6379"),
            ("redis://h/a@b", "redis://h/a@b"),
            ("h:6379", "h:6379"),
        ] {
            assert_eq!(without_userinfo(url), shown, "{url}");
        }
    }
}
