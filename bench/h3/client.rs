//! `h3-load`: an HTTP/3 load generator for the benchmark harness (bench/harness, scenario
//! `h3`), standing in for `h2load --h3`, which Debian's h2load is built without.
//!
//! ```text
//! h3-load --url https://127.0.0.1:PORT/ --ca certs/ca.pem --server-name localhost \
//!         --connections 10 --streams 10 --duration 5 [--warmup 1]
//! ```
//!
//! C QUIC connections (each from its own UDP socket, like separate clients), each keeping S
//! GET requests in flight for the duration, every response body read whole. One thread: a
//! current-thread tokio runtime (the harness pins the load generator to one core, as it does
//! wrk and h2load). TLS 1.3 (QUIC), ALPN `h3`, the server verified against `--ca` as
//! `--server-name`.
//!
//! Counted: the requests started after the warm-up, answered whole (any status), including
//! those still in flight when the duration ends (no new request starts after it; those are
//! awaited, at most 5 s each). Prints one JSON line on stdout:
//! `{"requests": N, "errors": E, "seconds": T, "rps": R, "p50_ms": .., "p99_ms": .., "status":
//! {"200": n, ...}}` where `errors` are requests (and connection attempts) that failed without
//! a whole response, `seconds` is from the end of the warm-up to the last counted response
//! (at least the duration) and latencies are from sending the request to the response's end.
//! Messages about errors (the first few) go to stderr. Bounded: a watchdog thread ends the
//! process after warm-up + duration + 10 s whatever happens, printing what it has (with
//! `"timed_out": true`) and exiting with status 3. Exit status 1: no request answered; 2: bad
//! arguments or CA file.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::{Request, Uri};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

const USAGE: &str = "usage: h3-load --url https://HOST:PORT/PATH --ca CA.pem --server-name NAME \
                     --connections C --streams S --duration SECS [--warmup SECS]";
/// A request not answered whole within this is an error (and its stream is dropped).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The process ends this long after warm-up + duration, whatever happens.
const BOUND_SLACK: Duration = Duration::from_secs(10);
/// Error messages written to stderr; later ones are only counted.
const MAX_MESSAGES: u64 = 5;

type Sender = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

struct Args {
    url: Uri,
    addr: SocketAddr,
    ca: PathBuf,
    server_name: String,
    connections: usize,
    streams: usize,
    duration: Duration,
    warmup: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        if flag == "help" {
            return Err(String::new());
        }
        let (key, value) = match flag.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => {
                let v = it.next().ok_or_else(|| format!("--{flag} needs a value"))?;
                (flag.to_owned(), v)
            }
        };
        values.insert(key, value);
    }
    let mut take = |key: &str| values.remove(key);
    let required = |v: Option<String>, key: &str| v.ok_or_else(|| format!("--{key} is required"));
    let number = |v: String, key: &str| {
        v.parse::<u64>()
            .map_err(|_| format!("--{key}: {v:?} is not a whole number"))
    };

    let url: Uri = required(take("url"), "url")?
        .parse()
        .map_err(|e| format!("--url: {e}"))?;
    if url.scheme_str() != Some("https") {
        return Err("--url must be https://".into());
    }
    let host = url.host().ok_or("--url has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_u16().unwrap_or(443);
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("--url: {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url: {host} has no address"))?;
    let ca = PathBuf::from(required(take("ca"), "ca")?);
    let server_name = required(take("server-name"), "server-name")?;
    let connections = number(required(take("connections"), "connections")?, "connections")?;
    let streams = number(required(take("streams"), "streams")?, "streams")?;
    let duration = number(required(take("duration"), "duration")?, "duration")?;
    let warmup = match take("warmup") {
        Some(v) => number(v, "warmup")?,
        None => 0,
    };
    if let Some(unknown) = values.keys().next() {
        return Err(format!("unknown option --{unknown}"));
    }
    if connections == 0 || streams == 0 || duration == 0 {
        return Err("--connections, --streams and --duration must be above 0".into());
    }
    Ok(Args {
        url,
        addr,
        ca,
        server_name,
        connections: usize::try_from(connections).map_err(|_| "--connections: too many")?,
        streams: usize::try_from(streams).map_err(|_| "--streams: too many")?,
        duration: Duration::from_secs(duration),
        warmup: Duration::from_secs(warmup),
    })
}

/// What the workers record. Counts are atomics so that the watchdog can read them without a
/// lock; latencies and statuses go under a mutex (one thread: never contended).
#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    errors: AtomicU64,
    messages: AtomicU64,
    detail: Mutex<Detail>,
}

