//! Issue 16's figures against a running demo topology (`gatehouse-topology up`), through the
//! edge over HTTPS/2: publish-to-202 latency of `POST /api/async/orders` (one request at a time,
//! each with its own `Idempotency-Key`), the same at a concurrency of 8, a plain proxied GET and
//! a `GET /api/jobs/{id}` for comparison, and the rate of events one client receives through
//! `GET /api/events/orders` while they are published straight into JetStream.
//!
//! Run by bench/events.sh: `events-bench STATE_DIR [REQUESTS] [EVENTS]`; prints a Markdown
//! table and one JSON line (`RESULT {...}`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

type Https = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let state = PathBuf::from(
        args.next()
            .expect("usage: events-bench STATE_DIR [REQUESTS] [EVENTS]"),
    );
    let requests: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let topo: Value =
        serde_json::from_slice(&std::fs::read(state.join("topology.json")).expect("topology.json"))
            .expect("topology.json is JSON");
    let edge = topo["processes"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "edge"))
        .and_then(|p| p["listen"]["https"].as_str())
        .expect("the edge's address")
        .to_owned();
    let broker = topo["broker"]
        .as_str()
        .expect("a broker (nats-server installed)")
        .to_owned();
    let cert_dir = PathBuf::from(topo["cert_dir"].as_str().expect("cert_dir"));
    let base = format!("https://{edge}");
    let c = client(&cert_dir.join("ca.pem"));
    let token = token(&c, &base).await;

    // Warm up: connections, the JIT-free paths, the broker's stream files.
    run_posts(&c, &base, &token, "warm", 200, 1).await;
    let seq = run_posts(&c, &base, &token, "seq", requests, 1).await;
    let conc = run_posts(&c, &base, &token, "c8", requests, 8).await;
    let job = seq.last_job.clone();
    let jobs = run_gets(&c, &format!("{base}/api/jobs/{job}"), &token, requests).await;
    let proxied = run_gets(
        &c,
        &format!("{base}/api/catalog/products/1001"),
        &token,
        requests,
    )
    .await;
    let sse = sse_rate(&c, &base, &token, &broker, &state, &cert_dir, events).await;

    println!("| measurement | n | p50 ms | p90 ms | p99 ms | max ms | rate |");
    println!("|---|---|---|---|---|---|---|");
    for (name, s) in [
        (
            "POST /api/async/orders, 1 at a time (publish → ack → 202)",
            &seq.stats,
        ),
        ("POST /api/async/orders, 8 concurrent", &conc.stats),
        ("GET /api/jobs/{id} (bucket read)", &jobs),
        ("GET /api/catalog/products/1001 (proxied, cached)", &proxied),
    ] {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} req/s |",
            s.n, s.p50, s.p90, s.p99, s.max, s.rate
        );
    }
    println!(
        "| SSE to one client: {events} events published into JetStream | {} | | | | | {:.0} events/s (published at {:.0}/s) |",
        sse.received, sse.received_rate, sse.published_rate
    );
    println!(
        "| SSE to one client: the same {events} events replayed from the stream (`Last-Event-ID`) | {} | | | | | {:.0} events/s |",
        sse.replayed, sse.replay_rate
    );
    let out = json!({
        "post_seq": seq.stats.json(), "post_c8": conc.stats.json(), "job_get": jobs.json(), "proxied_get": proxied.json(),
        "sse": {"events": events, "received": sse.received, "events_per_s": sse.received_rate, "published_per_s": sse.published_rate, "replayed": sse.replayed, "replay_events_per_s": sse.replay_rate},
    });
    println!("RESULT {out}");
}

fn client(ca: &Path) -> Https {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca.pem") {
        roots.add(cert.expect("cert")).expect("root");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    // No Nagle: a POST's HEADERS and DATA frames are two small writes, and the second would
    // wait for the first's (delayed) ACK: 40 ms on every request that has a body.
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http2()
        .wrap_connector(tcp);
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(https)
}

async fn token(c: &Https, base: &str) -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode("web-app:web-app-dev-secret");
    let req = Request::post(format!("{base}/oauth/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"grant_type=client_credentials",
        )))
        .expect("request");
    let res = c.request(req).await.expect("token");
    let body = res.into_body().collect().await.expect("body").to_bytes();
    let v: Value = serde_json::from_slice(&body).expect("json");
    v["access_token"].as_str().expect("access_token").to_owned()
}

struct Stats {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    rate: f64,
}

impl Stats {
    fn of(mut ms: Vec<f64>, wall: Duration) -> Stats {
        ms.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
        Stats {
            n: ms.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: *ms.last().unwrap_or(&0.0),
            rate: ms.len() as f64 / wall.as_secs_f64(),
        }
    }

    fn json(&self) -> Value {
        json!({"n": self.n, "p50_ms": self.p50, "p90_ms": self.p90, "p99_ms": self.p99, "max_ms": self.max, "per_s": self.rate})
    }
}

struct Posts {
    stats: Stats,
    last_job: String,
}

