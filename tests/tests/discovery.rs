//! Service discovery against a local DNS server the test controls: A/AAAA and SRV answers,
//! records changed at run time, SERVFAIL, NXDOMAIN and silence; static sets; validation.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_common::config::{self, Source};
use gatehouse_common::upstream::discovery::{
    Discovered, Discovery, DiscoverySettings, DnsResolver, DnsSettings, DnsSrvSettings,
    EndpointSettings, validate,
};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

// ---------------------------------------------------------------------------------------
// The fake DNS server

/// How the server treats queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answer from the records: NOERROR with the matching ones, NXDOMAIN for unknown names.
    Answer,
    /// Answer every query with SERVFAIL.
    ServFail,
    /// Read queries and never answer.
    Silent,
}

/// What the server answers with; changed by the test at run time.
#[derive(Debug)]
struct Zone {
    records: Vec<Record>,
    mode: Mode,
}

/// A DNS server on 127.0.0.1, UDP and TCP on one port, answering from a zone the test
/// changes at run time. Its tasks end when it is dropped.
struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    async fn start(records: Vec<Record>) -> DnsServer {
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("udp addr");
        let zone = Arc::new(Mutex::new(Zone {
            records,
            mode: Mode::Answer,
        }));
        let queries = Arc::new(AtomicUsize::new(0));
        let udp_task = tokio::spawn(serve_udp(udp, zone.clone(), queries.clone()));
        let tcp_task = tokio::spawn(serve_tcp(tcp, zone.clone(), queries.clone()));
        DnsServer {
            addr,
            zone,
            queries,
            tasks: vec![udp_task, tcp_task],
        }
    }

    fn set_records(&self, records: Vec<Record>) {
        self.zone.lock().expect("zone lock").records = records;
    }

    fn set_mode(&self, mode: Mode) {
        self.zone.lock().expect("zone lock").mode = mode;
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    fn resolver(&self) -> DnsResolver {
        DnsResolver::with_nameserver(self.addr).expect("resolver")
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A UDP socket on 127.0.0.1:0 and a TCP listener on the same port (retried if taken).
async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = udp.local_addr().expect("udp addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP");
}

async fn serve_udp(socket: UdpSocket, zone: Arc<Mutex<Zone>>, queries: Arc<AtomicUsize>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        queries.fetch_add(1, Ordering::SeqCst);
        if let Some(reply) = answer(&zone, &buf[..len]) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: Arc<Mutex<Zone>>, queries: Arc<AtomicUsize>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_tcp_conn(stream, zone.clone(), queries.clone()));
    }
}

/// DNS over TCP: each message is prefixed with its length on two bytes.
async fn serve_tcp_conn(mut stream: TcpStream, zone: Arc<Mutex<Zone>>, queries: Arc<AtomicUsize>) {
    loop {
        let Ok(len) = stream.read_u16().await else {
            return;
        };
        let mut request = vec![0u8; usize::from(len)];
        if stream.read_exact(&mut request).await.is_err() {
            return;
        }
        queries.fetch_add(1, Ordering::SeqCst);
        if let Some(reply) = answer(&zone, &request) {
            let Ok(reply_len) = u16::try_from(reply.len()) else {
                return;
            };
            if stream.write_u16(reply_len).await.is_err() || stream.write_all(&reply).await.is_err()
            {
                return;
            }
        }
    }
}

