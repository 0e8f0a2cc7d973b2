//! Starting one demo service in-process: [`serve`] binds its main and admin listeners (port 0
//! allowed), starts serving, and returns a [`RunningService`] holding the bound addresses.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::Admin;
use crate::proto::orders_server::OrdersServer;
use crate::services::orders::OrdersService;
use crate::services::{Rest, rest_app};
use crate::state::State;
use crate::{Error, Result, ServiceName};

/// How to run a service, beyond its name and addresses.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The sidecar's outbound listener, through which `orders` calls `inventory` and `pricing`
    /// (plain HTTP, `Host` naming the service). Default: none, and `CreateOrder` is `UNAVAILABLE`.
    pub upstream_proxy: Option<SocketAddr>,
    /// The idp's signing key (PKCS#8 PEM, from `gatehouse-certs jwt-keys`). Required by `idp`,
    /// ignored by the others. Default: none.
    pub jwt_key: Option<PathBuf>,
    /// The instance number, in `x-instance` and catalog bodies. Default: 1.
    pub instance: u32,
    /// The idp's public base URL for its discovery document (e.g. `https://127.0.0.1:8443`).
    /// Default: none, taken from `X-Forwarded-Proto`/`X-Forwarded-Host`/`Host` per request.
    pub public_url: Option<String>,
    /// `orders`: the event broker to take async order requests from (docs/events.md). Default:
    /// none (only the gRPC API).
    pub broker: Option<crate::BrokerOptions>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            upstream_proxy: None,
            jwt_key: None,
            instance: 1,
            public_url: None,
            broker: None,
        }
    }
}

/// A service started by [`serve`]. Dropping it stops the listeners; [`RunningService::shutdown`]
/// also waits for open connections to drain.
pub struct RunningService {
    name: ServiceName,
    instance: u32,
    listen: SocketAddr,
    admin: SocketAddr,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for RunningService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningService")
            .field("name", &self.name)
            .field("instance", &self.instance)
            .field("listen", &self.listen)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl RunningService {
    /// The service.
    pub fn name(&self) -> ServiceName {
        self.name
    }

    /// The instance number.
    pub fn instance(&self) -> u32 {
        self.instance
    }

    /// The bound main listener (REST, or gRPC for `orders`).
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The bound admin listener.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// Stops accepting, lets open connections finish (5 s at most), and waits for the end.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        for task in std::mem::take(&mut self.tasks) {
            if let Err(e) = task.await
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn bind(listener: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let bound = TcpListener::bind(addr)
        .await
        .and_then(|l| Ok((l.local_addr()?, l)))
        .map_err(|source| Error::Bind {
            listener,
            addr,
            source,
        })?;
    Ok((bound.1, bound.0))
}

/// Starts service `name`: loads what it needs (the idp's key), binds `listen` and `admin` (port 0
/// picks a free port), and serves until the returned [`RunningService`] is shut down or dropped.
/// Must be called inside a Tokio runtime.
pub async fn serve(
    name: ServiceName,
    listen: SocketAddr,
    admin: SocketAddr,
    opts: ServeOptions,
) -> Result<RunningService> {
    // Load before binding: a bad key must not leave a half-started service behind.
    let rest = rest_app(name, &opts)?;
    let (main_listener, listen) = bind("main", listen).await?;
    let (admin_listener, admin) = bind("admin", admin).await?;
    let state = Arc::new(State::new(name.as_str(), opts.instance));
    let stop = CancellationToken::new();
    let main_task = match rest {
        Some(app) => {
            let handler = Arc::new(Rest {
                app,
                state: state.clone(),
            });
            crate::http::spawn(main_listener, handler, stop.clone(), "main")
        }
        None => {
            let svc = OrdersService::new(state.clone(), opts.upstream_proxy);
            if let Some(broker) = opts.broker.clone() {
                let (book, stop) = (svc.book(), stop.clone());
                tokio::spawn(crate::services::orders::worker::run(broker, book, stop));
            }
            let incoming = tonic::transport::server::TcpIncoming::from(main_listener);
            let stop = stop.clone();
            tokio::spawn(async move {
                let served = tonic::transport::Server::builder()
                    .add_service(OrdersServer::new(svc))
                    .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the gRPC server stopped");
                }
            })
        }
    };
    let admin_task = crate::http::spawn(
        admin_listener,
        Arc::new(Admin { state }),
        stop.clone(),
        "admin",
    );
    tracing::info!(service = %name, instance = opts.instance, %listen, %admin, "demo service started");
    Ok(RunningService {
        name,
        instance: opts.instance,
        listen,
        admin,
        stop,
        tasks: vec![main_task, admin_task],
    })
}
