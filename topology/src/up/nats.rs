//! The demo's event broker: `nats-server` with JetStream, when it is on the `PATH`, with a
//! config generated per run (TLS from the dev PKI, one user per tier with only the permissions
//! its part needs, fresh passwords) in `STATE/nats/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};

/// Where the broker's files go, under the state directory.
pub const DIR: &str = "nats";

/// What the gateway (user `internal`) may do: publish order requests, use the JetStream API
/// (streams, the job bucket, event consumers), never pull the requests meant for `orders`.
const INTERNAL_PERMISSIONS: &str = r#"publish: { allow: ["orders.requests", "$JS.API.>", "$KV.JOBS.>", "$JS.FC.>"], deny: ["$JS.API.CONSUMER.MSG.NEXT.ORDER_REQUESTS.>", "$JS.API.CONSUMER.DURABLE.CREATE.ORDER_REQUESTS.>"] }, subscribe: { allow: ["_INBOX.>"] }"#;
/// What `orders` may do: consume and acknowledge requests, write job states, publish order
/// events; never publish a request.
const ORDERS_PERMISSIONS: &str = r#"publish: { allow: ["$JS.API.>", "$JS.ACK.ORDER_REQUESTS.>", "$KV.JOBS.>", "orders.events.>"], deny: ["orders.requests"] }, subscribe: { allow: ["_INBOX.>"] }"#;

/// A broker to start: its config written, its users' passwords chosen.
#[derive(Debug, Clone)]
pub struct BrokerPlan {
    pub binary: PathBuf,
    pub config: PathBuf,
    pub addr: SocketAddr,
    pub monitor: SocketAddr,
    pub internal_password: String,
    pub orders_password: String,
}

impl BrokerPlan {
    /// `tls://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("tls://{}", self.addr)
    }
}

/// The `nats-server` binary on the `PATH` (or where Debian installs it).
pub fn find_binary() -> Option<PathBuf> {
    super::find_binary("nats-server")
}

/// Writes the config (mode 0600: it holds passwords) for a broker on `addr`.
pub fn prepare(
    binary: PathBuf,
    state_dir: &Path,
    cert_dir: &Path,
    addr: SocketAddr,
    monitor: SocketAddr,
) -> anyhow::Result<BrokerPlan> {
    let dir = state_dir.join(DIR);
    std::fs::create_dir_all(dir.join("jetstream"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let password = || Alphanumeric.sample_string(&mut rand::rng(), 24);
    let plan = BrokerPlan {
        binary,
        config: dir.join("nats.conf"),
        addr,
        monitor,
        internal_password: password(),
        orders_password: password(),
    };
    let cert = |f: &str| cert_dir.join(f).display().to_string();
    let text = format!(
        "# Written by gatehouse-topology up at every start; edits are lost.\n\
         listen: \"{addr}\"\nhttp: \"{monitor}\"\nserver_name: gatehouse-demo\n\
         jetstream {{ store_dir: \"{store}\" }}\n\
         tls {{ cert_file: \"{c}\", key_file: \"{k}\", ca_file: \"{ca}\", timeout: 2 }}\n\
         authorization {{ users: [\n\
         \x20 {{ user: internal, password: \"{pi}\", permissions: {{ {INTERNAL_PERMISSIONS} }} }}\n\
         \x20 {{ user: orders, password: \"{po}\", permissions: {{ {ORDERS_PERMISSIONS} }} }}\n] }}\n",
        store = dir.join("jetstream").display(),
        c = cert("nats.pem"),
        k = cert("nats-key.pem"),
        ca = cert("ca.pem"),
        pi = plan.internal_password,
        po = plan.orders_password,
    );
    write_private(&plan.config, &text)?;
    Ok(plan)
}

pub(super) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