#[derive(Default)]
struct Detail {
    /// Microseconds from sending the request to the end of the response body.
    latencies_us: Vec<u64>,
    status: BTreeMap<u16, u64>,
    last_done: Option<Instant>,
}

impl Stats {
    fn done(&self, latency: Duration, status: u16, at: Instant) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut d = self.detail.lock().unwrap_or_else(|e| e.into_inner());
        d.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        *d.status.entry(status).or_default() += 1;
        d.last_done = Some(d.last_done.map_or(at, |last| last.max(at)));
    }

    fn error(&self, what: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.message(what);
    }

    /// Writes `what` to stderr, if fewer than MAX_MESSAGES were written.
    fn message(&self, what: &str) {
        let n = self.messages.fetch_add(1, Ordering::Relaxed);
        if n < MAX_MESSAGES {
            eprintln!("h3-load: {what}");
        } else if n == MAX_MESSAGES {
            eprintln!("h3-load: (further errors only counted)");
        }
    }
}

/// The client side's TLS: TLS 1.3 with ring, the given CA as the only root, ALPN `h3` (as
/// tests/src/h3.rs builds it), and QUIC's transport with a 5 s idle timeout, so that a server
/// that does not answer fails the handshake well within the bound.
fn client_config(ca: &PathBuf) -> Result<quinn::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate", ca.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS 1.3: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| format!("QUIC client config: {e}"))?;
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(Duration::from_secs(5)).map_err(|e| e.to_string())?,
    ));
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Everything a connection task needs.
struct Plan {
    args: Args,
    quic: quinn::ClientConfig,
    /// Requests started from here on are counted.
    measure_from: Instant,
    /// No request starts from here on.
    end: Instant,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("h3-load: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let quic = match client_config(&args.ca) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("h3-load: {e}");
            return ExitCode::from(2);
        }
    };
    let stats = Arc::new(Stats::default());

    let bound = args.warmup + args.duration + BOUND_SLACK;
    let duration = args.duration;
    let watched = stats.clone();
    std::thread::spawn(move || {
        std::thread::sleep(bound);
        eprintln!(
            "h3-load: still running {} s after start: stopping",
            bound.as_secs()
        );
        let requests = watched.requests.load(Ordering::Relaxed);
        let secs = duration.as_secs_f64();
        println!(
            "{}",
            json!({
                "requests": requests,
                "errors": watched.errors.load(Ordering::Relaxed),
                "seconds": secs,
                "rps": requests as f64 / secs,
                "p50_ms": null,
                "p99_ms": null,
                "status": {},
                "timed_out": true,
            })
        );
        std::process::exit(3);
    });

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("h3-load: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let measure_from = runtime.block_on(run(args, quic, stats.clone()));
    drop(runtime);

    let detail = std::mem::take(&mut *stats.detail.lock().unwrap_or_else(|e| e.into_inner()));
    println!("{}", report(&stats, detail, duration, measure_from));
    if stats.requests.load(Ordering::Relaxed) == 0 {
        return ExitCode::from(1); // nothing answered: the JSON says why (errors)
    }
    ExitCode::SUCCESS
}

fn report(
    stats: &Stats,
    mut detail: Detail,
    duration: Duration,
    measure_from: Instant,
) -> serde_json::Value {
    let requests = stats.requests.load(Ordering::Relaxed);
    let seconds = match detail.last_done {
        Some(last) => (last - measure_from)
            .as_secs_f64()
            .max(duration.as_secs_f64()),
        None => duration.as_secs_f64(),
    };
    detail.latencies_us.sort_unstable();
    let pct = |p: usize| {
        let l = &detail.latencies_us;
        (!l.is_empty()).then(|| l[(l.len() * p / 100).min(l.len() - 1)] as f64 / 1000.0)
    };
    let status: serde_json::Map<String, serde_json::Value> = detail
        .status
        .iter()
        .map(|(s, n)| (s.to_string(), json!(n)))
        .collect();
    json!({
        "requests": requests,
        "errors": stats.errors.load(Ordering::Relaxed),
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "rps": (requests as f64 / seconds * 10.0).round() / 10.0,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "status": status,
    })
}

