//! Concurrent misses on one key: one upstream call, followers answered from what the leader
//! stored, and every way a follower stops waiting. On Tokio's paused clock, so the waits are
//! exact and instant.

use std::time::Duration;

use http::{Method, StatusCode};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::*;

/// One answer of a burst: `x-cache`, status, body, and when it came.
#[derive(Debug)]
struct Answer {
    x_cache: String,
    status: StatusCode,
    body: String,
    after: Duration,
}

/// Sends `reqs` at once (in this order), each with `deadline`; the answers in the same order.
async fn burst(
    cache: &RouteCache,
    up: &Upstream,
    reqs: Vec<http::request::Parts>,
    deadline: Option<Duration>,
) -> Vec<Answer> {
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for (i, r) in reqs.into_iter().enumerate() {
        let (cache, up) = (cache.clone(), up.clone());
        tasks.spawn(async move {
            let res = cache
                .serve(&r, Some("api.test"), deadline, || up.fetch(&r))
                .await
                .expect("answered");
            let (x_cache, status, body) = read(res).await;
            let after = start.elapsed();
            (
                i,
                Answer {
                    x_cache,
                    status,
                    body,
                    after,
                },
            )
        });
    }
    let mut answers: Vec<(usize, Answer)> = tasks.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, a)| a).collect()
}

fn gets(n: usize, uri: &str) -> Vec<http::request::Parts> {
    (0..n).map(|_| get(uri)).collect()
}

fn count(answers: &[Answer], x_cache: &str) -> usize {
    answers.iter().filter(|a| a.x_cache == x_cache).count()
}

