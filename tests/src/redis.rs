//! A real `redis-server` for tests: its own port on 127.0.0.1, nothing persisted, optional TLS
//! and an ACL user; stopped (and restarted on the same port, empty, for fault tests) by the
//! test, killed when dropped.
//!
//! Where the binary is absent, [`RedisServer::start`] returns `None` after printing why, and
//! the test returns early, except under `CI=true`, where its absence fails the test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// What the server is started with.
#[derive(Debug, Clone, Default)]
pub struct RedisConfig {
    /// TLS only (no plain port) with these PEM files: server certificate, key, CA. Clients
    /// are not asked for a certificate.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// `(user, password, ACL rules)`, e.g. `~* +@all`: the users that may log in (the
    /// `default` user is off). None: no AUTH.
    pub users: Vec<(String, String, String)>,
}

/// A running (or stopped) server.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    addr: SocketAddr,
    conf: PathBuf,
    binary: PathBuf,
    tls: bool,
    _dir: tempfile::TempDir,
}

/// The `redis-server` binary: on the `PATH`, or where Debian puts it.
pub fn binary() -> Option<PathBuf> {
    crate::server::find_binary("redis-server")
}

impl RedisServer {
    /// Starts a server; `None` (with a message) when the binary is absent outside CI.
    pub async fn start(config: RedisConfig) -> Option<RedisServer> {
        let Some(binary) = binary() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is required under CI=true (apt-get install redis-server)"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = crate::server::free_port();
        let conf = dir.path().join("redis.conf");
        let mut text = format!(
            "bind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n",
            dir.path().display()
        );
        match &config.tls {
            None => text.push_str(&format!("port {}\n", addr.port())),
            Some((cert, key, ca)) => text.push_str(&format!(
                "port 0\ntls-port {}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
                 tls-auth-clients no\n",
                addr.port(),
                cert.display(),
                key.display(),
                ca.display()
            )),
        }
        if !config.users.is_empty() {
            text.push_str("user default off\n");
        }
        for (user, password, rules) in &config.users {
            text.push_str(&format!("user {user} on >{password} {rules}\n"));
        }
        std::fs::write(&conf, text).expect("write redis.conf");
        let mut server = RedisServer {
            child: None,
            addr,
            conf,
            binary,
            tls: config.tls.is_some(),
            _dir: dir,
        };
        server.run().await;
        Some(server)
    }

    /// `redis://` or `rediss://` and the address.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server (SIGKILL: an abrupt crash, what the fault tests need).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port, empty (nothing is persisted).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.run().await;
    }

    async fn run(&mut self) {
        // Redis logs to stdout: kept, to say why it did not start.
        let log = self.conf.with_extension("log");
        let out = std::fs::File::create(&log).expect("redis log file");
        let child = Command::new(&self.binary)
            .arg(&self.conf)
            .stdout(out)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "redis-server did not listen on {} within 5s:\n{log}",
            self.addr
        );
    }
}
