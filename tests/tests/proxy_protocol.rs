//! A listener behind a TCP load balancer (`proxy_protocol`): the client a PROXY header names is
//! the client the backend sees in `X-Forwarded-For`; a connection from an untrusted peer, or
//! without a valid header, is closed before any HTTP byte is read or written.

use std::net::SocketAddr;
use std::time::Duration;

use gatehouse_common::config;
use gatehouse_common::plan::Plan;
use gatehouse_common::runtime::Running;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::{Backend, BackendHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn yaml(trusted: &str, backend: SocketAddr) -> String {
    format!(
        "listeners: [{{ name: main, address: \"127.0.0.1:0\", proxy_protocol: {{ trusted: [{trusted}] }} }}]\n\
         admin: {{ address: \"127.0.0.1:0\" }}\n\
         limits: {{ tls_handshake_timeout: 1s }}\n\
         routes: [{{ name: all, service: app }}]\n\
         services:\n  app: {{ endpoints: [\"{backend}\"] }}\n"
    )
}

async fn start(trusted: &str) -> (Running, SocketAddr, BackendHandle) {
    let be = Backend::new().route("/", "hello").run().await;
    let running = gatehouse_tests::proxy::start(&yaml(trusted, be.addr)).await;
    let addr = running.addr("main").await.expect("listener");
    (running, addr, be)
}

/// Writes `prefix`, then a GET, on a new connection; everything the proxy answers until it
/// closes (empty: closed without a byte).
async fn exchange(addr: SocketAddr, prefix: &[u8]) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut out = prefix.to_vec();
    out.extend_from_slice(b"GET /x HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n");
    // The proxy may close before reading everything (a refused connection): not an error.
    let _ = tcp.write_all(&out).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the proxy neither answered nor closed within 5s"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.extend([0x20 | command, family]);
    out.extend(u16::try_from(block.len()).expect("short").to_be_bytes());
    out.extend_from_slice(block);
    out
}

/// What the balancer sent before the request ↔ the client address the backend was told.
#[tokio::test]
async fn the_header_names_the_client_and_nothing_else_gets_through() {
    let (_running, addr, be) = start("127.0.0.1").await;
    let tcp4 = [198, 51, 100, 9, 127, 0, 0, 1, 0x30, 0x39, 0x20, 0xfb];
    let cases: [(&str, Vec<u8>, Option<&str>); 7] = [
        (
            "v1",
            b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n".to_vec(),
            Some("203.0.113.7"),
        ),
        (
            "v1 IPv6",
            b"PROXY TCP6 2001:db8::7 ::1 5555 80\r\n".to_vec(),
            Some("2001:db8::7"),
        ),
        ("v2", v2(1, 0x11, &tcp4), Some("198.51.100.9")),
        // The balancer's own connection (health check): the peer address stands.
        ("v2 LOCAL", v2(0, 0x00, &[]), Some("127.0.0.1")),
        ("no header", Vec::new(), None),
        ("v1 garbled", b"PROXY TCP4 nope\r\n".to_vec(), None),
        ("v2 truncated", v2(1, 0x11, &tcp4[..4]), None),
    ];
    for (name, prefix, client) in cases {
        let before = be.count();
        let answer = exchange(addr, &prefix).await;
        match client {
            Some(ip) => {
                assert!(answer.starts_with("HTTP/1.1 200"), "{name}: {answer}");
                assert_eq!(be.count(), before + 1, "{name}");
                let seen = be.last();
                let xff = seen
                    .headers
                    .get("x-forwarded-for")
                    .expect("x-forwarded-for");
                assert_eq!(xff, ip, "{name}");
            }
            None => {
                assert_eq!(answer, "", "{name}: refused without a byte");
                assert_eq!(be.count(), before, "{name}: reached the backend");
            }
        }
    }
}

/// A peer outside `trusted` is refused even with a well-formed header: it could name anyone.
#[tokio::test]
async fn an_untrusted_peer_is_refused() {
    let (_running, addr, be) = start("10.0.0.0/8, \"fd00::/8\"").await;
    let answer = exchange(addr, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n").await;
    assert_eq!(answer, "");
    assert_eq!(be.count(), 0);
}

#[test]
fn bad_settings_are_refused_with_the_key() {
    let backend: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let cases = [
        ("", "listeners[0].proxy_protocol.trusted", "at least one"),
        (
            "10.0.0.0/8, 10.0.0.0/33",
            "listeners[0].proxy_protocol.trusted[1]",
            "prefix length",
        ),
        (
            "balancer.local",
            "listeners[0].proxy_protocol.trusted[0]",
            "not an IP address or network",
        ),
    ];
    for (trusted, key, msg) in cases {
        let loaded =
            config::parse::<ProxySettings>("test.yaml", &yaml(trusted, backend)).expect("parses");
        let err = Plan::build(loaded.value, &loaded.source, None)
            .expect_err(trusted)
            .to_string();
        assert!(
            err.contains(&format!("at `{key}`")) && err.contains(msg),
            "{trusted}: {err}"
        );
    }
}
