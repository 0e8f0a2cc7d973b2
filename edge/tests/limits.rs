//! Rate limiting through real sockets: 10 rps with burst 20 lets 20 of a burst of 100 through,
//! answers the rest 429 with `Retry-After`, carries the RateLimit headers on every response,
//! and keeps keys independent.

mod support;

use gatehouse_common::body::empty;
use gatehouse_tests::{Backend, Client, collect};
use http::{Request, StatusCode};
use support::*;

const EDGE: &str = r#"  rate_limits:
    per-tenant:
      quota: 10
      window: 1s
      burst: 20
      key: "header:x-tenant"
  policies:
    - name: api
      path_prefix: /api
      auth: none
      rate_limit: per-tenant
    - name: free
      path_prefix: /free
      auth: none
"#;

async fn burst(edge: &Edge, tenant: &'static str, n: usize) -> Vec<(StatusCode, http::HeaderMap)> {
    let client = Client::h2c();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let client = client.clone();
        let url = format!("{}/api/x", edge.base);
        set.spawn(async move {
            let req = Request::get(url)
                .header("x-tenant", tenant)
                .body(empty())
                .expect("req");
            let (s, h, _) = collect(client.send(req).await).await;
            (s, h)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("join"));
    }
    out
}

#[tokio::test]
async fn burst_of_100_lets_20_through_and_keys_are_independent() {
    let backend = Backend::new().route("/", "ok").run().await;
    let edge = start(backend, EDGE).await;

    let results = burst(&edge, "a", 100).await;
    let ok: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert!((20..=21).contains(&ok.len()), "{} passed", ok.len());
    for (status, h) in &results {
        assert_eq!(h["ratelimit-policy"], "\"per-tenant\";q=10;w=1", "{status}");
        assert!(
            h["ratelimit"]
                .to_str()
                .is_ok_and(|v| v.starts_with("\"per-tenant\";r=")),
            "{:?}",
            h["ratelimit"]
        );
        if *status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(h["retry-after"], "1");
            assert_eq!(h["content-type"], "application/problem+json");
        } else {
            assert_eq!(*status, StatusCode::OK);
        }
    }
    assert_eq!(edge.backend.count(), ok.len());

    // Tenant b has its own bucket.
    let b = burst(&edge, "b", 20).await;
    assert!(b.iter().all(|(s, _)| *s == StatusCode::OK));
    // An unlimited policy carries no RateLimit headers.
    let (status, h, _) = edge.send("GET", "/free", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.get("ratelimit").is_none());
}

/// A limit of 2 per minute (nothing refills during the test), then `policies` (YAML, indented).
fn two_per_minute(quota: u32, policies: &str) -> String {
    format!(
        "  rate_limits:\n    slow:\n      quota: {quota}\n      window: 1m\n      burst: 2\n      \
         key: \"header:x-tenant\"\n  policies:\n{policies}"
    )
}

const ONE_POLICY: &str = "    - { name: api, path_prefix: /api, auth: none, rate_limit: slow }\n";

async fn reload(edge: &Edge, section: &str) -> bool {
    let yaml = config(&edge.backend, section);
    let loaded = gatehouse_common::config::parse::<gatehouse_common::settings::ProxySettings>(
        "edge.yaml",
        &yaml,
    )
    .expect("parse");
    edge.running.reload_from(loaded).await.is_ok()
}

async fn status(edge: &Edge) -> StatusCode {
    edge.send("GET", "/api/x", &[("x-tenant", "t")]).await.0
}

/// A reload keeps a limit's buckets while its settings are unchanged, also after a refused
/// reload that changed them (that plan never served, so it must not take the buckets' place);
/// a reload that does change them starts afresh.
#[tokio::test]
async fn buckets_survive_reloads_including_after_a_refused_one() {
    let backend = Backend::new().route("/", "ok").run().await;
    let edge = start(backend, &two_per_minute(2, ONE_POLICY)).await;
    assert_eq!(status(&edge).await, StatusCode::OK);
    assert_eq!(status(&edge).await, StatusCode::OK);
    assert_eq!(status(&edge).await, StatusCode::TOO_MANY_REQUESTS);

    // Another policy added: the bucket is the same one.
    let two_policies =
        format!("{ONE_POLICY}    - {{ name: free, path_prefix: /free, auth: none }}\n");
    assert!(reload(&edge, &two_per_minute(2, &two_policies)).await);
    assert_eq!(status(&edge).await, StatusCode::TOO_MANY_REQUESTS);

    // A new quota in a file refused for another reason (a duplicate policy name).
    let duplicate = format!("{ONE_POLICY}{ONE_POLICY}");
    assert!(!reload(&edge, &two_per_minute(5, &duplicate)).await);
    assert_eq!(status(&edge).await, StatusCode::TOO_MANY_REQUESTS);
    assert!(reload(&edge, &two_per_minute(2, ONE_POLICY)).await);
    assert_eq!(
        status(&edge).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the bucket was forgotten after a refused reload"
    );

    // A new quota that loads: a new bucket.
    assert!(reload(&edge, &two_per_minute(3, ONE_POLICY)).await);
    assert_eq!(status(&edge).await, StatusCode::OK);
}
