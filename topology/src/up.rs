//! `gatehouse-topology up`: the whole demo on one machine, as child processes.
//!
//! [`up`] creates the dev PKI and JWT keys (`STATE/certs/`), starts every demo service with its
//! sidecar, the internal gateway and the edge (configs from `topology/config/`, filled in with
//! `GH_*` environment variables), waits until every admin `/readyz` answers 200 and writes
//! `STATE/topology.json`. The returned [`Topology`] owns the children: [`Topology::shutdown`]
//! stops them (SIGTERM, wait, SIGKILL), and dropping it kills them.

mod build;
pub mod nats;
pub mod redis;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gatehouse_certs::layout::{self, InitOptions};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::{DEMO_CLIENTS, ServiceName};

/// Where the edge listens by default (HTTPS).
pub const DEFAULT_EDGE_PORT: u16 = 8443;
/// Where the internal gateway listens by default (mTLS).
pub const DEFAULT_INTERNAL_PORT: u16 = 9443;
/// First of the ports of everything else by default: 19000–19101.
pub const DEFAULT_OTHER_PORTS: u16 = 19000;
/// Where the edge's plain-HTTP listener (308 to HTTPS) listens by default.
pub const DEFAULT_EDGE_HTTP_PORT: u16 = 8080;

/// The service instances, in start order: name, service, instance number.
const INSTANCES: [(&str, ServiceName, u32); 9] = [
    ("idp", ServiceName::Idp, 1),
    ("catalog-1", ServiceName::Catalog, 1),
    ("catalog-2", ServiceName::Catalog, 2),
    ("reviews", ServiceName::Reviews, 1),
    ("pricing", ServiceName::Pricing, 1),
    ("inventory", ServiceName::Inventory, 1),
    ("users", ServiceName::Users, 1),
    ("orders", ServiceName::Orders, 1),
    ("echo", ServiceName::Echo, 1),
];

/// How to run the topology.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// State directory (certificates, logs, `topology.json`); default `.gatehouse`.
    pub state_dir: PathBuf,
    /// `None`: edge on 8443, internal on 9443, the rest on 19000–19101. `Some(B)`: the edge
    /// on B, the internal gateway on B+1, the rest on B+2–B+103.
    pub port_base: Option<u16>,
    /// Where `gatehouse-edge`, `-internal`, `-sidecar` and `-topology` are; default: beside the
    /// current executable.
    pub bin_dir: Option<PathBuf>,
    /// The config templates; default `topology/config` in the working directory, else the one
    /// of this source tree.
    pub config_dir: Option<PathBuf>,
    /// Run `cargo build --workspace` first (when started by `cargo run`, in its profile, without
    /// the variables `cargo run` set): the build a shell's workspace build does, so neither
    /// undoes the other.
    pub build: bool,
    /// How long to wait for every `/readyz`.
    pub ready_timeout: Duration,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            state_dir: PathBuf::from(".gatehouse"),
            port_base: None,
            bin_dir: None,
            config_dir: None,
            build: false,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// What a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Edge,
    Internal,
    Sidecar,
    Service,
    /// The event broker (`nats-server`).
    Broker,
    /// The store of shared rate limits (`redis-server`).
    Store,
}

impl Role {
    /// As in `topology.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Edge => "edge",
            Role::Internal => "internal",
            Role::Sidecar => "sidecar",
            Role::Service => "service",
            Role::Broker => "broker",
            Role::Store => "store",
        }
    }
}

/// One child process of the topology.
#[derive(Debug)]
pub struct Process {
    /// `edge`, `internal`, `catalog-1`, `catalog-1-sidecar`, ...
    pub name: String,
    pub role: Role,
    /// The demo service (services and sidecars).
    pub service: Option<ServiceName>,
    /// Listeners by kind: `https`, `http`, `grpc`, `inbound`, `outbound`.
    pub listen: BTreeMap<&'static str, SocketAddr>,
    pub admin: SocketAddr,
    /// The config file (gateways and sidecars).
    pub config: Option<PathBuf>,
    /// The process id at start (or at the last [`Topology::restart`]).
    pub pid: u32,
    child: Option<Child>,
    launch: Launch,
}

