//! Gatehouse internal gateway: routing, discovery, balancing and orchestration inside the cluster.
//!
//! The binary is this library plus a thin `main.rs`; tests start [`run`] in-process on port 0.
//! It runs the shared proxy core of `gatehouse-common` with its own [`InternalExtension`]: the
//! `internal:` config section and the route handlers the orchestration features plug in as:
//! `aggregate` and `proxy` (shaping, the response cache, XML; docs/orchestration.md),
//! `envelope`, and REST ↔ gRPC transcoding: `rest_to_grpc`, `grpc_to_rest`, `openapi`
//! (docs/transcoding.md); and the event-driven pattern: `publish`, `job_status`,
//! `event_stream` (docs/events.md).

pub mod aggregate;
pub mod answer;
pub mod cache;
pub mod envelope;
pub mod events;
pub mod fetch;
pub mod proxy;
pub mod settings;
pub mod shape;
pub mod transcode;
pub mod xml;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gatehouse_common::config::{ConfigError, Loaded};
use gatehouse_common::handler::{HandlerKind, Handlers};
use gatehouse_common::runtime::{Extension, Running, StartError};
use gatehouse_common::settings::ProxySettings;
use gatehouse_common::tier::{Tier, TierBuild, TierPlan};

use cache::{Store, StoreSettings};
use events::broker::Broker;
use events::settings::EventSettings;
use tokio_util::sync::CancellationToken;

/// The binary's name, used in logs and `/config`.
pub const BINARY: &str = "gatehouse-internal";

const ABOUT: &str = "Gatehouse internal gateway: routing, discovery, balancing and orchestration inside the cluster.";

/// The internal gateway's part of the proxy core: its section and its route handlers.
#[derive(Debug, Default)]
pub struct InternalExtension {
    /// The response cache, kept across reloads (its entries stay) until `internal.cache`
    /// changes its size.
    store: Mutex<Option<Arc<Store>>>,
    /// The event broker connection, kept across reloads until `internal.events` changes.
    broker: Arc<Mutex<Option<Arc<Broker>>>>,
    /// Cancelled when the gateway drains: event streams end.
    drain: CancellationToken,
    /// The broker was ready once: readiness no longer waits for it.
    ever_ready: Arc<std::sync::atomic::AtomicBool>,
}

impl InternalExtension {
    /// The store for `settings`: the current one when its budget is unchanged.
    fn store(&self, settings: &StoreSettings) -> Arc<Store> {
        let mut current = self.store.lock().unwrap_or_else(|e| e.into_inner());
        match &*current {
            Some(store) if store.max_bytes() == settings.max_bytes.get() => store.clone(),
            _ => {
                let store = Arc::new(Store::new(settings));
                *current = Some(store.clone());
                store
            }
        }
    }
}

impl InternalExtension {
    /// The broker for `settings`: the current one when they are unchanged.
    fn broker(&self, settings: &EventSettings) -> Result<Arc<Broker>, (String, String)> {
        let mut current = self.broker.lock().unwrap_or_else(|e| e.into_inner());
        match &*current {
            Some(broker) if broker.settings() == settings => Ok(broker.clone()),
            _ => {
                let broker = Broker::start(settings, BINARY)?;
                *current = Some(broker.clone());
                Ok(broker)
            }
        }
    }
}

