//! The store: what a stored head keeps, the per-entry limit, the byte budget, the settings.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gatehouse_common::config::ByteSize;
use http::{Method, Response, StatusCode};

use super::*;

#[tokio::test]
async fn buffered_fetches_are_stored_and_hop_by_hop_headers_are_not() {
    let (clock, cache) = setup(&CacheSettings::default());
    let r = get("/b");
    let calls = AtomicUsize::new(0);
    let fetch = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ProxyError>(
            Response::builder()
                .header("cache-control", "max-age=60")
                .header("connection", "x-hop")
                .header("x-hop", "1")
                .header("keep-alive", "timeout=5")
                .header("link", "</a>")
                .header("link", "</b>")
                .header("age", "2")
                .body(Bytes::from_static(b"in memory"))
                .expect("response"),
        )
    };
    let miss = cache
        .serve(&r, Some("api.test"), None, fetch)
        .await
        .expect("miss");
    assert_eq!(read(miss).await.2, "in memory");
    clock.advance(1);
    let hit = cache
        .serve(&r, Some("api.test"), None, || async { unreachable_fetch() })
        .await
        .expect("hit");
    for gone in ["connection", "x-hop", "keep-alive"] {
        assert_eq!(header(&hit, gone), "-", "{gone}");
    }
    let links: Vec<_> = hit.headers().get_all("link").iter().collect();
    assert_eq!(
        links,
        ["</a>", "</b>"],
        "every value of a repeated header is kept"
    );
    assert_eq!(header(&hit, "age"), "3");
    assert_eq!(
        read(hit).await,
        ("HIT".into(), StatusCode::OK, "in memory".into())
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

fn unreachable_fetch() -> Result<Response<ProxyBody>, ProxyError> {
    Err(ProxyError::BadRequest {
        reason: "the cache should have answered".into(),
    })
}

#[tokio::test]
async fn large_responses_stream_through_whole_and_are_not_stored() {
    let small = CacheSettings {
        max_entry_bytes: ByteSize::kib(4),
        ..CacheSettings::default()
    };
    let (_, cache) = setup(&small);
    let chunk = vec![b'x'; 1024];
    let up = Upstream::new(move |_, _| {
        let chunks: Vec<&[u8]> = (0..10).map(|_| chunk.as_slice()).collect();
        Response::builder()
            .header("cache-control", "max-age=60")
            .body(Chunks::body(&chunks))
            .expect("response")
    });
    for _ in 0..2 {
        let (x, _, body) = read(send(&cache, &up, &get("/big")).await).await;
        assert_eq!((x.as_str(), body.len()), ("MISS", 10 * 1024));
        assert!(body.bytes().all(|b| b == b'x'));
    }
    // A declared length over the limit is not read at all; headers count too.
    let declared = Upstream::fixed(
        200,
        &[("cache-control", "max-age=60"), ("content-length", "5000")],
        "",
    );
    assert_eq!(
        read(send(&cache, &declared, &get("/declared")).await)
            .await
            .0,
        "MISS"
    );
    let just_under = "y".repeat(4 * 1024 - 10);
    let up =
        Upstream::new(move |_, _| response(200, &[("cache-control", "max-age=60")], &just_under));
    send(&cache, &up, &get("/edge")).await;
    assert_eq!(
        read(send(&cache, &up, &get("/edge")).await).await.0,
        "MISS",
        "body and headers over 4KiB"
    );
    assert_eq!(cache.store().stats().stores, 0);
    // Within the limit, a streamed body is stored whole.
    let up = Upstream::new(|_, _| {
        Response::builder()
            .header("cache-control", "max-age=60")
            .body(Chunks::body(&[b"ab", b"", b"cd"]))
            .expect("response")
    });
    send(&cache, &up, &get("/small")).await;
    // Its length is known now, and a HEAD answered from it says so.
    let head = send(&cache, &up, &req(Method::HEAD, "/small", &[])).await;
    assert_eq!(header(&head, "content-length"), "4");
    assert_eq!(read(head).await.2, "");
    assert_eq!(
        read(send(&cache, &up, &get("/small")).await).await,
        ("HIT".into(), StatusCode::OK, "abcd".into())
    );
}

#[tokio::test]
async fn eviction_keeps_the_store_within_its_budget() {
    let clock = TestClock::new();
    let budget = 64 * 1024;
    let store = clock.store(&StoreSettings {
        max_bytes: ByteSize::new(budget),
    });
    let cache = RouteCache::new(store.clone(), "items", &CacheSettings::default());
    let body = "z".repeat(4 * 1024);
    let up = Upstream::new(move |_, _| response(200, &[("cache-control", "max-age=600")], &body));
    for i in 0..64 {
        send(&cache, &up, &get(&format!("/e/{i}"))).await;
        store.run_pending_tasks();
    }
    let stats = store.stats();
    assert_eq!(stats.stores, 64);
    assert!(
        stats.bytes <= budget,
        "{} bytes held over a budget of {budget}",
        stats.bytes
    );
    assert!(
        stats.bytes > budget / 2,
        "the budget is used: {} bytes",
        stats.bytes
    );
    assert!(stats.evictions > 0 && stats.entries < 64, "{stats:?}");
    // The least recently used went first; the newest are there.
    assert_eq!(read(send(&cache, &up, &get("/e/63")).await).await.0, "HIT");
    assert_eq!(read(send(&cache, &up, &get("/e/0")).await).await.0, "MISS");
}

#[test]
fn settings_parse_with_units_and_defaults() {
    let default: CacheSettings = serde_json::from_str("{}").expect("defaults");
    assert_eq!(default, CacheSettings::default());
    assert!(!default.allow_authorized);
    assert_eq!(default.max_wait.get(), Duration::from_secs(5));
    assert_eq!(default.max_entry_bytes.get(), 1024 * 1024);
    assert_eq!(StoreSettings::default().max_bytes.get(), 64 * 1024 * 1024);

    let set: CacheSettings = serde_json::from_str(
        r#"{"allow_authorized": true, "max_wait": "250ms", "max_entry_bytes": "256KiB"}"#,
    )
    .expect("settings");
    assert!(set.allow_authorized);
    assert_eq!(set.max_wait.get(), Duration::from_millis(250));
    assert_eq!(set.max_entry_bytes.get(), 256 * 1024);
    let store: StoreSettings = serde_json::from_str(r#"{"max_bytes": "16MiB"}"#).expect("store");
    assert_eq!(store.max_bytes.get(), 16 * 1024 * 1024);

    let unknown =
        serde_json::from_str::<CacheSettings>(r#"{"max_age": "1s"}"#).expect_err("unknown key");
    assert!(
        unknown.to_string().contains("unknown field `max_age`"),
        "{unknown}"
    );

    let zero = CacheSettings {
        max_entry_bytes: ByteSize::new(0),
        ..CacheSettings::default()
    };
    assert_eq!(zero.validate().map_err(|e| e.key), Err("max_entry_bytes"));
    let huge = CacheSettings {
        max_entry_bytes: ByteSize::new(u64::from(u32::MAX) + 1),
        ..CacheSettings::default()
    };
    assert_eq!(huge.validate().map_err(|e| e.key), Err("max_entry_bytes"));
    assert!(CacheSettings::default().validate().is_ok());
    let empty = StoreSettings {
        max_bytes: ByteSize::new(0),
    };
    assert_eq!(empty.validate().map_err(|e| e.key), Err("max_bytes"));
    assert!(StoreSettings::default().validate().is_ok());
}

/// A handler's service future must be `Send`; so must `serve`'s.
#[test]
fn serve_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let cache = RouteCache::new(
        Arc::new(Store::new(&StoreSettings::default())),
        "r",
        &CacheSettings::default(),
    );
    let r = get("/");
    let fut = cache.serve(&r, None, None, || async { unreachable_fetch() });
    assert_send(&fut);
}
