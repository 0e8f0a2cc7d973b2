//! The demo's store of shared rate limits: `redis-server`, when it is on the `PATH`, with TLS
//! from the dev PKI, one ACL user (`edge`, a fresh password per run, only the commands the
//! edge's limiter sends) and nothing persisted; its config in `STATE/redis/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};

/// Where the store's files go, under the state directory.
pub const DIR: &str = "redis";

/// What the edge may do: run the limiter's script (docs/edge.md "Shared limits on Redis").
const EDGE_RULES: &str =
    "~gatehouse:rl:* +evalsha +eval +script|load +get +set +time +hello +auth +ping";

/// A store to start: its config written, the edge's password chosen.
#[derive(Debug, Clone)]
pub struct StorePlan {
    pub binary: PathBuf,
    pub config: PathBuf,
    pub addr: SocketAddr,
    pub edge_password: String,
}

impl StorePlan {
    /// `rediss://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("rediss://{}", self.addr)
    }
}

/// The `redis-server` binary on the `PATH` (or where Debian installs it).
pub fn find_binary() -> Option<PathBuf> {
    super::find_binary("redis-server")
}

/// Writes the config (mode 0600: it holds a password) for a store on `addr` (TLS only).
pub fn prepare(
    binary: PathBuf,
    state_dir: &Path,
    cert_dir: &Path,
    addr: SocketAddr,
) -> anyhow::Result<StorePlan> {
    let dir = state_dir.join(DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let plan = StorePlan {
        binary,
        config: dir.join("redis.conf"),
        addr,
        edge_password: Alphanumeric.sample_string(&mut rand::rng(), 24),
    };
    let cert = |f: &str| cert_dir.join(f).display().to_string();
    let text = format!(
        "# Written by gatehouse-topology up at every start; edits are lost.\n\
         bind {ip}\nport 0\ntls-port {port}\n\
         tls-cert-file {c}\ntls-key-file {k}\ntls-ca-cert-file {ca}\ntls-auth-clients no\n\
         save \"\"\nappendonly no\ndir {dir}\n\
         user default off\nuser edge on >{pw} {EDGE_RULES}\n",
        ip = addr.ip(),
        port = addr.port(),
        c = cert("redis.pem"),
        k = cert("redis-key.pem"),
        ca = cert("ca.pem"),
        dir = dir.display(),
        pw = plan.edge_password,
    );
    super::nats::write_private(&plan.config, &text)?;
    Ok(plan)
}
