//! Idle HTTP/1 connections parked between requests (hyper's state released, only the socket
//! kept): what a client sent on either side of the pause ↔ what it got back.

use std::time::{Duration, Instant};

use gatehouse_tests::{Backend, Client, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Well past the gateway's park delay (50 ms) and its check period.
const PAUSE: Duration = Duration::from_millis(1300);

async fn proxy(
    limits: &str,
) -> (
    gatehouse_common::runtime::Running,
    gatehouse_tests::BackendHandle,
) {
    gatehouse_tests::proxy::with_limits(limits).await
}

async fn parked_now(admin: std::net::SocketAddr) -> u64 {
    let (_, _, body) = Client::http1()
        .get(&format!("http://{admin}/metrics"))
        .await;
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix("gatehouse_parked_connections "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no parked gauge in {text}"))
}

/// Reads responses until `count` complete ones (Content-Length bodies) arrived, or 5 s.
async fn read_responses(s: &mut TcpStream, count: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let heads = split_responses(&buf);
        if heads.len() >= count {
            return heads;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return heads,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The complete responses in `buf`, each as its status line.
fn split_responses(buf: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(buf);
    let mut out = Vec::new();
    let mut rest = &*text;
    while let Some(end) = rest.find("\r\n\r\n") {
        let head = &rest[..end];
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        if rest.len() < end + 4 + len {
            break;
        }
        out.push(head.lines().next().unwrap_or_default().to_owned());
        rest = &rest[end + 4 + len..];
    }
    out
}

/// A connection that has been served one GET.
async fn served_once(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_responses(&mut s, 1).await.len(), 1);
    s
}

/// The gateway closes `s` within 5 s without sending a byte.
async fn closes_silently(s: &mut TcpStream) {
    let mut rest = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut rest))
        .await
        .expect("closed within 5 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without a byte");
}

/// One piece of a case: what the client writes, how many responses that completes, and how
/// many connections are parked after the pause that follows it.
type Piece = (&'static str, usize, u64);

/// Each case: the pieces a client writes on one connection with a pause after each but the
/// last; every response must be a 200, and the backend must see each request and body.
#[tokio::test]
async fn a_parked_connection_serves_what_comes_after_the_pause() {
    const GET: &str = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const POST: &str = "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    const CHUNKED: &str =
        "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let cases: &[(&str, &[Piece], &[u64])] = &[
        (
            "get, pause, get, pause, get",
            &[(GET, 1, 1), (GET, 1, 1), (GET, 1, 0)],
            &[0, 0, 0],
        ),
        (
            "a body, pause, a chunked body, pause, get",
            &[(POST, 1, 1), (CHUNKED, 1, 1), (GET, 1, 0)],
            &[5, 5, 0],
        ),
        // The second head's first bytes came with the first request: hyper holds them unparsed,
        // they are replayed to the rebuilt connection, and the header timer runs for them (so
        // it stays unparked), and the rest of the head completes the request.
        (
            "a request plus half a head, pause, the rest of the head",
            &[
                ("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HT", 1, 0),
                ("TP/1.1\r\nHost: x\r\n\r\n", 1, 0),
            ],
            &[0, 0],
        ),
    ];
    for (name, pieces, bodies) in cases {
        let (p, be) = proxy("header_read_timeout: 5s, idle_timeout: 30s").await;
        let addr = p.addr("main").await.expect("listener");
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut got = Vec::new();
        for (i, (piece, responses, parked)) in pieces.iter().enumerate() {
            s.write_all(piece.as_bytes()).await.expect("write");
            let now = read_responses(&mut s, *responses).await;
            assert_eq!(now.len(), *responses, "{name}, piece {i}: {now:?}");
            got.extend(now);
            if i + 1 < pieces.len() {
                tokio::time::sleep(PAUSE).await;
                assert_eq!(
                    parked_now(p.admin_addr).await,
                    *parked,
                    "{name}, after piece {i}"
                );
            }
        }
        assert!(
            got.iter().all(|l| l.starts_with("HTTP/1.1 200")),
            "{name}: {got:?}"
        );
        let seen: Vec<u64> = be.seen().iter().map(|s| s.body_len).collect();
        assert_eq!(
            seen, *bodies,
            "{name}: requests and body lengths the backend saw"
        );
        assert_eq!(parked_now(p.admin_addr).await, 0, "{name}: woken");
    }
}

/// A parked connection still ends at the idle timeout, and a head that starts after the pause
/// still has only the header-read timeout to complete.
#[tokio::test]
async fn a_parked_connection_keeps_its_timeouts() {
    let (p, _be) = proxy("header_read_timeout: 400ms, idle_timeout: 2s").await;
    let addr = p.addr("main").await.expect("listener");

    // Idle timeout: one request, then silence: closed at about 2 s, not before.
    let mut s = served_once(addr).await;
    let started = Instant::now();
    tokio::time::sleep(PAUSE).await;
    assert_eq!(parked_now(p.admin_addr).await, 1);
    closes_silently(&mut s).await;
    let closed = started.elapsed();
    assert!(
        closed >= Duration::from_millis(1500) && closed < Duration::from_secs(4),
        "{closed:?}"
    );
    assert_eq!(parked_now(p.admin_addr).await, 0);

    // Header timeout after a pause: half a head, then nothing: cut at about 400 ms.
    let mut s = served_once(addr).await;
    tokio::time::sleep(PAUSE).await;
    s.write_all(b"GET / HTTP/1.1\r\nHo").await.expect("write");
    let started = Instant::now();
    closes_silently(&mut s).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

/// Draining closes parked connections at once: they have nothing in flight.
#[tokio::test]
async fn draining_closes_parked_connections_at_once() {
    let (p, _be) = proxy("header_read_timeout: 5s, idle_timeout: 60s").await;
    let addr = p.addr("main").await.expect("listener");
    let mut s = served_once(addr).await;
    tokio::time::sleep(PAUSE).await;
    assert_eq!(parked_now(p.admin_addr).await, 1);
    let started = Instant::now();
    p.shutdown();
    closes_silently(&mut s).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A request pipelined behind a large response that the client reads slowly: hyper holds the
/// second request unanswered until the first is written, over pauses longer than the park
/// delay; the connection must not be parked with it (that would drop it), and it is answered.
#[tokio::test]
async fn a_request_pipelined_behind_a_slowly_read_response_is_answered() {
    let big: &'static str = Box::leak("x".repeat(2 << 20).into_boxed_str());
    let be = Backend::new()
        .route("/big", big)
        .route("/", "hello")
        .run()
        .await;
    let p = start(&format!(
        "listeners: [{{ name: main, address: \"127.0.0.1:0\" }}]\nadmin: {{ address: \"127.0.0.1:0\" }}\nroutes: [{{ name: all, service: app }}]\nservices:\n  app: {{ endpoints: [\"{}\"] }}\n",
        be.addr
    ))
    .await;
    let addr = p.addr("main").await.expect("listener");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    while split_responses(&buf).len() < 2 && Instant::now() < deadline {
        // Slower than the park delay between reads: the gateway waits on a full socket.
        tokio::time::sleep(Duration::from_millis(80)).await;
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let got = split_responses(&buf);
    assert_eq!(got.len(), 2, "{got:?} after {} bytes", buf.len());
    assert!(got.iter().all(|l| l.starts_with("HTTP/1.1 200")), "{got:?}");
    assert!(
        buf.ends_with(b"hello"),
        "the second answer comes last, whole"
    );
    assert_eq!(be.count(), 2);
}