#[tokio::test(start_paused = true)]
async fn fifty_cold_requests_make_one_fetch() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60").delayed(Duration::from_millis(100));
    let answers = burst(&cache, &up, gets(50, "/hot"), None).await;
    assert_eq!(up.calls(), 1);
    assert!(
        answers
            .iter()
            .all(|a| a.status == StatusCode::OK && a.body == "call 1"),
        "{answers:?}"
    );
    assert_eq!(answers[0].x_cache, "MISS");
    assert_eq!((count(&answers, "MISS"), count(&answers, "HIT")), (1, 49));
    assert!(
        answers
            .iter()
            .all(|a| a.after == Duration::from_millis(100)),
        "{answers:?}"
    );
    let stats = cache.store().stats();
    assert_eq!(
        (stats.misses, stats.hits, stats.coalesced, stats.stores),
        (1, 49, 49, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn followers_fetch_for_themselves_when_nothing_was_stored() {
    for cache_control in ["private, max-age=60", "no-store", "max-age=0"] {
        let (_, cache) = setup(&CacheSettings::default());
        let up = Upstream::counting(cache_control).delayed(Duration::from_millis(100));
        let answers = burst(&cache, &up, gets(10, "/p"), None).await;
        assert_eq!(up.calls(), 10, "{cache_control}");
        assert_eq!(count(&answers, "MISS"), 10, "{cache_control}");
        // They waited for the leader's head, then made their own calls.
        assert!(
            answers[1..]
                .iter()
                .all(|a| a.after == Duration::from_millis(200)),
            "{answers:?}"
        );
        let mut bodies: Vec<&str> = answers.iter().map(|a| a.body.as_str()).collect();
        bodies.sort_unstable();
        bodies.dedup();
        assert_eq!(bodies.len(), 10, "each got its own answer: {cache_control}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_leader_leaves_followers_to_fetch() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60")
        .delayed(Duration::from_millis(100))
        .failing(|n| n == 1);
    let r = get("/f");
    let leader = {
        let (cache, up, r) = (cache.clone(), up.clone(), r.clone());
        tokio::spawn(async move {
            cache
                .serve(&r, Some("api.test"), None, || up.fetch(&r))
                .await
        })
    };
    tokio::task::yield_now().await;
    let answers = burst(&cache, &up, gets(5, "/f"), None).await;
    let err = leader
        .await
        .expect("joined")
        .expect_err("the leader gets its own error");
    assert!(matches!(err, ProxyError::UpstreamTimeout { .. }));
    // The followers' calls succeed; the first stores and the others, still in flight, do too.
    assert!(
        answers
            .iter()
            .all(|a| a.x_cache == "MISS" && a.status == StatusCode::OK),
        "{answers:?}"
    );
    assert_eq!(up.calls(), 6);
    assert_eq!(read(send(&cache, &up, &get("/f")).await).await.0, "HIT");
}

#[tokio::test(start_paused = true)]
async fn followers_wait_at_most_max_wait() {
    let settings = CacheSettings {
        max_wait: Duration::from_secs(1).into(),
        ..CacheSettings::default()
    };
    let (_, cache) = setup(&settings);
    // The leader's call takes 10s, the others' none.
    let up = Upstream::counting("max-age=60")
        .delayed_by(|n| Duration::from_secs(if n == 1 { 10 } else { 0 }));
    let answers = burst(&cache, &up, gets(5, "/slow"), None).await;
    assert_eq!(answers[0].after, Duration::from_secs(10));
    for a in &answers[1..] {
        assert_eq!(
            (a.x_cache.as_str(), a.after),
            ("MISS", Duration::from_secs(1))
        );
    }
    assert_eq!(up.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn followers_wait_no_longer_than_their_deadline() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60")
        .delayed_by(|n| Duration::from_secs(if n == 1 { 10 } else { 0 }));
    let r = get("/d");
    let leader = {
        let (cache, up, r) = (cache.clone(), up.clone(), r.clone());
        tokio::spawn(async move {
            cache
                .serve(&r, Some("api.test"), None, || up.fetch(&r))
                .await
        })
    };
    tokio::task::yield_now().await;
    let answers = burst(&cache, &up, gets(3, "/d"), Some(Duration::from_millis(200))).await;
    assert!(
        answers
            .iter()
            .all(|a| a.after == Duration::from_millis(200) && a.x_cache == "MISS"),
        "{answers:?}"
    );
    // A deadline already passed: no wait at all.
    let late = burst(&cache, &up, gets(1, "/other"), Some(Duration::ZERO)).await;
    assert_eq!(late[0].after, Duration::ZERO);
    leader.abort();
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_leader_hands_over() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60")
        .delayed_by(|n| Duration::from_secs(if n == 1 { 10 } else { 1 }));
    let r = get("/c");
    let leader = {
        let (cache, up, r) = (cache.clone(), up.clone(), r.clone());
        tokio::spawn(async move {
            cache
                .serve(&r, Some("api.test"), None, || up.fetch(&r))
                .await
        })
    };
    tokio::task::yield_now().await;
    let followers = {
        let (cache, up) = (cache.clone(), up.clone());
        tokio::spawn(async move { burst(&cache, &up, gets(4, "/c"), None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The leader's client goes away: one follower leads in its place, the others follow it.
    leader.abort();
    let answers = followers.await.expect("followers");
    assert_eq!(up.calls(), 2);
    assert_eq!(
        (count(&answers, "MISS"), count(&answers, "HIT")),
        (1, 3),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|a| a.body == "call 2" && a.after == Duration::from_millis(1100)),
        "{answers:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn followers_of_another_variant_lead_again() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::new(|req, n| {
        let accept = req
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        response(
            200,
            &[("cache-control", "max-age=60"), ("vary", "accept")],
            &format!("{accept} {n}"),
        )
    })
    .delayed(Duration::from_millis(100));
    let reqs = (0..10)
        .map(|i| {
            let accept = if i % 2 == 0 { "json" } else { "xml" };
            req(Method::GET, "/v", &[("accept", accept)])
        })
        .collect();
    let answers = burst(&cache, &up, reqs, None).await;
    assert_eq!(up.calls(), 2);
    for (i, a) in answers.iter().enumerate() {
        let want = if i % 2 == 0 { "json 1" } else { "xml 2" };
        assert_eq!(a.body, want, "{answers:?}");
    }
    assert_eq!((count(&answers, "MISS"), count(&answers, "HIT")), (2, 8));
}

#[tokio::test(start_paused = true)]
async fn head_follows_a_get_leader() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60").delayed(Duration::from_millis(100));
    let reqs = vec![
        get("/h"),
        req(Method::HEAD, "/h", &[]),
        req(Method::HEAD, "/h", &[]),
    ];
    let answers = burst(&cache, &up, reqs, None).await;
    assert_eq!(up.calls(), 1);
    assert_eq!(answers[0].body, "call 1");
    for a in &answers[1..] {
        assert_eq!((a.x_cache.as_str(), a.body.as_str()), ("HIT", ""));
    }
}

#[tokio::test(start_paused = true)]
async fn no_cache_requests_do_not_wait() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60")
        .delayed_by(|n| Duration::from_secs(if n == 1 { 10 } else { 0 }));
    let reqs = vec![
        get("/n"),
        req(Method::GET, "/n", &[("cache-control", "no-cache")]),
    ];
    let answers = burst(&cache, &up, reqs, None).await;
    assert_eq!(answers[1].after, Duration::ZERO);
    assert_eq!(
        (answers[1].x_cache.as_str(), answers[1].body.as_str()),
        ("MISS", "call 2")
    );
    assert_eq!(up.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn requests_refusing_a_fresh_entry_do_not_wait() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60")
        .delayed_by(|n| Duration::from_secs(if n == 1 { 0 } else { 10 }));
    send(&cache, &up, &get("/r")).await;
    // A fresh entry that neither accepts (60s left, 120s wanted): both go upstream at once
    // rather than one waiting for the other's answer, which it would refuse too.
    let picky = || req(Method::GET, "/r", &[("cache-control", "min-fresh=120")]);
    let answers = burst(&cache, &up, vec![picky(), picky()], None).await;
    assert!(
        answers
            .iter()
            .all(|a| a.x_cache == "MISS" && a.after == Duration::from_secs(10)),
        "{answers:?}"
    );
    assert_eq!(up.calls(), 3);
}
