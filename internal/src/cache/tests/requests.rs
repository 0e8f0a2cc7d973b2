//! Which requests use the cache and how: the key, credentials, client directives, conditional
//! and range requests, HEAD from a GET entry, other methods, and fetch errors.

use http::{Method, StatusCode};

use super::*;

#[tokio::test]
async fn key_is_route_host_path_and_query() {
    let clock = TestClock::new();
    let store = clock.store(&StoreSettings::default());
    let items = RouteCache::new(store.clone(), "items", &CacheSettings::default());
    let other = RouteCache::new(store.clone(), "other", &CacheSettings::default());
    let up = Upstream::counting("max-age=60");
    send(&items, &up, &get("/k?a=1")).await;
    // Another query, another host, another route: each its own entry.
    assert_eq!(
        read(send(&items, &up, &get("/k?a=2")).await).await.0,
        "MISS"
    );
    let r = get("/k?a=1");
    let other_host = items
        .serve(&r, Some("b.test"), None, || up.fetch(&r))
        .await
        .expect("answered");
    assert_eq!(read(other_host).await.0, "MISS");
    assert_eq!(
        read(send(&other, &up, &get("/k?a=1")).await).await.0,
        "MISS"
    );
    // An absolute-form URI (HTTP/2) shares the origin-form entry (HTTP/1).
    let h2 = get("http://api.test/k?a=1");
    assert_eq!(
        read(send(&items, &up, &h2).await).await,
        ("HIT".into(), StatusCode::OK, "call 1".into())
    );
    assert_eq!(up.calls(), 4);
    assert_eq!(store.stats().stores, 4);
}

#[tokio::test]
async fn credentials_bypass_unless_allowed() {
    let cases: [(&str, &str); 4] = [
        ("authorization", "Bearer t"),
        ("cookie", "session=1"),
        ("x-gatehouse-subject", "ada"),
        ("x-gatehouse-scopes", "read"),
    ];
    for (name, value) in cases {
        let (_, cache) = setup(&CacheSettings::default());
        let up = Upstream::counting("public, max-age=60");
        let with = req(Method::GET, "/c", &[(name, value)]);
        for _ in 0..2 {
            assert_eq!(
                read(send(&cache, &up, &with).await).await.0,
                "BYPASS",
                "{name}"
            );
        }
        // Nothing was stored from them, and they are not served what others stored.
        assert_eq!(
            read(send(&cache, &up, &get("/c")).await).await.0,
            "MISS",
            "{name}"
        );
        assert_eq!(
            read(send(&cache, &up, &with).await).await.0,
            "BYPASS",
            "{name}"
        );
        assert_eq!(up.calls(), 4, "{name}");
        assert_eq!(cache.store().stats().bypasses, 3, "{name}");
    }
    // The deadline header is not an identity claim.
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60");
    let deadline = req(Method::GET, "/d", &[("x-gatehouse-deadline-ms", "500")]);
    send(&cache, &up, &deadline).await;
    assert_eq!(read(send(&cache, &up, &deadline).await).await.0, "HIT");
}

#[tokio::test]
async fn allowed_credentials_store_only_shareable_answers() {
    let allow = CacheSettings {
        allow_authorized: true,
        ..CacheSettings::default()
    };
    for (cache_control, stored) in [
        ("max-age=60", false),
        ("must-revalidate, max-age=60", false),
        ("public, max-age=60", true),
        ("s-maxage=60", true),
        ("private, s-maxage=60", false),
    ] {
        for (name, value) in [
            ("authorization", "Bearer t"),
            ("x-gatehouse-subject", "ada"),
        ] {
            let (_, cache) = setup(&allow);
            let up = Upstream::counting(cache_control);
            let with = req(Method::GET, "/p", &[(name, value)]);
            assert_eq!(read(send(&cache, &up, &with).await).await.0, "MISS");
            let want = if stored { "HIT" } else { "MISS" };
            assert_eq!(
                read(send(&cache, &up, &with).await).await.0,
                want,
                "{cache_control} {name}"
            );
        }
    }
    // With the route's consent, a request with credentials is served what an anonymous one
    // stored; an upstream whose answer depends on the caller says so with Vary.
    let (_, cache) = setup(&allow);
    let up = Upstream::new(|req, _| {
        let who = req
            .headers
            .get("x-gatehouse-subject")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("anonymous");
        response(
            200,
            &[
                ("cache-control", "public, max-age=60"),
                ("vary", "x-gatehouse-subject"),
            ],
            who,
        )
    });
    let ada = req(Method::GET, "/me", &[("x-gatehouse-subject", "ada")]);
    let bob = req(Method::GET, "/me", &[("x-gatehouse-subject", "bob")]);
    assert_eq!(read(send(&cache, &up, &ada).await).await.2, "ada");
    assert_eq!(
        read(send(&cache, &up, &bob).await).await,
        ("MISS".into(), StatusCode::OK, "bob".into())
    );
    assert_eq!(
        read(send(&cache, &up, &ada).await).await,
        ("HIT".into(), StatusCode::OK, "ada".into())
    );
    assert_eq!(
        read(send(&cache, &up, &get("/me")).await).await.2,
        "anonymous"
    );
}