/// The encoded answer to `request`, or `None` to stay silent.
fn answer(zone: &Mutex<Zone>, request: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(request).ok()?;
    let query = request.queries.first()?.clone();
    let zone = zone.lock().ok()?;
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.authoritative = true;
    response.add_query(query.clone());
    match zone.mode {
        Mode::Silent => return None,
        Mode::ServFail => response.metadata.response_code = ResponseCode::ServFail,
        Mode::Answer => {
            let wanted = key(query.name());
            let same_name: Vec<&Record> = zone
                .records
                .iter()
                .filter(|record| key(&record.name) == wanted)
                .collect();
            if same_name.is_empty() {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            response.add_answers(
                same_name
                    .into_iter()
                    .filter(|record| record.record_type() == query.query_type())
                    .cloned(),
            );
        }
    }
    response.to_vec().ok()
}

/// A name compared without case and trailing dot.
fn key(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn name(text: &str) -> Name {
    Name::from_ascii(format!("{}.", text.trim_end_matches('.'))).expect("test name")
}

fn a(host: &str, ip: &str, ttl: u32) -> Record {
    let ip = ip.parse().expect("test IPv4");
    Record::from_rdata(name(host), ttl, RData::A(A(ip)))
}

fn aaaa(host: &str, ip: &str, ttl: u32) -> Record {
    let ip = ip.parse().expect("test IPv6");
    Record::from_rdata(name(host), ttl, RData::AAAA(AAAA(ip)))
}

fn srv(host: &str, priority: u16, weight: u16, port: u16, target: &str, ttl: u32) -> Record {
    let data = SRV::new(priority, weight, port, name(target));
    Record::from_rdata(name(host), ttl, RData::SRV(data))
}

// ---------------------------------------------------------------------------------------
// Helpers

fn at(addr: &str, weight: u32) -> Discovered {
    Discovered {
        addr: addr.parse().expect("test address"),
        weight,
    }
}

fn sorted(mut set: Vec<Discovered>) -> Vec<Discovered> {
    set.sort();
    set
}

fn dns(name: &str, port: u16, refresh: Option<Duration>) -> DiscoverySettings {
    DiscoverySettings::Dns(DnsSettings {
        name: name.to_owned(),
        port,
        refresh: refresh.map(Into::into),
    })
}

/// Waits up to `within` for the set to equal `expected`; how long it took, if it did.
async fn wait_for_set(
    rx: &mut watch::Receiver<Arc<[Discovered]>>,
    expected: &[Discovered],
    within: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let found = tokio::time::timeout(within, rx.wait_for(|set| &**set == expected)).await;
    matches!(found, Ok(Ok(_))).then(|| started.elapsed())
}

/// Where the discovery task logs a failed lookup ("DNS discovery failed", "still failing").
const REFRESH_TARGET: &str = "gatehouse_common::upstream::discovery::refresh";

/// The discovery task's failed lookups as it reports them: its log events from
/// [`REFRESH_TARGET`] that carry an `error` field. A test waits for the failure it needs
/// instead of sleeping for a guessed time. After reporting a failure the task sleeps at least
/// 1s before asking again, so a zone changed as soon as the report is seen is what the next
/// lookup sees.
struct FailedLookups {
    count: watch::Receiver<usize>,
    _installed: tracing::subscriber::DefaultGuard,
}

impl FailedLookups {
    /// Starts counting the failures logged on this thread, which is where a
    /// `#[tokio::test]` runs the discovery task.
    fn watch() -> FailedLookups {
        let (tx, count) = watch::channel(0);
        let subscriber = tracing_subscriber::registry().with(FailureCounter(tx));
        FailedLookups {
            count,
            _installed: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Waits up to `within` for a failure after those already seen; true if one came. False
    /// also when the task's failure events moved from [`REFRESH_TARGET`] or lost `error`.
    async fn next(&mut self, within: Duration) -> bool {
        let seen = *self.count.borrow_and_update();
        let failed = tokio::time::timeout(within, self.count.wait_for(|&n| n > seen)).await;
        matches!(failed, Ok(Ok(_)))
    }
}

/// The tracing layer behind [`FailedLookups`].
struct FailureCounter(watch::Sender<usize>);

impl<S: tracing::Subscriber> Layer<S> for FailureCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target() == REFRESH_TARGET && meta.fields().field("error").is_some() {
            self.0.send_modify(|n| *n += 1);
        }
    }
}

/// A resolver for tests that never reach DNS (static sets); nothing listens on port 9.
fn unused_resolver() -> DnsResolver {
    DnsResolver::with_nameserver(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 9))
        .expect("resolver")
}

// ---------------------------------------------------------------------------------------
// DNS

#[tokio::test]
async fn a_records_become_endpoints_and_follow_changes() {
    let server = DnsServer::start(vec![
        a("orders.mesh", "127.0.0.2", 1),
        a("orders.mesh", "127.0.0.1", 1),
    ])
    .await;
    let stop = CancellationToken::new();
    let discovery = Discovery::start(
        &dns("orders.mesh", 8080, None),
        &server.resolver(),
        stop.clone(),
    );
    assert_eq!(discovery.describe(), "dns orders.mesh:8080");
    assert!(
        discovery.ready(Duration::from_secs(5)).await,
        "first answer"
    );
    assert_eq!(
        &*discovery.current(),
        [at("127.0.0.1:8080", 1), at("127.0.0.2:8080", 1)]
    );

    server.set_records(vec![
        a("orders.mesh", "127.0.0.2", 1),
        a("orders.mesh", "127.0.0.3", 1),
    ]);
    let expected = [at("127.0.0.2:8080", 1), at("127.0.0.3:8080", 1)];
    let took = wait_for_set(
        &mut discovery.subscribe(),
        &expected,
        Duration::from_secs(5),
    )
    .await;
    println!("A records changed (TTL 1s): new set seen after {took:?}");
    assert!(
        took.is_some_and(|took| took < Duration::from_secs(3)),
        "{took:?}"
    );
    stop.cancel();
}

#[tokio::test]
async fn aaaa_records_are_included() {
    let server = DnsServer::start(vec![
        a("orders.mesh", "127.0.0.1", 30),
        aaaa("orders.mesh", "::1", 30),
    ])
    .await;
    let stop = CancellationToken::new();
    let discovery = Discovery::start(
        &dns("orders.mesh", 8080, None),
        &server.resolver(),
        stop.clone(),
    );
    assert!(discovery.ready(Duration::from_secs(5)).await);
    assert_eq!(
        &*discovery.current(),
        sorted(vec![at("127.0.0.1:8080", 1), at("[::1]:8080", 1)])
    );
    stop.cancel();
}

#[tokio::test]
async fn srv_targets_ports_and_weights() {
    let server = DnsServer::start(vec![
        srv("_http._tcp.orders.mesh", 10, 3, 8081, "a.orders.mesh", 1),
        srv("_http._tcp.orders.mesh", 10, 0, 8082, "b.orders.mesh", 1),
        // A backup (higher priority value): unused while the priority-10 targets exist.
        srv("_http._tcp.orders.mesh", 20, 5, 8083, "c.orders.mesh", 1),
        a("a.orders.mesh", "127.0.0.1", 1),
        a("b.orders.mesh", "127.0.0.2", 1),
        aaaa("b.orders.mesh", "::1", 1),
        a("c.orders.mesh", "127.0.0.3", 1),
    ])
    .await;
    let stop = CancellationToken::new();
    let settings = DiscoverySettings::DnsSrv(DnsSrvSettings {
        name: "_http._tcp.orders.mesh".into(),
        refresh: None,
    });
    let discovery = Discovery::start(&settings, &server.resolver(), stop.clone());
    assert_eq!(discovery.describe(), "dns_srv _http._tcp.orders.mesh");
    assert!(discovery.ready(Duration::from_secs(5)).await);
    assert_eq!(
        &*discovery.current(),
        sorted(vec![
            at("127.0.0.1:8081", 3),
            at("127.0.0.2:8082", 1),
            at("[::1]:8082", 1),
        ])
    );

    // The primaries go away: the backup takes over.
    server.set_records(vec![
        srv("_http._tcp.orders.mesh", 20, 5, 8083, "c.orders.mesh", 1),
        a("c.orders.mesh", "127.0.0.3", 1),
    ]);
    let took = wait_for_set(
        &mut discovery.subscribe(),
        &[at("127.0.0.3:8083", 5)],
        Duration::from_secs(5),
    )
    .await;
    println!("SRV records changed (TTL 1s): new set seen after {took:?}");
    assert!(took.is_some());
    stop.cancel();
}

#[tokio::test]
async fn silent_server_keeps_the_last_good_set_then_recovers() {
    let mut failed = FailedLookups::watch();
    let server = DnsServer::start(vec![a("orders.mesh", "127.0.0.1", 1)]).await;
    let stop = CancellationToken::new();
    let discovery = Discovery::start(
        &dns("orders.mesh", 80, None),
        &server.resolver(),
        stop.clone(),
    );
    assert!(discovery.ready(Duration::from_secs(5)).await);
    let mut rx = discovery.subscribe();
    rx.borrow_and_update();
    let good = [at("127.0.0.1:80", 1)];

    server.set_mode(Mode::Silent);
    let before = server.queries();
    // Until a lookup has timed out (hickory: 1s per query, with retransmissions).
    assert!(failed.next(Duration::from_secs(10)).await, "silence");
    let asked = server.queries() - before;
    println!("server silent until a lookup timed out: {asked} queries went unanswered");
    assert!(asked >= 2, "the client kept retrying: {asked}");
    assert_eq!(&*discovery.current(), good);
    assert!(!rx.has_changed().expect("task alive"), "nothing published");

    server.set_records(vec![a("orders.mesh", "127.0.0.9", 1)]);
    server.set_mode(Mode::Answer);
    let took = wait_for_set(&mut rx, &[at("127.0.0.9:80", 1)], Duration::from_secs(6)).await;
    println!("server answering again: new set seen after {took:?}");
    assert!(took.is_some());
    stop.cancel();
}

#[tokio::test]
async fn servfail_and_nxdomain_keep_the_last_good_set_then_recover() {
    let mut failed = FailedLookups::watch();
    let server = DnsServer::start(vec![a("orders.mesh", "127.0.0.1", 1)]).await;
    let stop = CancellationToken::new();
    let discovery = Discovery::start(
        &dns("orders.mesh", 80, None),
        &server.resolver(),
        stop.clone(),
    );
    assert!(discovery.ready(Duration::from_secs(5)).await);
    let mut rx = discovery.subscribe();
    rx.borrow_and_update();
    let good = [at("127.0.0.1:80", 1)];

    // Each change is made as soon as a lookup is reported failed: the next lookup sees it.
    server.set_mode(Mode::ServFail);
    let before = server.queries();
    assert!(failed.next(Duration::from_secs(5)).await, "SERVFAIL");
    assert!(server.queries() - before >= 2, "retried during SERVFAIL");
    assert_eq!(&*discovery.current(), good);

    // The name disappears (NXDOMAIN), then exists with no A/AAAA records (empty answer).
    server.set_mode(Mode::Answer);
    server.set_records(vec![]);
    assert!(failed.next(Duration::from_secs(5)).await, "NXDOMAIN");
    assert_eq!(&*discovery.current(), good);
    server.set_records(vec![srv("orders.mesh", 1, 1, 80, "x.orders.mesh", 1)]);
    assert!(failed.next(Duration::from_secs(5)).await, "empty answer");
    assert_eq!(&*discovery.current(), good);
    assert!(!rx.has_changed().expect("task alive"), "nothing published");

    server.set_records(vec![a("orders.mesh", "127.0.0.7", 1)]);
    let took = wait_for_set(&mut rx, &[at("127.0.0.7:80", 1)], Duration::from_secs(5)).await;
    println!("after SERVFAIL and NXDOMAIN: new set seen after {took:?}");
    assert!(took.is_some());
    stop.cancel();
}

#[tokio::test]
async fn refresh_caps_a_long_ttl() {
    let server = DnsServer::start(vec![a("orders.mesh", "127.0.0.1", 300)]).await;
    let stop = CancellationToken::new();
    let settings = dns("orders.mesh", 80, Some(Duration::from_secs(1)));
    let discovery = Discovery::start(&settings, &server.resolver(), stop.clone());
    assert!(discovery.ready(Duration::from_secs(5)).await);
    // The resolver's cache would hold the old record for 300s: a refresh must ask again.
    server.set_records(vec![a("orders.mesh", "127.0.0.2", 300)]);
    let took = wait_for_set(
        &mut discovery.subscribe(),
        &[at("127.0.0.2:80", 1)],
        Duration::from_secs(5),
    )
    .await;
    println!("TTL 300s, refresh 1s: new set seen after {took:?}");
    assert!(took.is_some());
    stop.cancel();
}

#[tokio::test]
async fn unchanged_records_are_not_republished() {
    let server = DnsServer::start(vec![a("orders.mesh", "127.0.0.1", 1)]).await;
    let stop = CancellationToken::new();
    let discovery = Discovery::start(
        &dns("orders.mesh", 80, None),
        &server.resolver(),
        stop.clone(),
    );
    assert!(discovery.ready(Duration::from_secs(5)).await);
    let mut rx = discovery.subscribe();
    rx.borrow_and_update();
    let before = server.queries();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(server.queries() - before >= 2, "re-resolved at the TTL");
    assert!(!rx.has_changed().expect("task alive"));
    stop.cancel();
}

#[tokio::test]
async fn ready_times_out_and_stop_ends_the_task() {
    let server = DnsServer::start(vec![]).await;
    server.set_mode(Mode::Silent);
    let stop = CancellationToken::new();
    let discovery = Discovery::start(
        &dns("orders.mesh", 80, None),
        &server.resolver(),
        stop.clone(),
    );
    let started = Instant::now();
    assert!(!discovery.ready(Duration::from_millis(1500)).await);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(discovery.current().is_empty());

    stop.cancel();
    let mut rx = discovery.subscribe();
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        while rx.changed().await.is_ok() {}
    })
    .await;
    assert!(closed.is_ok(), "the task dropped its sender after stop");
}