async fn run_posts(
    c: &Https,
    base: &str,
    token: &str,
    tag: &str,
    n: usize,
    concurrency: usize,
) -> Posts {
    let run = std::process::id();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (c, base, token, tag) = (c.clone(), base.to_owned(), token.to_owned(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut ms = Vec::new();
            let mut job = String::new();
            for i in (w..n).step_by(concurrency) {
                let req = Request::post(format!("{base}/api/async/orders"))
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .header("idempotency-key", format!("bench-{run}-{tag}-{i}"))
                    .body(Full::new(Bytes::from_static(
                        br#"{"productId":"1001","quantity":1}"#,
                    )))
                    .expect("request");
                let t = Instant::now();
                let res = c.request(req).await.expect("answer");
                let status = res.status();
                let body = res.into_body().collect().await.expect("body").to_bytes();
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(
                    status,
                    StatusCode::ACCEPTED,
                    "{}",
                    String::from_utf8_lossy(&body)
                );
                let v: Value = serde_json::from_slice(&body).expect("json");
                job = v["job_id"].as_str().unwrap_or_default().to_owned();
            }
            (ms, job)
        }));
    }
    let (mut all, mut last_job) = (Vec::new(), String::new());
    for t in tasks {
        let (ms, job) = t.await.expect("worker");
        all.extend(ms);
        last_job = job;
    }
    Posts {
        stats: Stats::of(all, started.elapsed()),
        last_job,
    }
}

async fn run_gets(c: &Https, url: &str, token: &str, n: usize) -> Stats {
    let started = Instant::now();
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let req = Request::get(url)
            .header("authorization", format!("Bearer {token}"))
            .body(Full::default())
            .expect("request");
        let t = Instant::now();
        let res = c.request(req).await.expect("answer");
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        res.into_body().collect().await.expect("body");
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Stats::of(ms, started.elapsed())
}

struct SseRate {
    received: usize,
    received_rate: f64,
    published_rate: f64,
    replayed: usize,
    replay_rate: f64,
}

/// Opens the event stream, then publishes `n` events for `web-app` as `orders` (whose password
/// is in the generated nats.conf) and counts what arrives.
async fn sse_rate(
    c: &Https,
    base: &str,
    token: &str,
    broker: &str,
    state: &Path,
    certs: &Path,
    n: usize,
) -> SseRate {
    let req = Request::get(format!("{base}/api/events/orders"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .expect("request");
    let res = c.request(req).await.expect("stream");
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    // The retry hint arrives once the stream is open.
    body.frame().await.expect("first frame").expect("ok");

    let conf = std::fs::read_to_string(state.join("nats/nats.conf")).expect("nats.conf");
    let password = conf
        .lines()
        .find(|l| l.contains("user: orders"))
        .and_then(|l| l.split("password: \"").nth(1))
        .and_then(|l| l.split('"').next())
        .expect("the orders password")
        .to_owned();
    let tls = gatehouse_common::tls::client_config(Some(&certs.join("ca.pem")), None).expect("tls");
    let nats = async_nats::ConnectOptions::with_user_and_password("orders".into(), password)
        .require_tls(true)
        .tls_client_config(tls)
        .connect(broker)
        .await
        .expect("connect as orders");
    let js = async_nats::jetstream::new(nats);
    // The stream's position now: the replay below starts right after it.
    let mut events_stream = js.get_stream("ORDER_EVENTS").await.expect("stream");
    let before = events_stream
        .info()
        .await
        .expect("info")
        .state
        .last_sequence;
    let counter = tokio::spawn(count_ticks(body, n));
    let started = Instant::now();
    let mut acks = Vec::with_capacity(256);
    for i in 0..n {
        let mut h = async_nats::HeaderMap::new();
        h.insert("x-gatehouse-subject", "web-app");
        h.insert("Gatehouse-Event", "bench.tick");
        let ack = js
            .publish_with_headers(
                "orders.events.bench",
                h,
                Bytes::from(format!("{{\"n\":{i}}}")),
            )
            .await
            .expect("publish");
        acks.push(ack);
        if acks.len() == 256 {
            for a in acks.drain(..) {
                a.await.expect("ack");
            }
        }
    }
    for a in acks.drain(..) {
        a.await.expect("ack");
    }
    let published = started.elapsed();
    let (received, last) = counter.await.expect("counter");

    // The same events again, from the stream: how fast one client is sent what is already
    // stored (`Last-Event-ID` just before them), with no publisher to wait for.
    let req = Request::get(format!("{base}/api/events/orders"))
        .header("authorization", format!("Bearer {token}"))
        .header("last-event-id", before.to_string())
        .body(Full::default())
        .expect("request");
    let replay_started = Instant::now();
    let res = c.request(req).await.expect("replay stream");
    assert_eq!(res.status(), StatusCode::OK);
    let (replayed, replay_last) = count_ticks(res.into_body(), n).await;
    SseRate {
        received,
        received_rate: received as f64 / last.duration_since(started).as_secs_f64(),
        published_rate: n as f64 / published.as_secs_f64(),
        replayed,
        replay_rate: replayed as f64 / replay_last.duration_since(replay_started).as_secs_f64(),
    }
}

/// Counts `bench.tick` events on `body` until `n` arrived (or the stream ends, fails or is quiet
/// for 10 s): how many, and when the last one came.
async fn count_ticks(mut body: hyper::body::Incoming, n: usize) -> (usize, Instant) {
    let mut seen = 0usize;
    let mut buf = Vec::new();
    let mut last = Instant::now();
    while seen < n {
        let frame = match tokio::time::timeout(Duration::from_secs(10), body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) => {
                eprintln!("events-bench: the stream failed after {seen} events: {e:?}");
                break;
            }
            Ok(None) => {
                eprintln!("events-bench: the stream ended after {seen} events");
                break;
            }
            Err(_) => {
                eprintln!("events-bench: nothing for 10s after {seen} events");
                break;
            }
        };
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            seen += buf.windows(10).filter(|w| w == b"bench.tick").count();
            // Keep the tail that may hold a split marker.
            let keep = buf.len().saturating_sub(9);
            buf.drain(..keep);
            last = Instant::now();
        }
    }
    (seen, last)
}
