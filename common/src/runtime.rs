//! Starting, reloading and stopping a binary: binds listeners and the admin server, swaps plans
//! on reload, drains on shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, Readiness};
use crate::config::{self, ConfigError, Loaded};
use crate::metrics::{Metrics, ReloadLabels};
use crate::plan::Plan;
use crate::proxy::Shared;
use crate::server::{self, ListenerHandle};
use crate::settings::ProxySettings;
use crate::tier::{NoTier, Tier};

/// A binary's part in the runtime: its [`Tier`] (section, request phases, route handlers),
/// plus what it starts itself once the TCP listeners are bound.
pub trait Extension: Tier {
    /// Called once every TCP listener is bound, before `run` returns: a binary starts its own
    /// listeners here (the edge's HTTP/3 endpoint). An error stops the binary.
    fn started<'a>(&'a self, _running: &'a Running) -> StartedFuture<'a> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// What [`Extension::started`] returns.
pub type StartedFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StartError>> + Send + 'a>>;

impl Extension for NoTier {}

/// Why a binary could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr} (listener `{name}`)")]
    Bind {
        name: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Why a reload was refused (the old plan keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no config file to reload from")]
    NoFile,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr} (listener `{name}`)")]
    Bind {
        name: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

struct Inner {
    binary: &'static str,
    ext: Arc<dyn Extension>,
    shared: Arc<Shared>,
    config_path: Option<PathBuf>,
    listeners: Mutex<Vec<ListenerHandle>>,
    tracker: TaskTracker,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
}

/// A started binary. Cheap to clone; every clone controls the same process-wide state.
#[derive(Clone)]
pub struct Running {
    inner: Arc<Inner>,
    /// Where the admin server listens.
    pub admin_addr: SocketAddr,
    done: Arc<tokio::sync::watch::Receiver<bool>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("binary", &self.inner.binary)
            .field("admin_addr", &self.admin_addr)
            .finish()
    }
}

/// Validates the config, binds every listener and the admin server, and starts serving.
/// Returns once everything is bound, with the bound addresses (port 0 is resolved).
pub async fn run(
    binary: &'static str,
    loaded: Loaded<ProxySettings>,
    config_path: Option<PathBuf>,
) -> Result<Running, StartError> {
    run_with(binary, loaded, config_path, Arc::new(NoTier)).await
}

/// [`run`] for a binary with its own request phases (see [`crate::filter`]).
pub async fn run_with(
    binary: &'static str,
    loaded: Loaded<ProxySettings>,
    config_path: Option<PathBuf>,
    ext: Arc<dyn Extension>,
) -> Result<Running, StartError> {
    let plan = Plan::build_with(loaded.value, &loaded.source, None, &*ext)?;
    let admin_addr = plan.settings.admin.address;
    let shared = Arc::new(Shared {
        plan: ArcSwap::from_pointee(plan),
        metrics: Arc::new(Metrics::new()),
    });
    let tracker = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let mut handles = Vec::new();
    {
        let plan = shared.plan.load();
        for l in &plan.listeners {
            let tcp = TcpListener::bind(l.settings.address)
                .await
                .map_err(|source| StartError::Bind {
                    name: l.name.to_string(),
                    addr: l.settings.address,
                    source,
                })?;
            let h = server::spawn_listener(
                tcp,
                l.name.clone(),
                shared.clone(),
                tracker.clone(),
                shutdown.child_token(),
            )
            .map_err(|source| StartError::Bind {
                name: l.name.to_string(),
                addr: l.settings.address,
                source,
            })?;
            tracing::info!(binary, listener = %h.name, address = %h.local_addr, tls = l.tls.is_some(), "listening");
            handles.push(h);
        }
    }
    let admin_tcp = TcpListener::bind(admin_addr)
        .await
        .map_err(|source| StartError::Bind {
            name: "admin".into(),
            addr: admin_addr,
            source,
        })?;
    let admin_addr = admin_tcp.local_addr().map_err(|source| StartError::Bind {
        name: "admin".into(),
        addr: admin_addr,
        source,
    })?;
    let readiness = Arc::new(Readiness::default());
    let admin_stop = CancellationToken::new();
    admin::spawn(
        admin_tcp,
        binary,
        shared.clone(),
        readiness.clone(),
        admin_stop.clone(),
    );
    tracing::info!(binary, address = %admin_addr, "admin listening");
    let inner = Arc::new(Inner {
        binary,
        ext,
        shared,
        config_path,
        listeners: Mutex::new(handles),
        tracker,
        readiness,
        shutdown,
    });
    inner.readiness.set(true);
    spawn_readiness_checks(&inner);
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let supervisor = inner.clone();
    tokio::spawn(async move {
        supervisor.shutdown.cancelled().await;
        supervisor.drain().await;
        admin_stop.cancel();
        let _ = done_tx.send(true);
    });
    let running = Running {
        inner,
        admin_addr,
        done: Arc::new(done_rx),
    };
    // The binary's own listeners (the edge's QUIC endpoint) start once the TCP ones are bound.
    if let Err(e) = running.inner.ext.started(&running).await {
        running.shutdown();
        return Err(e);
    }
    Ok(running)
}

/// Readiness beyond bound listeners: first endpoints of every service, and the optional
/// HTTP check (e.g. a sidecar's local app), both from `readiness` in the config.
fn spawn_readiness_checks(inner: &Arc<Inner>) {
    let plan = inner.shared.plan.load_full();
    let r = &plan.settings.readiness;
    if r.services_resolved {
        let readiness = inner.readiness.clone();
        let plan = plan.clone();
        let stop = inner.shutdown.clone();
        tokio::spawn(async move {
            for (name, up) in &plan.services {
                loop {
                    if stop.is_cancelled() {
                        return;
                    }
                    if up.ready(std::time::Duration::from_secs(5)).await {
                        break;
                    }
                    tracing::warn!(service = %name, discovery = %up.discovery_description(), "still no endpoints: not ready");
                }
            }
            readiness.set_services(true);
        });
    } else {
        inner.readiness.set_services(true);
    }
    if r.http_check.is_none() && plan.tier.filter.is_none() && plan.tier.ready.is_none() {
        inner.readiness.set_app(true);
    }
    let readiness = inner.readiness.clone();
    let shared = inner.shared.clone();
    let stop = inner.shutdown.clone();
    tokio::spawn(async move {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<crate::body::ProxyBody>();
        let mut was = None;
        loop {
            // Read each round: a reload may change or remove the check.
            let plan = shared.plan.load_full();
            let r = &plan.settings.readiness;
            let interval = r
                .check_interval
                .get()
                .max(std::time::Duration::from_millis(50));
            let filter_ready = plan.tier.filter.as_ref().is_none_or(|f| f.is_ready());
            let tier_ready = plan.tier.ready.as_ref().is_none_or(|ready| ready());
            let ok = filter_ready
                && tier_ready
                && match &r.http_check {
                    None => true,
                    Some(url) => {
                        let req = http::Request::get(url.as_str()).body(crate::body::empty());
                        match req {
                            Ok(req) => matches!(
                                tokio::time::timeout(interval, client.request(req)).await,
                                Ok(Ok(res)) if res.status().is_success()
                            ),
                            Err(_) => false,
                        }
                    }
                };
            if was != Some(ok) {
                tracing::info!(ok, "readiness check");
                was = Some(ok);
            }
            readiness.set_app(ok);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}

impl Inner {
    async fn drain(&self) {
        self.readiness.set(false);
        let deadline = self.shared.plan.load().drain_timeout;
        let open = self.tracker.len();
        tracing::info!(binary = self.binary, open_tasks = open, deadline = ?deadline, "draining");
        // The listeners' stop tokens are children of `shutdown`: accepting has stopped and every
        // connection has been asked to finish its in-flight requests and close.
        self.tracker.close();
        if tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                binary = self.binary,
                remaining = self.tracker.len(),
                "drain deadline passed; closing remaining connections"
            );
        } else {
            tracing::info!(binary = self.binary, "drained");
        }
    }
}

impl Running {
    /// The bound address of listener `name`.
    pub async fn addr(&self, name: &str) -> Option<SocketAddr> {
        let ls = self.inner.listeners.lock().await;
        ls.iter().find(|h| &*h.name == name).map(|h| h.local_addr)
    }

    /// Every listener's name and bound address.
    pub async fn addrs(&self) -> Vec<(String, SocketAddr)> {
        let ls = self.inner.listeners.lock().await;
        ls.iter()
            .map(|h| (h.name.to_string(), h.local_addr))
            .collect()
    }

    /// The shared state (plan and metrics), for tests and embedding.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.inner.readiness.is_ready()
    }

    /// Re-reads the config file and swaps the plan in. A bad file is refused and logged; the
    /// running plan keeps serving.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let path = self.inner.config_path.clone().ok_or(ReloadError::NoFile)?;
        let loaded = config::load::<ProxySettings>(&path);
        let result = match loaded {
            Ok(loaded) => self.reload_from(loaded).await,
            Err(e) => Err(e.into()),
        };
        self.record_reload(&result);
        result
    }

    fn record_reload(&self, result: &Result<(), ReloadError>) {
        let label = ReloadLabels {
            result: if result.is_ok() { "success" } else { "failure" },
        };
        self.inner
            .shared
            .metrics
            .config_reloads
            .get_or_create(&label)
            .inc();
        match result {
            Ok(()) => tracing::info!(binary = self.inner.binary, "config reloaded"),
            Err(e) => tracing::error!(
                binary = self.inner.binary,
                error = %crate::error::chain(e),
                "config reload refused; the previous config keeps serving"
            ),
        }
    }

    /// Builds a plan from `loaded` beside the running one, opens and closes listeners to match,
    /// then swaps it in atomically.
    pub async fn reload_from(&self, loaded: Loaded<ProxySettings>) -> Result<(), ReloadError> {
        let inner = &self.inner;
        // One reload at a time; the lock also guards the listener set.
        let mut listeners = inner.listeners.lock().await;
        let current = inner.shared.plan.load_full();
        let plan = Plan::build_with(loaded.value, &loaded.source, Some(&current), &*inner.ext)?;
        if plan.settings.admin.address != current.settings.admin.address {
            tracing::warn!("admin.address changed: it takes effect at the next restart");
        }
        let same = |a: &crate::plan::ListenerPlan, b: &crate::settings::ListenerSettings| {
            *a.name == *b.name && a.settings.address == b.address
        };
        // Open new listeners first: if one cannot bind, nothing has changed yet.
        let mut opened = Vec::new();
        for l in &plan.listeners {
            if current.listeners.iter().any(|c| same(c, &l.settings)) {
                continue;
            }
            let bound = TcpListener::bind(l.settings.address).await;
            let tcp = match bound {
                Ok(t) => t,
                Err(source) => {
                    opened.iter().for_each(|h: &ListenerHandle| h.stop.cancel());
                    return Err(ReloadError::Bind {
                        name: l.name.to_string(),
                        addr: l.settings.address,
                        source,
                    });
                }
            };
            match server::spawn_listener(
                tcp,
                l.name.clone(),
                inner.shared.clone(),
                inner.tracker.clone(),
                inner.shutdown.child_token(),
            ) {
                Ok(h) => {
                    tracing::info!(listener = %h.name, address = %h.local_addr, "listening");
                    opened.push(h);
                }
                Err(source) => {
                    opened.iter().for_each(|h| h.stop.cancel());
                    return Err(ReloadError::Bind {
                        name: l.name.to_string(),
                        addr: l.settings.address,
                        source,
                    });
                }
            }
        }
        inner.shared.plan.store(Arc::new(plan));
        let plan = inner.shared.plan.load();
        listeners.retain(|h| {
            let keep = plan
                .listeners
                .iter()
                .any(|l| current.listeners.iter().any(|c| same(c, &l.settings) && c.name == h.name));
            if !keep {
                tracing::info!(listener = %h.name, address = %h.local_addr, "listener removed; draining it");
                h.stop.cancel();
            }
            keep
        });
        listeners.extend(opened);
        Ok(())
    }

    /// True once a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Cancelled when a shutdown begins (a binary's own listeners stop accepting then).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// The tracker the drain waits on: a binary's own connections spawned on it are drained
    /// like the TCP listeners' (up to `drain_timeout`).
    pub fn tracker(&self) -> TaskTracker {
        self.inner.tracker.clone()
    }

    /// Reports not ready (`/readyz` 503) without stopping anything: the first step of a
    /// shutdown with a `drain_delay`.
    pub fn set_not_ready(&self) {
        self.inner.readiness.set(false);
    }

    /// The running config's `drain_delay`.
    pub fn drain_delay(&self) -> std::time::Duration {
        self.inner.shared.plan.load().drain_delay
    }

    /// Starts a graceful shutdown: stop accepting, drain, then [`Running::wait`] returns.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Resolves when the binary has stopped (after a shutdown and its drain).
    pub async fn wait(&self) {
        let mut rx = (*self.done).clone();
        let _ = rx.wait_for(|done| *done).await;
    }
}
