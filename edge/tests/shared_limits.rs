//! Limits shared by edge replicas through a real `redis-server` started by each test: two
//! edges draw from one bucket; when Redis dies each falls back to its share of the quota (or
//! answers 503 with `on_store_failure: deny`) and counts it; when Redis is back the limit is
//! shared again. TLS and an ACL user to Redis; settings that cannot work are refused.

mod support;

use std::time::{Duration, Instant};

use gatehouse_common::body::empty;
use gatehouse_common::config;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::redis::{RedisConfig, RedisServer};
use gatehouse_tests::{Backend, Client, collect};
use http::{Request, StatusCode};
use support::*;

/// 10/s, burst 10, keyed by `x-tenant`, shared on `url`; two replicas. The timeout is 300ms,
/// not the default 25ms: on a busy CI machine a debug build on one test thread may need more,
/// and a check that times out would make the counts below lie.
fn section(url: &str, on_failure: &str, extra_redis: &str) -> String {
    format!(
        "  redis:\n    url: {url}\n    replicas: 2\n    timeout: 300ms\n{extra_redis}\
         \x20 rate_limits:\n    shared:\n      quota: 10\n      window: 1s\n      burst: 10\n\
         \x20     key: \"header:x-tenant\"\n      shared: redis\n      on_store_failure: {on_failure}\n\
         \x20 policies:\n    - name: api\n      path_prefix: /api\n      auth: none\n\
         \x20     rate_limit: shared\n"
    )
}

/// An edge with `section`, `${REDIS_PASSWORD}` set to `password`.
async fn edge_with(section: &str, password: &'static str) -> Edge {
    let backend = Backend::new().route("/", "ok").run().await;
    start_with_env(backend, section, |k| {
        (k == "REDIS_PASSWORD").then(|| password.to_owned())
    })
    .await
}

async fn edge(url: &str, on_failure: &str) -> Edge {
    let backend = Backend::new().route("/", "ok").run().await;
    start(backend, &section(url, on_failure, "")).await
}