#[tokio::test]
async fn client_directives() {
    let (clock, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60");
    // no-store on a cold key: fetched, not stored.
    let no_store = req(Method::GET, "/q", &[("cache-control", "no-store")]);
    assert_eq!(read(send(&cache, &up, &no_store).await).await.0, "MISS");
    assert_eq!(
        read(send(&cache, &up, &get("/q")).await).await,
        ("MISS".into(), StatusCode::OK, "call 2".into())
    );
    // ... and on a stored one: may be answered from it.
    assert_eq!(
        read(send(&cache, &up, &no_store).await).await,
        ("HIT".into(), StatusCode::OK, "call 2".into())
    );
    // no-cache and Pragma: no-cache go upstream (and refresh the entry).
    for directive in [("cache-control", "no-cache"), ("pragma", "no-cache")] {
        let r = req(Method::GET, "/q", &[directive]);
        assert_eq!(
            read(send(&cache, &up, &r).await).await.0,
            "MISS",
            "{directive:?}"
        );
    }
    assert_eq!(read(send(&cache, &up, &get("/q")).await).await.2, "call 4");
    // max-age=0 refuses anything older than 0 seconds.
    clock.advance(1);
    let max_age_0 = req(Method::GET, "/q", &[("cache-control", "max-age=0")]);
    assert_eq!(read(send(&cache, &up, &max_age_0).await).await.0, "MISS");
    assert_eq!(up.calls(), 5);
    // min-fresh beyond what is left goes upstream too; a max-age the entry meets is a hit.
    let min_fresh = req(Method::GET, "/q", &[("cache-control", "min-fresh=120")]);
    assert_eq!(read(send(&cache, &up, &min_fresh).await).await.0, "MISS");
    let max_age = req(Method::GET, "/q", &[("cache-control", "max-age=30")]);
    assert_eq!(read(send(&cache, &up, &max_age).await).await.0, "HIT");
}

#[tokio::test]
async fn conditional_and_range_requests_bypass() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60");
    send(&cache, &up, &get("/c")).await;
    for h in [
        ("if-none-match", "\"x\""),
        ("if-modified-since", START_DATE),
        ("range", "bytes=0-1"),
    ] {
        let r = req(Method::GET, "/c", &[h]);
        assert_eq!(read(send(&cache, &up, &r).await).await.0, "BYPASS", "{h:?}");
    }
    assert_eq!(up.calls(), 4);
}

#[tokio::test]
async fn head_is_served_from_a_get_entry_and_never_stored() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::fixed(
        200,
        &[("cache-control", "max-age=60"), ("content-length", "5")],
        "hello",
    );
    let head = req(Method::HEAD, "/h", &[]);
    // A cold HEAD goes upstream as a HEAD, and its answer is not stored.
    assert_eq!(read(send(&cache, &up, &head).await).await.0, "MISS");
    assert_eq!(read(send(&cache, &up, &get("/h")).await).await.0, "MISS");
    assert_eq!(up.calls(), 2);
    assert_eq!(*up.seen.lock().expect("seen"), [Method::HEAD, Method::GET]);
    // Then the GET entry answers a HEAD: same head, no body.
    let res = send(&cache, &up, &head).await;
    assert_eq!(header(&res, "content-length"), "5");
    assert_eq!(
        read(res).await,
        ("HIT".into(), StatusCode::OK, String::new())
    );
    assert_eq!(read(send(&cache, &up, &get("/h")).await).await.2, "hello");
    assert_eq!(up.calls(), 2);
}

#[tokio::test]
async fn other_methods_pass_through_untouched() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60");
    send(&cache, &up, &get("/m")).await;
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let res = send(&cache, &up, &req(method.clone(), "/m", &[])).await;
        assert_eq!(header(&res, X_CACHE), "-", "{method}");
        assert_eq!(header(&res, "cache-control"), "max-age=60", "{method}");
    }
    assert_eq!(up.calls(), 5);
    // Their answers were not stored over the GET entry.
    assert_eq!(read(send(&cache, &up, &get("/m")).await).await.2, "call 1");
    assert_eq!(cache.store().stats().stores, 1);
}

#[tokio::test]
async fn fetch_errors_are_returned_as_they_are() {
    let (_, cache) = setup(&CacheSettings::default());
    let r = get("/x");
    let err = cache
        .serve(&r, Some("api.test"), None, || async {
            Err::<Response<ProxyBody>, _>(ProxyError::NoEndpoints {
                service: "items".into(),
            })
        })
        .await
        .expect_err("the fetch's error");
    assert!(matches!(err, ProxyError::NoEndpoints { .. }));
}