// ---------------------------------------------------------------------------------------
// Static sets and config

#[tokio::test]
async fn static_endpoints_with_weights() {
    let yaml = "static:\n  - 127.0.0.1:81\n  - { address: 127.0.0.1:80, weight: 2 }\n  - { address: '[::1]:80' }\n";
    let loaded = config::parse::<DiscoverySettings>("discovery.yaml", yaml).expect("parse");
    validate(&loaded.value, "", &loaded.source).expect("valid");
    assert_eq!(
        loaded.value,
        DiscoverySettings::Static(vec![
            EndpointSettings::Plain("127.0.0.1:81".parse().expect("addr")),
            EndpointSettings::Weighted {
                address: "127.0.0.1:80".parse().expect("addr"),
                weight: 2
            },
            EndpointSettings::Weighted {
                address: "[::1]:80".parse().expect("addr"),
                weight: 1
            },
        ])
    );
    let discovery = Discovery::start(&loaded.value, &unused_resolver(), CancellationToken::new());
    assert!(discovery.ready(Duration::ZERO).await);
    assert_eq!(
        &*discovery.current(),
        [
            at("127.0.0.1:80", 2),
            at("127.0.0.1:81", 1),
            at("[::1]:80", 1)
        ]
    );
    assert_eq!(discovery.describe(), "static (3 endpoints)");
    // A static set never changes, and its channel stays open.
    let mut rx = discovery.subscribe();
    let changed = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
    assert!(changed.is_err(), "no change, no close");
}