/// The value of the series `name` (labels included, e.g. `x{a="b"}`) on the admin port;
/// `None` when there is no such series.
async fn metric(edge: &Edge, name: &str) -> Option<f64> {
    let url = format!("http://{}/metrics", edge.running.admin_addr);
    let req = Request::get(url).body(empty()).expect("req");
    let (_, _, body) = collect(Client::http1().send(req).await).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `gatehouse_rate_limit_store_up` of the edge's one store (labelled with its URL).
async fn store_up(edge: &Edge) -> Option<f64> {
    let url = format!("http://{}/metrics", edge.running.admin_addr);
    let req = Request::get(url).body(empty()).expect("req");
    let (_, _, body) = collect(Client::http1().send(req).await).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines().find_map(|l| {
        l.strip_prefix("gatehouse_rate_limit_store_up{store=\"")?
            .rsplit(' ')
            .next()?
            .parse()
            .ok()
    })
}

async fn fallbacks(edge: &Edge, decided_by: &str) -> f64 {
    let series = format!(
        "gatehouse_rate_limit_store_fallbacks_total{{limit=\"shared\",decided_by=\"{decided_by}\"}}"
    );
    metric(edge, &series).await.unwrap_or(0.0)
}

/// The ACL rules docs/edge.md gives for the edge's Redis user.
const ACL_RULES: &str =
    "~gatehouse:rl:* +evalsha +eval +script|load +get +set +time +hello +auth +ping";

/// Waits until the edge's store gauge reads `up` (1 or 0), sending a request every 50 ms with
/// tenant `probe` (a down store is tried again only by a check).
async fn wait_store(edge: &Edge, up: f64) {
    for _ in 0..100 {
        if store_up(edge).await == Some(up) {
            return;
        }
        edge.send("GET", "/api/probe", &[("x-tenant", "probe")])
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gatehouse_rate_limit_store_up never read {up}");
}

/// `n` concurrent requests for `tenant`, spread over `edges` in turn: (statuses, how long
/// the whole burst took).
async fn burst(edges: &[&Edge], tenant: &'static str, n: usize) -> (Vec<StatusCode>, Duration) {
    let client = Client::h2c();
    let mut set = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..n {
        let client = client.clone();
        let url = format!("{}/api/x", edges[i % edges.len()].base);
        set.spawn(async move {
            let req = Request::get(url)
                .header("x-tenant", tenant)
                .body(empty())
                .expect("req");
            let (status, headers, _) = collect(client.send(req).await).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry: u64 = headers["retry-after"]
                    .to_str()
                    .unwrap_or("")
                    .parse()
                    .unwrap_or(0);
                assert!(retry >= 1, "Retry-After {retry}");
            }
            if status != StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(headers["ratelimit-policy"], "\"shared\";q=10;w=1");
            }
            status
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("join"));
    }
    (out, started.elapsed())
}

fn passed(statuses: &[StatusCode]) -> usize {
    statuses.iter().filter(|s| **s == StatusCode::OK).count()
}

/// At most `burst` plus what refilled (10/s) while the burst ran, and one for rounding.
fn at_most(burst: usize, took: Duration) -> usize {
    burst + 1 + (took.as_secs_f64() * 10.0) as usize
}

#[tokio::test]
async fn two_edges_share_one_bucket_fall_back_to_their_share_and_share_again() {
    let Some(mut redis) = RedisServer::start(RedisConfig::default()).await else {
        return;
    };
    let a = edge(&redis.url(), "local").await;
    let b = edge(&redis.url(), "local").await;
    wait_store(&a, 1.0).await;
    wait_store(&b, 1.0).await;

    // One bucket of 10 for both replicas: not 10 each.
    let (statuses, took) = burst(&[&a, &b], "t1", 40).await;
    let n = passed(&statuses);
    eprintln!("shared: {n} of 40 passed over two edges in {took:?}");
    assert!(
        (10..=at_most(10, took)).contains(&n),
        "{n} of 40 passed in {took:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| matches!(*s, StatusCode::OK | StatusCode::TOO_MANY_REQUESTS)),
        "{statuses:?}"
    );
    assert_eq!(fallbacks(&a, "local").await, 0.0);

    // Redis dies: each replica limits alone with half the quota (replicas: 2), at once.
    redis.stop().await;
    let killed = Instant::now();
    let (statuses, took) = burst(&[&a], "t2", 20).await;
    let switch = killed.elapsed();
    let n = passed(&statuses);
    assert!(
        (5..=at_most(5, took)).contains(&n),
        "{n} of 20 passed in {took:?}"
    );
    assert!(
        !statuses.contains(&StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    eprintln!("fail-open: 20 requests answered {switch:?} after Redis was killed");
    assert_eq!(store_up(&a).await, Some(0.0));
    assert!(fallbacks(&a, "local").await >= 20.0);

    // Redis is back (empty): the limit is shared again, nothing decided locally. b never saw
    // the outage: its first check finds the connection broken and reconnects.
    redis.restart().await;
    wait_store(&a, 1.0).await;
    b.send("GET", "/api/probe", &[("x-tenant", "probe")]).await;
    wait_store(&b, 1.0).await;
    let before = fallbacks(&a, "local").await + fallbacks(&b, "local").await;
    let (statuses, took) = burst(&[&a, &b], "t3", 40).await;
    let n = passed(&statuses);
    assert!(
        (10..=at_most(10, took)).contains(&n),
        "{n} of 40 passed in {took:?}"
    );
    let after = fallbacks(&a, "local").await + fallbacks(&b, "local").await;
    assert_eq!(
        before, after,
        "checks decided without Redis after it came back"
    );
}

#[tokio::test]
async fn deny_answers_503_while_the_store_is_down() {
    let Some(mut redis) = RedisServer::start(RedisConfig::default()).await else {
        return;
    };
    let e = edge(&redis.url(), "deny").await;
    wait_store(&e, 1.0).await;
    let (status, headers, _) = e.send("GET", "/api/x", &[("x-tenant", "t")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["ratelimit"], "\"shared\";r=9;t=1");

    redis.stop().await;
    let (status, headers, body) = e.send("GET", "/api/x", &[("x-tenant", "t")]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(headers["retry-after"], "1");
    assert!(body.contains("rate-limit-unavailable"), "{body}");
    assert!(!body.contains("127.0.0.1"), "{body}");
    assert!(fallbacks(&e, "deny").await >= 1.0);
    // Still 503 while down, decided at once: 5 checks waiting for the 300ms timeout each
    // would take 1.5 s.
    let started = Instant::now();
    for _ in 0..5 {
        let (status, _, _) = e.send("GET", "/api/x", &[("x-tenant", "t")]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn tls_and_an_acl_user_to_redis() {
    let pki = gatehouse_certs::test_util::TestPki::new("gatehouse.test");
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = pki
        .server(&["localhost", "127.0.0.1"])
        .write_to(dir.path(), "redis");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).expect("write CA");
    let Some(redis) = RedisServer::start(RedisConfig {
        tls: Some((cert, key, ca.clone())),
        // Only what docs/edge.md says the edge needs.
        users: vec![("edge".into(), "s3cret-redis".into(), ACL_RULES.into())],
    })
    .await
    else {
        return;
    };
    let url = redis.url().replace("127.0.0.1", "localhost");
    let redis_keys = format!(
        "    username: edge\n    password: ${{REDIS_PASSWORD}}\n    tls: {{ ca: {} }}\n",
        ca.display()
    );
    let yaml = section(&url, "local", &redis_keys);
    let good = edge_with(&yaml, "s3cret-redis").await;
    wait_store(&good, 1.0).await;
    let (statuses, took) = burst(&[&good], "t", 15).await;
    let n = passed(&statuses);
    assert!(
        (10..=at_most(10, took)).contains(&n),
        "{n} of 15 in {took:?}"
    );
    assert_eq!(fallbacks(&good, "local").await, 0.0);
    // The password is not shown by /config.
    let req = Request::get(format!("http://{}/config", good.running.admin_addr))
        .body(empty())
        .expect("req");
    let (_, _, body) = collect(Client::http1().send(req).await).await;
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("\"redis\""), "{body}");
    assert!(!body.contains("s3cret-redis"), "{body}");

    // A wrong password: the store never answers, every check falls back (and is counted).
    let bad = edge_with(&yaml, "wrong").await;
    let (status, _, _) = bad.send("GET", "/api/x", &[("x-tenant", "t")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(store_up(&bad).await, Some(0.0));
    assert!(fallbacks(&bad, "local").await >= 1.0);
}

/// Shared-limit settings that cannot work are refused at load, naming the key.
#[tokio::test]
async fn bad_shared_limit_settings_are_refused_with_the_key() {
    let backend = Backend::new().route("/", "ok").run().await;
    let limit = "  rate_limits:\n    l:\n      quota: 5\n";
    let policy =
        "  policies:\n    - name: p\n      path_prefix: /\n      auth: none\n      rate_limit: l\n";
    let table = [
        (
            format!("{limit}      shared: redis\n{policy}"),
            "edge.rate_limits.l.shared",
        ),
        (
            format!("{limit}      on_store_failure: deny\n{policy}"),
            "edge.rate_limits.l.on_store_failure",
        ),
        (
            format!("  redis: {{ url: \"redis://:pw@127.0.0.1:6379\" }}\n{limit}{policy}"),
            "edge.redis.url",
        ),
        (
            format!("  redis: {{ url: \"http://127.0.0.1:6379\" }}\n{limit}{policy}"),
            "edge.redis.url",
        ),
        (
            format!(
                "  redis: {{ url: \"redis://127.0.0.1:6379\", tls: {{ ca: /x.pem }} }}\n{limit}{policy}"
            ),
            "edge.redis.tls",
        ),
        (
            format!("  redis: {{ url: \"redis://127.0.0.1:6379\", replicas: 0 }}\n{limit}{policy}"),
            "edge.redis.replicas",
        ),
        (
            format!("  redis: {{ url: \"redis://127.0.0.1:6379\", timeout: 0s }}\n{limit}{policy}"),
            "edge.redis.timeout",
        ),
        (
            format!(
                "  redis: {{ url: \"redis://127.0.0.1:6379\" }}\n  rate_limits:\n    l:\n      \
                 quota: 2000000\n      shared: redis\n{policy}"
            ),
            "edge.rate_limits.l.quota",
        ),
        (
            format!(
                "  redis: {{ url: \"redis://127.0.0.1:6379\" }}\n{limit}      shared: memcached\n{policy}"
            ),
            "shared",
        ),
    ];
    for (section, key) in table {
        let yaml = config(&backend, &section);
        let err = match config::parse::<ProxySettings>("edge.yaml", &yaml) {
            Err(e) => e.to_string(),
            Ok(loaded) => match gatehouse_edge::run(loaded, None).await {
                Ok(_) => panic!("{section} was accepted"),
                Err(e) => e.to_string(),
            },
        };
        assert!(err.contains(key), "{key}: {err}");
        assert!(err.contains("edge.yaml:"), "{err}");
    }
}

/// A store that answers too slowly is as good as down: the check gives up after
/// `edge.redis.timeout` and the local share decides.
#[tokio::test]
async fn a_slow_store_times_out_and_the_local_share_decides() {
    let Some(redis) = RedisServer::start(RedisConfig::default()).await else {
        return;
    };
    let e = edge(&redis.url(), "local").await;
    wait_store(&e, 1.0).await;
    // Redis holds every client's commands for 2 s.
    let client = ::redis::Client::open(redis.url()).expect("client");
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = ::redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .expect("CLIENT PAUSE");
    let before = fallbacks(&e, "local").await;
    let started = Instant::now();
    let (status, _, _) = e.send("GET", "/api/x", &[("x-tenant", "t")]).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(
        took < Duration::from_secs(1),
        "waited {took:?} for a paused Redis"
    );
    assert_eq!(fallbacks(&e, "local").await, before + 1.0);
    assert_eq!(store_up(&e).await, Some(0.0));
}

/// `url: "${REDIS_URL:-}"` unset: no Redis, the limit counts in this process with its whole
/// quota (not the fallback share), and nothing is counted as a fallback.
#[tokio::test]
async fn an_empty_url_limits_in_this_process_alone() {
    let e = edge("\"\"", "local").await;
    let (statuses, took) = burst(&[&e], "t", 15).await;
    let n = passed(&statuses);
    assert!(
        (10..=at_most(10, took)).contains(&n),
        "{n} of 15 in {took:?}"
    );
    assert_eq!(fallbacks(&e, "local").await, 0.0);
    assert_eq!(store_up(&e).await, None, "a store series without a store");
}

/// A client-chosen key of kilobytes costs Redis a digest-sized key, and still has its own
/// bucket.
#[tokio::test]
async fn long_keys_are_stored_as_a_digest() {
    let Some(redis) = RedisServer::start(RedisConfig::default()).await else {
        return;
    };
    let e = edge(&redis.url(), "local").await;
    wait_store(&e, 1.0).await;
    let long = "k".repeat(4000);
    for _ in 0..3 {
        let (status, headers, _) = e.send("GET", "/api/x", &[("x-tenant", &long)]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers.contains_key("ratelimit"));
    }
    let client = ::redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("gatehouse:rl:shared:*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    let long_key: Vec<&String> = keys.iter().filter(|k| k.contains("sha256:")).collect();
    assert_eq!(long_key.len(), 1, "{keys:?}");
    assert!(long_key[0].len() < 100, "{}", long_key[0]);
    // Its bucket took 3 of 10 tokens.
    let (_, headers, _) = e.send("GET", "/api/x", &[("x-tenant", &long)]).await;
    let state = headers["ratelimit"].to_str().unwrap_or_default().to_owned();
    assert!(state.starts_with("\"shared\";r=6"), "{state}");
}

/// A store that refuses the edge's AUTH for a while (user disabled, its connections killed)
/// is given up on and tried again with a new connection: the edge shares again once the user
/// is back, without a restart or a reload.
#[tokio::test]
async fn a_refused_login_is_retried_with_a_new_connection() {
    let Some(redis) = RedisServer::start(RedisConfig {
        tls: None,
        users: vec![
            ("edge".into(), "edge-pw".into(), ACL_RULES.into()),
            ("admin".into(), "admin-pw".into(), "~* +@all".into()),
        ],
    })
    .await
    else {
        return;
    };
    let e = edge_with(
        &section(
            &redis.url(),
            "local",
            "    username: edge\n    password: ${REDIS_PASSWORD}\n",
        ),
        "edge-pw",
    )
    .await;
    wait_store(&e, 1.0).await;
    let admin_url = redis.url().replace("redis://", "redis://admin:admin-pw@");
    let client = ::redis::Client::open(admin_url).expect("client");
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    for args in [
        &["ACL", "SETUSER", "edge", "off"][..],
        &["CLIENT", "KILL", "USER", "edge"][..],
    ] {
        let _: ::redis::Value = ::redis::cmd(args[0])
            .arg(&args[1..])
            .query_async(&mut admin)
            .await
            .expect("admin command");
    }
    wait_store(&e, 0.0).await;
    let (status, _, _) = e.send("GET", "/api/x", &[("x-tenant", "t")]).await;
    assert_eq!(status, StatusCode::OK, "the local share decides meanwhile");

    let _: ::redis::Value = ::redis::cmd("ACL")
        .arg(&["SETUSER", "edge", "on"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER on");
    wait_store(&e, 1.0).await;
}