/// How a process was started, to start it again.
#[derive(Debug, Clone)]
struct Launch {
    /// A name in the binary directory, or an absolute path.
    binary: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

/// The running topology. Dropping it kills every child (SIGKILL); [`Topology::shutdown`] stops
/// them cleanly.
#[derive(Debug)]
pub struct Topology {
    pub state_dir: PathBuf,
    pub cert_dir: PathBuf,
    pub processes: Vec<Process>,
    /// How long from the start of [`up`] until everything was ready.
    pub ready_after: Duration,
    spawner: Spawner,
}

impl Topology {
    /// The process named `name`.
    pub fn process(&self, name: &str) -> Option<&Process> {
        self.processes.iter().find(|p| p.name == name)
    }

    /// The edge's HTTPS address.
    pub fn edge_https(&self) -> SocketAddr {
        self.process("edge")
            .and_then(|p| p.listen.get("https").copied())
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_EDGE_PORT)))
    }

    /// `topology.json`, per the contract of `topology/README.md`.
    pub fn to_json(&self) -> serde_json::Value {
        let processes: Vec<_> = self
            .processes
            .iter()
            .map(|p| {
                let mut v = json!({
                    "name": p.name,
                    "role": p.role.as_str(),
                    "pid": p.pid,
                    "listen": p.listen.iter().map(|(k, a)| (k.to_string(), json!(a.to_string()))).collect::<serde_json::Map<_, _>>(),
                    "admin": p.admin.to_string(),
                });
                if let Some(s) = p.service {
                    v["service"] = json!(s.as_str());
                }
                if let Some(c) = &p.config {
                    v["config"] = json!(c.display().to_string());
                }
                v
            })
            .collect();
        let clients: Vec<_> = DEMO_CLIENTS
            .iter()
            .map(|c| json!({"client_id": c.client_id, "client_secret": c.client_secret, "scopes": c.scopes}))
            .collect();
        let broker = self
            .processes
            .iter()
            .find(|p| p.role == Role::Broker)
            .and_then(|p| p.listen.get("nats"))
            .map(|a| format!("tls://{a}"));
        let store = self
            .processes
            .iter()
            .find(|p| p.role == Role::Store)
            .and_then(|p| p.listen.get("redis"))
            .map(|a| format!("rediss://{a}"));
        json!({
            "cert_dir": self.cert_dir.display().to_string(),
            "broker": broker,
            "store": store,
            "processes": processes,
            "demo_clients": clients,
        })
    }

    /// Kills one process at once (SIGKILL), for fault tests; true if it was running.
    /// Stops `name` as an operator would (SIGTERM, 5 seconds, then SIGKILL), starts it again
    /// with the same command line and waits until its `/readyz` answers 200.
    pub async fn restart(&mut self, name: &str, timeout: Duration) -> anyhow::Result<()> {
        let i = self
            .processes
            .iter()
            .position(|p| p.name == name)
            .with_context(|| format!("no process named {name}"))?;
        let p = &mut self.processes[i];
        if let Some(mut child) = p.child.take() {
            if let Some(pid) = child.id() {
                terminate(pid).await;
            }
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        let l = p.launch.clone();
        let child = self.spawner.spawn(name, &l.binary, &l.args, &l.env)?;
        p.pid = child.id().unwrap_or(0);
        p.child = Some(child);
        let log_dir = self.spawner.log_dir.clone();
        wait_ready(self, &[i], &log_dir, timeout).await
    }

    pub async fn kill(&mut self, name: &str) -> bool {
        let Some(p) = self.processes.iter_mut().find(|p| p.name == name) else {
            return false;
        };
        match p.child.take() {
            Some(mut child) => {
                let _ = child.kill().await;
                true
            }
            None => false,
        }
    }

    /// Stops every child: SIGTERM, up to 5 seconds to exit, then SIGKILL. Edge first, services
    /// last.
    pub async fn shutdown(mut self) {
        let mut children: Vec<(String, Child)> = self
            .processes
            .iter_mut()
            .rev()
            .filter_map(|p| p.child.take().map(|c| (p.name.clone(), c)))
            .collect();
        for (_, child) in &children {
            if let Some(pid) = child.id() {
                terminate(pid).await;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        for (name, child) in &mut children {
            match tokio::time::timeout_at(deadline, child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    eprintln!("gatehouse-topology: {name} did not stop in time; killing it");
                    let _ = child.kill().await;
                }
            }
        }
    }
}

/// Sends SIGTERM (via kill(1): this crate has no unsafe code).
async fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// Every address of the topology.
#[derive(Debug, Clone)]
struct Ports {
    edge_https: u16,
    edge_http: u16,
    edge_admin: u16,
    internal: u16,
    internal_admin: u16,
    /// The event broker's client port and monitoring port.
    nats: u16,
    nats_monitor: u16,
    /// The shared rate limits' store (TLS).
    redis: u16,
    /// First port of the instances: 4 each (app, app admin, sidecar inbound, sidecar admin).
    instances: u16,
    orders_outbound: u16,
}

impl Ports {
    fn new(base: Option<u16>) -> anyhow::Result<Self> {
        let (edge, internal, rest, http) = match base {
            None => (
                DEFAULT_EDGE_PORT,
                DEFAULT_INTERNAL_PORT,
                DEFAULT_OTHER_PORTS,
                DEFAULT_EDGE_HTTP_PORT,
            ),
            Some(b) => {
                if b == 0 || b > u16::MAX - 110 {
                    bail!("--port-base must be between 1 and {}", u16::MAX - 110);
                }
                (b, b + 1, b + 2, b + 104)
            }
        };
        Ok(Ports {
            edge_https: edge,
            edge_http: http,
            internal,
            edge_admin: rest,
            internal_admin: rest + 1,
            nats: rest + 2,
            nats_monitor: rest + 3,
            redis: rest + 4,
            instances: rest + 10,
            orders_outbound: rest + 101,
        })
    }

    /// (app, app admin, sidecar inbound, sidecar admin) of instance `i`.
    fn instance(&self, i: usize) -> [u16; 4] {
        let p = self.instances + 4 * i as u16;
        [p, p + 1, p + 2, p + 3]
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// `catalog-1` → `CATALOG_1`.
fn env_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

fn default_config_dir() -> PathBuf {
    let local = PathBuf::from("topology/config");
    if local.join("edge.yaml").exists() {
        local
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Creates `cert_dir` with the CA, the gateway and service identities and the JWT keys (kept
/// when they exist).
/// `name` on the `PATH`, else where Debian installs it (`/usr/sbin`, `/usr/bin`; a user's
/// `PATH` may lack the first).
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn ensure_pki(cert_dir: &Path) -> anyhow::Result<()> {
    let mut services: Vec<String> = Vec::new();
    for (_, s, _) in INSTANCES {
        if !services.iter().any(|n| n == s.as_str()) {
            services.push(s.as_str().to_owned());
        }
    }
    // The event broker's server certificate (its SANs: `nats`, `localhost`, 127.0.0.1).
    services.push("nats".to_owned());
    // The shared rate limits' store, the same way.
    services.push("redis".to_owned());
    let opts = InitOptions {
        services,
        ..InitOptions::default()
    };
    layout::init_dir(cert_dir, &opts)
        .with_context(|| format!("cannot create the dev PKI in {}", cert_dir.display()))?;
    layout::ensure_jwt_keys(cert_dir, None)
        .with_context(|| format!("cannot create the JWT keys in {}", cert_dir.display()))?;
    Ok(())
}

/// The `GH_*` variables every config may use (each process also gets its own `GH_SIDECAR_*`,
/// `GH_APP*` and `GH_SERVICE`).
fn shared_env(ports: &Ports, cert_dir: &Path) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("GH_CERTS".into(), cert_dir.display().to_string());
    let mut put = |k: &str, port: u16| {
        env.insert(k.to_owned(), local(port).to_string());
    };
    put("GH_EDGE_HTTPS", ports.edge_https);
    put("GH_EDGE_HTTP", ports.edge_http);
    put("GH_EDGE_ADMIN", ports.edge_admin);
    put("GH_INTERNAL", ports.internal);
    put("GH_INTERNAL_ADMIN", ports.internal_admin);
    put("GH_ORDERS_OUTBOUND", ports.orders_outbound);
    for (i, (name, _, _)) in INSTANCES.iter().enumerate() {
        let [app, app_admin, inbound, sidecar_admin] = ports.instance(i);
        let n = env_name(name);
        put(&format!("GH_{n}_APP"), app);
        put(&format!("GH_{n}_APP_ADMIN"), app_admin);
        put(&format!("GH_{n}_SIDECAR"), inbound);
        put(&format!("GH_{n}_SIDECAR_ADMIN"), sidecar_admin);
    }
    // The port the HTTP listener's 308 points to.
    env.insert("GH_EDGE_HTTPS_PORT".into(), ports.edge_https.to_string());
    env
}

/// The environment for validating the configs without starting anything (tests).
pub fn config_env(
    port_base: Option<u16>,
    cert_dir: &Path,
) -> anyhow::Result<Vec<(String, String)>> {
    let ports = Ports::new(port_base)?;
    let mut env = shared_env(&ports, cert_dir);
    // Those of one sidecar (orders: the one with every variable).
    let i = INSTANCES
        .iter()
        .position(|(n, _, _)| *n == "orders")
        .unwrap_or(0);
    env.extend(sidecar_env(&ports, i));
    Ok(env.into_iter().collect())
}

fn sidecar_env(ports: &Ports, i: usize) -> BTreeMap<String, String> {
    let (_, service, _) = INSTANCES[i];
    let [app, app_admin, inbound, admin] = ports.instance(i);
    let mut env = BTreeMap::new();
    env.insert("GH_SERVICE".into(), service.as_str().to_owned());
    env.insert("GH_APP".into(), local(app).to_string());
    env.insert("GH_APP_ADMIN".into(), local(app_admin).to_string());
    env.insert("GH_SIDECAR_INBOUND".into(), local(inbound).to_string());
    env.insert("GH_SIDECAR_ADMIN".into(), local(admin).to_string());
    env.insert(
        "GH_SIDECAR_OUTBOUND".into(),
        local(ports.orders_outbound).to_string(),
    );
    env
}

/// The sidecar config template of `service`, in the config directory.
pub fn sidecar_config(service: ServiceName) -> &'static str {
    match service {
        ServiceName::Orders => "sidecar-orders.yaml",
        ServiceName::Inventory | ServiceName::Pricing => "sidecar-orders-callee.yaml",
        _ => "sidecar.yaml",
    }
}

#[derive(Debug)]
struct Spawner {
    bin_dir: PathBuf,
    log_dir: PathBuf,
    env: BTreeMap<String, String>,
}

impl Spawner {
    fn spawn(
        &self,
        name: &str,
        binary: &str,
        args: &[String],
        extra_env: &BTreeMap<String, String>,
    ) -> anyhow::Result<Child> {
        let path = self.bin_dir.join(binary);
        if !path.exists() {
            bail!(
                "{} not found: build the binaries first (cargo build --release --bins)",
                path.display()
            );
        }
        let log = self.log_dir.join(format!("{name}.log"));
        // Appended: a restarted process keeps its earlier log.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone().context("cannot open the log")?;
        Command::new(&path)
            .args(args)
            .envs(&self.env)
            .envs(extra_env)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", path.display()))
    }
}

/// Starts the whole topology and waits until it is ready. See the module documentation.
pub async fn up(opts: UpOptions) -> anyhow::Result<Topology> {
    let started = Instant::now();
    let ports = Ports::new(opts.port_base)?;
    let bin_dir = match &opts.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .context("cannot find the current executable")?
            .parent()
            .map(Path::to_path_buf)
            .context("the current executable has no directory")?,
    };
    if opts.build {
        build::build_workspace(&bin_dir).await?;
    }
    let config_dir = absolute(&opts.config_dir.clone().unwrap_or_else(default_config_dir))?;
    std::fs::create_dir_all(&opts.state_dir)
        .with_context(|| format!("cannot create {}", opts.state_dir.display()))?;
    let state_dir = absolute(&opts.state_dir)?;
    let cert_dir = state_dir.join("certs");
    let log_dir = state_dir.join("logs");
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    {
        let cert_dir = cert_dir.clone();
        tokio::task::spawn_blocking(move || ensure_pki(&cert_dir))
            .await
            .context("PKI task failed")??;
    }
    let spawner = Spawner {
        bin_dir,
        log_dir: log_dir.clone(),
        env: shared_env(&ports, &cert_dir),
    };
    let mut topo = Topology {
        state_dir: state_dir.clone(),
        cert_dir: cert_dir.clone(),
        processes: Vec::new(),
        ready_after: Duration::ZERO,
        spawner,
    };
    let none = BTreeMap::new();
    let launch = |binary: &str, args: &[String], env: &BTreeMap<String, String>| Launch {
        binary: binary.to_owned(),
        args: args.to_vec(),
        env: env.clone(),
    };
    let config_arg =
        |file: &Path| -> Vec<String> { vec!["--config".into(), file.display().to_string()] };

    // The broker first (when there is one), then the services, their sidecars, the internal
    // gateway and the edge.
    let broker = match nats::find_binary() {
        Some(binary) => Some(nats::prepare(
            binary,
            &state_dir,
            &cert_dir,
            local(ports.nats),
            local(ports.nats_monitor),
        )?),
        None => {
            eprintln!(
                "gatehouse-topology: nats-server is not on the PATH, so no event broker: \
                 /api/async/orders, /api/jobs/{{id}} and /api/events/orders answer 503 \
                 (apt-get install nats-server)"
            );
            None
        }
    };
    let store = match redis::find_binary() {
        Some(binary) => Some(redis::prepare(
            binary,
            &state_dir,
            &cert_dir,
            local(ports.redis),
        )?),
        None => {
            eprintln!(
                "gatehouse-topology: redis-server is not on the PATH, so the /api/echo rate \
                 limit counts in the edge alone (apt-get install redis-server)"
            );
            None
        }
    };
    let mut edge_env = BTreeMap::new();
    if let Some(s) = &store {
        let args = vec![s.config.display().to_string()];
        let binary = s.binary.display().to_string();
        let child = topo.spawner.spawn("redis", &binary, &args, &none)?;
        topo.processes.push(Process {
            name: "redis".to_owned(),
            role: Role::Store,
            service: None,
            listen: BTreeMap::from([("redis", s.addr)]),
            admin: s.addr,
            config: Some(s.config.clone()),
            pid: child.id().unwrap_or(0),
            child: Some(child),
            launch: launch(&binary, &args, &none),
        });
        edge_env.insert("GH_REDIS_URL".to_owned(), s.url());
        edge_env.insert("GH_REDIS_PASSWORD".to_owned(), s.edge_password.clone());
    }
    let mut internal_env = BTreeMap::new();
    if let Some(b) = &broker {
        let args = vec!["-c".to_owned(), b.config.display().to_string()];
        let binary = b.binary.display().to_string();
        let child = topo.spawner.spawn("nats", &binary, &args, &none)?;
        topo.processes.push(Process {
            name: "nats".to_owned(),
            role: Role::Broker,
            service: None,
            listen: BTreeMap::from([("nats", b.addr)]),
            admin: b.monitor,
            config: Some(b.config.clone()),
            pid: child.id().unwrap_or(0),
            child: Some(child),
            launch: launch(&binary, &args, &none),
        });
        topo.spawner.env.insert("GH_NATS_URL".into(), b.url());
        internal_env.insert(
            "GH_NATS_PASSWORD_INTERNAL".to_owned(),
            b.internal_password.clone(),
        );
    }
    for (i, (name, service, instance)) in INSTANCES.iter().copied().enumerate() {
        let [app, app_admin, _, _] = ports.instance(i);
        let mut args: Vec<String> = vec![
            "service".into(),
            service.as_str().into(),
            "--listen".into(),
            local(app).to_string(),
            "--admin".into(),
            local(app_admin).to_string(),
            "--instance".into(),
            instance.to_string(),
        ];
        let mut env = BTreeMap::new();
        if service == ServiceName::Orders {
            args.extend([
                "--upstream-proxy".into(),
                local(ports.orders_outbound).to_string(),
            ]);
            if let Some(b) = &broker {
                args.extend([
                    "--nats".into(),
                    b.url(),
                    "--nats-ca".into(),
                    cert_dir.join(layout::CA_CERT).display().to_string(),
                    "--nats-user".into(),
                    "orders".into(),
                ]);
                env.insert("GH_NATS_PASSWORD".to_owned(), b.orders_password.clone());
            }
        }
        if service == ServiceName::Idp {
            let key = cert_dir.join(layout::JWT_KEY);
            args.extend(["--jwt-key".into(), key.display().to_string()]);
            args.extend([
                "--public-url".into(),
                format!("https://127.0.0.1:{}", ports.edge_https),
            ]);
        }
        let child = topo
            .spawner
            .spawn(name, "gatehouse-topology", &args, &env)?;
        let kind = if service.is_grpc() { "grpc" } else { "http" };
        topo.processes.push(Process {
            name: name.to_owned(),
            role: Role::Service,
            service: Some(service),
            listen: BTreeMap::from([(kind, local(app))]),
            admin: local(app_admin),
            config: None,
            pid: child.id().unwrap_or(0),
            child: Some(child),
            launch: launch("gatehouse-topology", &args, &env),
        });
    }
    for (i, (name, service, _)) in INSTANCES.iter().copied().enumerate() {
        let [_, _, inbound, admin] = ports.instance(i);
        let config = config_dir.join(sidecar_config(service));
        let sname = format!("{name}-sidecar");
        let (args, env) = (config_arg(&config), sidecar_env(&ports, i));
        let child = topo
            .spawner
            .spawn(&sname, "gatehouse-sidecar", &args, &env)?;
        let mut listen = BTreeMap::from([("inbound", local(inbound))]);
        if service == ServiceName::Orders {
            listen.insert("outbound", local(ports.orders_outbound));
        }
        topo.processes.push(Process {
            name: sname,
            role: Role::Sidecar,
            service: Some(service),
            listen,
            admin: local(admin),
            config: Some(config),
            pid: child.id().unwrap_or(0),
            child: Some(child),
            launch: launch("gatehouse-sidecar", &args, &env),
        });
    }
    let edge_listen = BTreeMap::from([
        ("https", local(ports.edge_https)),
        // HTTP/3: the same port over UDP.
        ("h3", local(ports.edge_https)),
        ("http", local(ports.edge_http)),
    ]);
    for (name, role, binary, listen, admin) in [
        (
            "internal",
            Role::Internal,
            "gatehouse-internal",
            BTreeMap::from([("https", local(ports.internal))]),
            ports.internal_admin,
        ),
        (
            "edge",
            Role::Edge,
            "gatehouse-edge",
            edge_listen,
            ports.edge_admin,
        ),
    ] {
        let config = config_dir.join(format!("{name}.yaml"));
        let args = config_arg(&config);
        let env = if role == Role::Internal {
            &internal_env
        } else {
            &edge_env
        };
        let child = topo.spawner.spawn(name, binary, &args, env)?;
        topo.processes.push(Process {
            name: name.to_owned(),
            role,
            service: None,
            listen,
            admin: local(admin),
            config: Some(config),
            pid: child.id().unwrap_or(0),
            child: Some(child),
            launch: launch(binary, &args, env),
        });
    }

    let all: Vec<usize> = (0..topo.processes.len()).collect();
    wait_ready(&mut topo, &all, &log_dir, opts.ready_timeout).await?;
    topo.ready_after = started.elapsed();
    let json =
        serde_json::to_string_pretty(&topo.to_json()).context("cannot encode topology.json")?;
    let path = state_dir.join("topology.json");
    std::fs::write(&path, json + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(topo)
}

/// Polls the admin `/readyz` of the processes at `indices` until all answer 200; fails when a
/// child exits or at the timeout.
async fn wait_ready(
    topo: &mut Topology,
    indices: &[usize],
    log_dir: &Path,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<usize> = indices.to_vec();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for i in pending {
            let p = &mut topo.processes[i];
            if let Some(child) = p.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "{} exited during start-up ({status}); see {}",
                    p.name,
                    log_dir.join(format!("{}.log", p.name)).display()
                );
            }
            // nats-server's monitoring port says it at /healthz; redis-server has no HTTP
            // port: it is up once it accepts connections.
            let ready = match p.role {
                Role::Store => tokio::net::TcpStream::connect(p.admin).await.is_ok(),
                Role::Broker => readyz(p.admin, "/healthz").await == Some(200),
                _ => readyz(p.admin, "/readyz").await == Some(200),
            };
            if !ready {
                still.push(i);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let names: Vec<_> = pending
                .iter()
                .map(|&i| topo.processes[i].name.as_str())
                .collect();
            bail!(
                "not ready after {timeout:?}: {}; logs in {}",
                names.join(", "),
                log_dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The status of `GET /readyz` on `admin`, or `None` when it does not answer.
async fn readyz(admin: SocketAddr, path: &str) -> Option<u16> {
    let fut = async {
        let mut tcp = tokio::net::TcpStream::connect(admin).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 64];
        let mut n = 0;
        while n < 12 {
            let read = tcp.read(&mut buf[n..]).await.ok()?;
            if read == 0 {
                return None;
            }
            n += read;
        }
        std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(1), fut)
        .await
        .ok()
        .flatten()
}

/// The text `up` prints once ready: the endpoints and four curl examples.
pub fn summary(topo: &Topology) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<9} {:<40} admin",
        "process", "role", "listen"
    );
    for p in &topo.processes {
        let listen: Vec<_> = p.listen.iter().map(|(k, a)| format!("{k} {a}")).collect();
        let _ = writeln!(
            out,
            "{:<20} {:<9} {:<40} {}",
            p.name,
            p.role.as_str(),
            listen.join(", "),
            p.admin
        );
    }
    let edge = topo.edge_https();
    let ca = topo.cert_dir.join(layout::CA_CERT);
    let ca = ca.display();
    let _ = writeln!(
        out,
        "\nReady in {:.1}s. State: {}",
        topo.ready_after.as_secs_f64(),
        topo.state_dir.join("topology.json").display()
    );
    let _ = writeln!(
        out,
        "\n# public\ncurl --cacert {ca} https://{edge}/api/catalog/products\n# one request, five services (docs/orchestration.md)\ncurl --cacert {ca} https://{edge}/api/web/products/1001"
    );
    let _ = writeln!(
        out,
        "\n# with a token (client web-app)\nTOKEN=$(curl -s --cacert {ca} -u web-app:web-app-dev-secret -d grant_type=client_credentials https://{edge}/oauth/token | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')\ncurl --cacert {ca} -H \"authorization: Bearer $TOKEN\" https://{edge}/api/users/me"
    );
    let _ = writeln!(
        out,
        "\n# rejected: no token, 401\ncurl -i --cacert {ca} https://{edge}/api/users/me"
    );
    let _ = writeln!(out, "\nCtrl-C stops everything.");
    out
}