#[test]
fn yaml_forms() {
    let parse = |yaml: &str| {
        config::parse::<DiscoverySettings>("discovery.yaml", yaml)
            .expect("parse")
            .value
    };
    assert_eq!(
        parse("dns: { name: orders.mesh, port: 8080, refresh: 30s }"),
        dns("orders.mesh", 8080, Some(Duration::from_secs(30)))
    );
    assert_eq!(
        parse("dns: { name: orders.mesh, port: 8080 }"),
        dns("orders.mesh", 8080, None)
    );
    let srv = |refresh: Option<u64>| {
        DiscoverySettings::DnsSrv(DnsSrvSettings {
            name: "_http._tcp.orders.mesh".into(),
            refresh: refresh.map(|secs| Duration::from_secs(secs).into()),
        })
    };
    assert_eq!(parse("dns_srv: _http._tcp.orders.mesh"), srv(None));
    assert_eq!(
        parse("dns_srv:\n  name: _http._tcp.orders.mesh\n  refresh: 1m\n"),
        srv(Some(60))
    );
}

/// What serde refuses: unknown keys, bad addresses, unknown kinds.
#[test]
fn parse_errors_name_the_key() {
    let cases = [
        (
            "dns: { name: orders.mesh, port: 80, ttl: 5s }",
            "dns.ttl",
            "unknown field `ttl`",
        ),
        (
            "dns_srv: { name: x, port: 80 }",
            "dns_srv.port",
            "unknown field `port`",
        ),
        (
            "static: [nope]",
            "static[0]",
            "invalid endpoint address `nope`",
        ),
        (
            "static: [{ address: 127.0.0.1:80, wieght: 2 }]",
            "static[0].wieght",
            "unknown field `wieght`",
        ),
        (
            "dnss: { name: x, port: 80 }",
            "dnss",
            "unknown variant `dnss`",
        ),
        (
            "{ dns: { name: x, port: 80 }, static: [127.0.0.1:80] }",
            "static",
            "give only one of",
        ),
        (
            "dns: { name: orders.mesh, port: 70000 }",
            "dns.port",
            "70000",
        ),
    ];
    for (yaml, key_path, message) in cases {
        let error = config::parse::<DiscoverySettings>("d.yaml", yaml).expect_err(yaml);
        println!("{yaml:50} -> {error} [{:?}]", error.key_path());
        assert!(error.to_string().contains(message), "{yaml}: {error}");
        assert_eq!(error.key_path(), Some(key_path), "{yaml}");
    }
}

