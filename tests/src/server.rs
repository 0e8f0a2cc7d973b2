//! What the kits of real servers (`nats-server`, `redis-server`) share: finding the binary
//! where Debian puts it, and a free port on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// `name` on the `PATH`, else in `/usr/sbin` or `/usr/bin` (Debian's places, which a user's
/// `PATH` may lack).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A port nothing listens on now (the server binds it right after: a small race, as with any
/// server that cannot be told to bind port 0 and report it).
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local addr")
}
