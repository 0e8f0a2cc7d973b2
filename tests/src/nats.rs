//! A real `nats-server` with JetStream for tests: its own port on 127.0.0.1, its own store in a
//! temporary directory, optional TLS and users; stopped (and restarted on the same port and
//! store, for fault tests) by the test, killed when dropped.
//!
//! Where the binary is absent, [`NatsServer::start`] returns `None` after printing why, and the
//! test returns early, except under `CI=true`, where the binary is a requirement and its
//! absence fails the test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// What the server is started with.
#[derive(Debug, Clone, Default)]
pub struct NatsConfig {
    /// TLS with these PEM files (server certificate, key, CA); clients then need `tls://`.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// `(user, password, permissions)`; permissions is the text inside `permissions { }`, empty
    /// for none. No users: no authorization.
    pub users: Vec<(String, String, String)>,
}

/// A running (or stopped) server.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    addr: SocketAddr,
    conf: PathBuf,
    binary: PathBuf,
    tls: bool,
    _dir: tempfile::TempDir,
}

/// The `nats-server` binary: on the `PATH`, or where Debian puts it.
pub fn binary() -> Option<PathBuf> {
    crate::server::find_binary("nats-server")
}

impl NatsServer {
    /// Starts a server; `None` (with a message) when the binary is absent outside CI.
    pub async fn start(config: NatsConfig) -> Option<NatsServer> {
        let Some(binary) = binary() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "nats-server is required under CI=true (apt-get install nats-server)"
            );
            eprintln!("SKIPPED: nats-server is not installed (apt-get install nats-server)");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = crate::server::free_port();
        let conf = dir.path().join("nats.conf");
        std::fs::write(&conf, config_text(addr, dir.path(), &config)).expect("write nats.conf");
        let mut server = NatsServer {
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

    /// `nats://` or `tls://` and the address.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "tls" } else { "nats" };
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

    /// Starts it again on the same port with the same store.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.run().await;
    }

    async fn run(&mut self) {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        // Up once it accepts connections (it sends INFO at once); JetStream is enabled by then.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nats-server did not listen on {} within 5s", self.addr);
    }
}

fn config_text(addr: SocketAddr, dir: &Path, config: &NatsConfig) -> String {
    let mut text = format!(
        "listen: \"{addr}\"\nserver_name: test\njetstream {{ store_dir: \"{}\" }}\n",
        dir.join("js").display()
    );
    if let Some((cert, key, ca)) = &config.tls {
        text.push_str(&format!(
            "tls {{ cert_file: \"{}\"\n key_file: \"{}\"\n ca_file: \"{}\"\n timeout: 2 }}\n",
            cert.display(),
            key.display(),
            ca.display()
        ));
    }
    if !config.users.is_empty() {
        text.push_str("authorization { users: [\n");
        for (user, password, permissions) in &config.users {
            text.push_str(&format!(
                "  {{ user: \"{user}\", password: \"{password}\", permissions: {{ {permissions} }} }}\n"
            ));
        }
        text.push_str("] }\n");
    }
    text
}