/// What `validate` refuses, with the key path and the line it points at.
#[test]
fn validation_errors_point_at_the_key() {
    let cases = [
        ("static: []", "static", "at least one endpoint"),
        (
            "static: [{ address: 127.0.0.1:80, weight: 0 }]",
            "static[0].weight",
            "weight must be at least 1",
        ),
        ("static: [127.0.0.1:0]", "static[0]", "port 0"),
        (
            "static: [127.0.0.1:80, 127.0.0.1:80]",
            "static[1]",
            "listed twice",
        ),
        (
            "dns: { name: '', port: 80 }",
            "dns.name",
            "must not be empty",
        ),
        (
            "dns: { name: 'a..b', port: 80 }",
            "dns.name",
            "not a valid DNS name",
        ),
        (
            "dns: { name: orders.mesh, port: 0 }",
            "dns.port",
            "port must be between 1 and 65535",
        ),
        (
            "dns: { name: orders.mesh, port: 80, refresh: 500ms }",
            "dns.refresh",
            "at least 1s",
        ),
        ("dns_srv: ''", "dns_srv.name", "must not be empty"),
        (
            "dns_srv: { name: _http._tcp.x, refresh: 0s }",
            "dns_srv.refresh",
            "at least 1s",
        ),
    ];
    for (yaml, key_path, message) in cases {
        let loaded = config::parse::<DiscoverySettings>("d.yaml", yaml).expect(yaml);
        let error = validate(&loaded.value, "", &loaded.source).expect_err(yaml);
        println!("{yaml:50} -> {error}");
        assert_eq!(error.key_path(), Some(key_path), "{yaml}");
        assert!(error.to_string().contains(message), "{yaml}: {error}");
    }

    // Inside a bigger file, the prefix places the error on the right line.
    let file = "services:\n  orders:\n    static:\n      - 127.0.0.1:80\n      - { address: 127.0.0.1:81, weight: 0 }\n";
    let inner = config::parse::<DiscoverySettings>(
        "d.yaml",
        "static: [127.0.0.1:80, { address: 127.0.0.1:81, weight: 0 }]",
    )
    .expect("parse");
    let error = validate(
        &inner.value,
        "services.orders",
        &Source::new("gateway.yaml", file),
    )
    .expect_err("weight 0");
    let text = error.to_string();
    println!("{text}");
    assert!(text.starts_with("gateway.yaml:5:"), "{text}");
    assert_eq!(error.key_path(), Some("services.orders.static[1].weight"));
}