/// Runs every connection to the end; returns when counting began (the end of the warm-up).
async fn run(args: Args, quic: quinn::ClientConfig, stats: Arc<Stats>) -> Instant {
    let measure_from = Instant::now() + args.warmup;
    let plan = Arc::new(Plan {
        end: measure_from + args.duration,
        measure_from,
        args,
        quic,
    });
    let mut conns = JoinSet::new();
    for _ in 0..plan.args.connections {
        conns.spawn(connection(plan.clone(), stats.clone()));
    }
    while let Some(res) = conns.join_next().await {
        if let Err(e) = res {
            stats.error(&format!("connection task: {e}"));
        }
    }
    measure_from
}

/// One client: connects, runs `streams` workers on the connection until the end, and connects
/// again (after 100 ms) if the connection is lost before it.
async fn connection(plan: Arc<Plan>, stats: Arc<Stats>) {
    while Instant::now() < plan.end {
        let (endpoint, quic, driver, send) = match connect(&plan).await {
            Ok(c) => c,
            Err(e) => {
                stats.error(&format!("connect: {e}"));
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut workers = JoinSet::new();
        for _ in 0..plan.args.streams {
            workers.spawn(worker(
                plan.clone(),
                stats.clone(),
                send.clone(),
                quic.clone(),
            ));
        }
        drop(send);
        while let Some(res) = workers.join_next().await {
            if let Err(e) = res {
                stats.error(&format!("worker task: {e}"));
            }
        }
        // Every sender is gone: h3 closes the connection (H3_NO_ERROR) and the driver ends.
        let _ = timeout(Duration::from_secs(1), driver).await;
        quic.close(0u32.into(), b"done");
        let _ = timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    }
}

async fn connect(
    plan: &Plan,
) -> Result<
    (
        quinn::Endpoint,
        quinn::Connection,
        tokio::task::JoinHandle<()>,
        Sender,
    ),
    String,
> {
    // Its own UDP socket per connection: distinct source ports, like separate clients.
    let ip: IpAddr = match (plan.args.addr.ip().is_loopback(), plan.args.addr.is_ipv6()) {
        (true, false) => Ipv4Addr::LOCALHOST.into(),
        (true, true) => Ipv6Addr::LOCALHOST.into(),
        (false, false) => Ipv4Addr::UNSPECIFIED.into(),
        (false, true) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let bind = SocketAddr::new(ip, 0);
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| format!("UDP socket: {e}"))?;
    endpoint.set_default_client_config(plan.quic.clone());
    let quic = endpoint
        .connect(plan.args.addr, &plan.args.server_name)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| format!("QUIC handshake with {}: {e}", plan.args.addr))?;
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(quic.clone()))
        .await
        .map_err(|e| format!("HTTP/3 connection: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = driver.wait_idle().await;
    });
    Ok((endpoint, quic, driver, send))
}

/// Keeps one request in flight on the connection until the end.
async fn worker(plan: Arc<Plan>, stats: Arc<Stats>, mut send: Sender, quic: quinn::Connection) {
    loop {
        let started = Instant::now();
        if started >= plan.end {
            return;
        }
        let counted = started >= plan.measure_from;
        match timeout(REQUEST_TIMEOUT, request(&mut send, &plan.args.url)).await {
            Ok(Ok(status)) => {
                if counted {
                    let now = Instant::now();
                    stats.done(now - started, status, now);
                }
            }
            Ok(Err(e)) => {
                if counted {
                    stats.error(&format!("request: {e}"));
                }
                if let Some(reason) = quic.close_reason() {
                    // Every worker of the connection ends here; `connection` connects again.
                    stats.message(&format!("connection lost: {reason}"));
                    return;
                }
            }
            Err(_) => {
                if counted {
                    stats.error(&format!(
                        "request: no whole response within {} s",
                        REQUEST_TIMEOUT.as_secs()
                    ));
                }
            }
        }
    }
}

/// One GET, the whole body read; the response's status.
async fn request(send: &mut Sender, url: &Uri) -> Result<u16, String> {
    let req = Request::get(url.clone())
        .body(())
        .map_err(|e| format!("request: {e}"))?;
    let mut stream = send
        .send_request(req)
        .await
        .map_err(|e| format!("send: {e}"))?;
    stream.finish().await.map_err(|e| format!("finish: {e}"))?;
    let res = stream
        .recv_response()
        .await
        .map_err(|e| format!("response head: {e}"))?;
    while let Some(mut chunk) = stream
        .recv_data()
        .await
        .map_err(|e| format!("response body: {e}"))?
    {
        chunk.advance(chunk.remaining());
    }
    Ok(res.status().as_u16())
}
