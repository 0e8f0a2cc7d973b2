//! The connection to the event broker (NATS JetStream): made in the background, kept across
//! reloads while `internal.events` is unchanged, reconnecting with backoff, and the streams and
//! buckets of the config made sure of once connected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use async_nats::jetstream::{self, kv, stream};
use async_nats::{Client, ConnectOptions, ServerAddr};
use gatehouse_common::error::ProxyError;
use tokio_util::sync::CancellationToken;

use super::settings::EventSettings;

/// How long a client is told to wait after the broker refused or was unreachable.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The broker connection of one `internal.events` setting.
#[derive(Debug)]
pub struct Broker {
    settings: EventSettings,
    shared: Arc<Shared>,
    /// Stops the provisioning task when a reload replaces this broker.
    stop: CancellationToken,
}

#[derive(Debug, Default)]
struct Shared {
    /// Set as soon as the client exists (it connects, and reconnects, by itself).
    client: ArcSwapOption<Connection>,
    /// The configured streams and buckets exist: `/readyz` waits for this.
    provisioned: AtomicBool,
    /// Key-value handles by bucket, made once (opening one asks the broker).
    buckets: Mutex<HashMap<String, kv::Store>>,
}

#[derive(Debug)]
struct Connection {
    client: Client,
    js: jetstream::Context,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Broker {
    /// Starts connecting to the broker of `settings` (nothing when none is configured). The
    /// TLS files are read now, so a bad one refuses the config: (key, message) on error.
    pub fn start(settings: &EventSettings, binary: &str) -> Result<Arc<Broker>, (String, String)> {
        let broker = Arc::new(Broker {
            settings: settings.clone(),
            shared: Arc::new(Shared::default()),
            stop: CancellationToken::new(),
        });
        if !settings.configured() {
            return Ok(broker);
        }
        let options = connect_options(settings, binary)?;
        let servers: Vec<ServerAddr> = settings.servers().filter_map(|s| s.parse().ok()).collect();
        let shared = broker.shared.clone();
        let stop = broker.stop.clone();
        let wanted = settings.clone();
        tokio::spawn(async move {
            // With `retry_on_initial_connect` this returns at once; the client connects and
            // reconnects in its own task.
            let client = match options.connect(servers).await {
                Ok(client) => client,
                Err(e) => {
                    tracing::error!(error = %e, "event broker: cannot start its client");
                    return;
                }
            };
            let js = jetstream::new(client.clone());
            shared.client.store(Some(Arc::new(Connection {
                client,
                js: js.clone(),
            })));
            let mut delay = Duration::from_millis(100);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    done = provision(&js, &wanted) => match done {
                        Ok(()) => break,
                        Err(e) => tracing::warn!(error = %e, retry_in = ?delay, "event broker: streams and buckets not ready yet"),
                    },
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            tracing::info!(
                streams = wanted.streams.len(),
                buckets = wanted.buckets.len(),
                "event broker: connected, streams and buckets ready"
            );
            shared.provisioned.store(true, Ordering::Release);
        });
        Ok(broker)
    }

    /// The settings this broker was started with (a reload keeps it when they are unchanged).
    pub fn settings(&self) -> &EventSettings {
        &self.settings
    }

    /// Whether the broker has been reached once and the configured streams and buckets exist.
    /// Readiness waits for it at start only: a later outage answers 503 on the event routes
    /// and leaves every other route (and the gateway's readiness) alone.
    pub fn is_ready(&self) -> bool {
        !self.settings.configured() || self.shared.provisioned.load(Ordering::Acquire)
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.shared.client.load().as_ref().is_some_and(|c| {
            c.client.connection_state() == async_nats::connection::State::Connected
        })
    }

    /// The JetStream context while connected; otherwise the 503 to answer.
    pub fn jetstream(&self) -> Result<jetstream::Context, ProxyError> {
        Ok(self.connection()?.js.clone())
    }

    /// The client while connected (subscriptions, inboxes).
    pub fn client(&self) -> Result<Client, ProxyError> {
        Ok(self.connection()?.client.clone())
    }

    fn connection(&self) -> Result<Arc<Connection>, ProxyError> {
        if !self.settings.configured() {
            return Err(unavailable(
                false,
                "no event broker is configured (internal.events.url)",
            ));
        }
        match self.shared.client.load_full() {
            Some(c) if c.client.connection_state() == async_nats::connection::State::Connected => {
                Ok(c)
            }
            _ => Err(unavailable(true, "the event broker is not connected")),
        }
    }

    /// The handle of key-value bucket `name`, opened once.
    /// Not connected: the 503 at once, not after the caller's timeout.
    pub async fn bucket(&self, name: &str) -> Result<kv::Store, ProxyError> {
        let js = self.jetstream()?;
        if let Some(store) = self.lock_buckets().get(name) {
            return Ok(store.clone());
        }
        let store = js
            .get_key_value(name)
            .await
            .map_err(|e| unavailable(true, format!("key-value bucket `{name}`: {e}")))?;
        self.lock_buckets().insert(name.to_owned(), store.clone());
        Ok(store)
    }

    fn lock_buckets(&self) -> std::sync::MutexGuard<'_, HashMap<String, kv::Store>> {
        self.shared
            .buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// The 503 of an event route.
pub fn unavailable(configured: bool, reason: impl Into<String>) -> ProxyError {
    ProxyError::BrokerUnavailable {
        configured,
        reason: reason.into(),
        retry_after: RETRY_AFTER,
    }
}

fn connect_options(
    settings: &EventSettings,
    binary: &str,
) -> Result<ConnectOptions, (String, String)> {
    let mut options = ConnectOptions::new()
        .name(binary)
        .retry_on_initial_connect()
        .connection_timeout(settings.connect_timeout())
        // Quick to come back after a broker restart, at most one attempt per 2s after that.
        .reconnect_delay_callback(|attempts| {
            let exp = u32::try_from(attempts.min(5)).unwrap_or(5);
            Duration::from_millis(100 * 2u64.pow(exp)).min(Duration::from_secs(2))
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("event broker: connected"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("event broker: disconnected; reconnecting")
                }
                other => tracing::warn!(event = %other, "event broker"),
            }
        });
    if let Some(user) = &settings.user {
        let password = settings
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        options = options.user_and_password(user.clone(), password);
    }
    if let Some(tls) = &settings.tls {
        let identity = tls.cert.as_deref().zip(tls.key.as_deref());
        let config = gatehouse_common::tls::client_config(Some(&tls.ca), identity)
            .map_err(|e| ("tls".to_owned(), e.to_string()))?;
        options = options.require_tls(true).tls_client_config(config);
    }
    Ok(options)
}

/// Creates the configured streams and buckets that do not exist yet.
async fn provision(js: &jetstream::Context, settings: &EventSettings) -> Result<(), String> {
    for s in &settings.streams {
        let config = stream::Config {
            name: s.name.clone(),
            subjects: s.subjects.clone(),
            duplicate_window: s.duplicate_window.get(),
            max_age: s.max_age.get(),
            storage: stream::StorageType::File,
            ..Default::default()
        };
        js.get_or_create_stream(config)
            .await
            .map_err(|e| format!("stream `{}`: {e}", s.name))?;
    }
    for b in &settings.buckets {
        // The bucket's stream, as the KV convention lays it out. Made directly: the client's
        // `create_key_value` first asks for account info in a shape nats-server 2.9 (Debian's)
        // does not answer, and fails.
        let config = stream::Config {
            name: format!("KV_{}", b.name),
            subjects: vec![format!("$KV.{}.>", b.name)],
            max_messages_per_subject: 1,
            max_age: b.ttl.get(),
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        };
        js.get_or_create_stream(config)
            .await
            .map_err(|e| format!("bucket `{}`: {e}", b.name))?;
    }
    Ok(())
}