impl Tier for InternalExtension {
    fn section(&self) -> Option<&'static str> {
        Some("internal")
    }

    fn build(&self, cx: &TierBuild<'_>) -> Result<TierPlan, ConfigError> {
        let section =
            gatehouse_common::config::section::<settings::InternalSettings>(cx.source, "internal")?
                .unwrap_or_default();
        if section.max_handler_body_bytes.get() == 0 {
            return Err(cx.source.error_at(
                "internal.max_handler_body_bytes",
                "must be at least 1 byte (every answer a handler reads would be refused)",
            ));
        }
        if let Err(e) = section.cache.validate() {
            return Err(cx
                .source
                .error_at(&format!("internal.cache.{}", e.key), e.message));
        }
        // Compiled at every load: a reload that changes a `.proto` changes the types, and one
        // that breaks it is refused with the file, line and column while the old plan serves.
        let base_dir = cx.source.file.parent().unwrap_or(Path::new(""));
        let descriptors = transcode::descriptors::compile(&section.descriptors, base_dir)
            .map_err(|e| cx.source.error_at(&e.key(), e.to_string()))?;
        // Shared by the transcoding kinds, which take their services' bindings from it.
        let pool = Arc::new(descriptors);
        let max_body_bytes = section.max_handler_body_bytes.get();
        let store = self.store(&section.cache);
        if let Err((key, message)) = section.events.validate() {
            return Err(cx
                .source
                .error_at(&format!("internal.events.{key}"), message));
        }
        let broker = self.broker(&section.events).map_err(|(key, message)| {
            cx.source
                .error_at(&format!("internal.events.{key}"), message)
        })?;
        let kinds: [Arc<dyn HandlerKind>; 9] = [
            Arc::new(envelope::Envelope { max_body_bytes }),
            Arc::new(aggregate::Aggregate {
                max_body_bytes,
                store: store.clone(),
            }),
            Arc::new(proxy::Proxy {
                max_body_bytes,
                store,
            }),
            Arc::new(transcode::rest_to_grpc::RestToGrpc {
                pool: pool.clone(),
                max_body_bytes,
            }),
            Arc::new(transcode::grpc_to_rest::GrpcToRest {
                pool: pool.clone(),
                max_body_bytes,
            }),
            Arc::new(transcode::openapi::OpenApi { pool }),
            Arc::new(events::publish::Publish {
                broker: broker.clone(),
            }),
            Arc::new(events::job::JobStatus {
                broker: broker.clone(),
            }),
            Arc::new(events::sse::EventStream {
                broker: broker.clone(),
                drain: self.drain.clone(),
            }),
        ];
        // Wait for the broker at start when it is configured (see `Broker::is_ready`). Once
        // ready, a reload that changes the broker does not make the gateway unready again:
        // that would take every route away over an event setting.
        let ever_ready = self.ever_ready.clone();
        let ready: Option<gatehouse_common::tier::ReadyCheck> =
            section.events.configured().then(|| {
                let broker = broker.clone();
                Arc::new(move || {
                    if broker.is_ready() {
                        ever_ready.store(true, std::sync::atomic::Ordering::Relaxed);
                        return true;
                    }
                    ever_ready.load(std::sync::atomic::Ordering::Relaxed)
                }) as gatehouse_common::tier::ReadyCheck
            });
        Ok(TierPlan {
            filter: None,
            handlers: Handlers::new(kinds),
            section: serde_json::to_value(&section).ok().map(|v| ("internal", v)),
            ready,
        })
    }
}

impl Extension for InternalExtension {
    fn started<'a>(&'a self, running: &'a Running) -> gatehouse_common::runtime::StartedFuture<'a> {
        let drain = self.drain.clone();
        let stop = running.shutdown_token();
        let metrics = running.shared().metrics.clone();
        let broker = self.broker.clone();
        tokio::spawn(async move {
            // The connection gauge, polled: the broker is replaced by reloads that change it.
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = every.tick() => {}
                }
                let current = broker.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let connected = current.is_some_and(|b| b.is_connected());
                metrics.events.broker_connected.set(i64::from(connected));
            }
            // Event streams end at once: they never finish by themselves.
            drain.cancel();
        });
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Starts serving `config`; returns once every listener is bound.
pub async fn run(
    config: Loaded<ProxySettings>,
    path: Option<PathBuf>,
) -> Result<Running, StartError> {
    gatehouse_common::runtime::run_with(
        BINARY,
        config,
        path,
        Arc::new(InternalExtension::default()),
    )
    .await
}

/// The process entry point: command line, config, signals, exit code.
pub fn main() -> std::process::ExitCode {
    gatehouse_common::cli::main_with(BINARY, ABOUT, Arc::new(InternalExtension::default()))
}
