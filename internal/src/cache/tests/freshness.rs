//! What is stored and for how long: freshness from the upstream's headers, the statuses and
//! directives that keep a response out, `Vary` variants, and a refresh replacing its variant.

use http::{Method, StatusCode};

use super::*;

#[tokio::test]
async fn miss_then_hit_with_age() {
    let (clock, cache) = setup(&CacheSettings::default());
    let up = Upstream::fixed(
        200,
        &[
            ("cache-control", "max-age=60"),
            ("content-type", "application/json"),
        ],
        r#"{"id":1}"#,
    );
    let first = send(&cache, &up, &get("/items/1")).await;
    assert_eq!(
        header(&first, "age"),
        "-",
        "a miss is the upstream's answer as sent"
    );
    assert_eq!(
        read(first).await,
        ("MISS".into(), StatusCode::OK, r#"{"id":1}"#.into())
    );

    clock.advance(3);
    let second = send(&cache, &up, &get("/items/1")).await;
    assert_eq!(header(&second, "age"), "3");
    assert_eq!(header(&second, "content-type"), "application/json");
    assert_eq!(
        read(second).await,
        ("HIT".into(), StatusCode::OK, r#"{"id":1}"#.into())
    );
    assert_eq!(up.calls(), 1);
    let stats = cache.store().stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 1, 1));
}

#[tokio::test]
async fn stale_entries_go_upstream_again() {
    let (clock, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=10");
    assert_eq!(read(send(&cache, &up, &get("/a")).await).await.0, "MISS");
    clock.advance(9);
    assert_eq!(read(send(&cache, &up, &get("/a")).await).await.2, "call 1");
    clock.advance(2);
    let (x, _, body) = read(send(&cache, &up, &get("/a")).await).await;
    assert_eq!((x.as_str(), body.as_str()), ("MISS", "call 2"));
    assert_eq!(up.calls(), 2);
}

#[tokio::test]
async fn freshness_from_s_maxage_expires_and_age() {
    // A shared cache takes s-maxage over max-age.
    let (clock, cache) = setup(&CacheSettings::default());
    let up = Upstream::fixed(
        200,
        &[("cache-control", "max-age=0, s-maxage=30")],
        "shared",
    );
    send(&cache, &up, &get("/s")).await;
    clock.advance(29);
    assert_eq!(read(send(&cache, &up, &get("/s")).await).await.0, "HIT");

    // Expires (with the origin's Date) gives explicit freshness.
    let (clock, cache) = setup(&CacheSettings::default());
    let up = Upstream::fixed(
        200,
        &[
            ("date", START_DATE),
            ("expires", "Tue, 14 Nov 2023 22:14:20 GMT"),
        ],
        "expires",
    );
    send(&cache, &up, &get("/e")).await;
    clock.advance(59);
    assert_eq!(read(send(&cache, &up, &get("/e")).await).await.0, "HIT");
    clock.advance(2);
    assert_eq!(read(send(&cache, &up, &get("/e")).await).await.0, "MISS");

    // The upstream's Age counts against max-age, and into the answer's Age.
    let (clock, cache) = setup(&CacheSettings::default());
    let up = Upstream::fixed(
        200,
        &[("cache-control", "max-age=10"), ("age", "5")],
        "aged",
    );
    send(&cache, &up, &get("/g")).await;
    clock.advance(2);
    let hit = send(&cache, &up, &get("/g")).await;
    assert_eq!(header(&hit, "age"), "7");
    clock.advance(4);
    assert_eq!(read(send(&cache, &up, &get("/g")).await).await.0, "MISS");
}

/// Responses that must not be stored: each is fetched twice, both times a MISS.
#[tokio::test]
async fn not_stored() {
    let cases: [(&str, u16, Headers); 15] = [
        (
            "no-store",
            200,
            &[("cache-control", "no-store, max-age=60")],
        ),
        ("private", 200, &[("cache-control", "private, max-age=60")]),
        (
            "no-cache",
            200,
            &[("cache-control", "no-cache, max-age=60")],
        ),
        ("no explicit freshness", 200, &[]),
        (
            "only Last-Modified (no heuristic)",
            200,
            &[("last-modified", "Mon, 13 Nov 2023 22:13:20 GMT")],
        ),
        (
            "immutable without max-age",
            200,
            &[("cache-control", "immutable")],
        ),
        ("max-age=0", 200, &[("cache-control", "max-age=0")]),
        (
            "Age past max-age",
            200,
            &[("cache-control", "max-age=10"), ("age", "10")],
        ),
        (
            "expired Expires",
            200,
            &[
                ("date", START_DATE),
                ("expires", "Tue, 14 Nov 2023 22:13:00 GMT"),
            ],
        ),
        (
            "Vary: *",
            200,
            &[("cache-control", "max-age=60"), ("vary", "*")],
        ),
        (
            "Vary with *",
            200,
            &[("cache-control", "max-age=60"), ("vary", "accept, *")],
        ),
        (
            "Set-Cookie",
            200,
            &[
                ("cache-control", "public, max-age=60"),
                ("set-cookie", "s=1"),
            ],
        ),
        (
            "partial aggregate",
            200,
            &[
                ("cache-control", "max-age=60"),
                ("x-gatehouse-partial", "reviews"),
            ],
        ),
        (
            "proxy-revalidate",
            200,
            &[("cache-control", "max-age=60, proxy-revalidate")],
        ),
        (
            "Pragma: no-cache without Cache-Control",
            200,
            &[
                ("pragma", "no-cache"),
                ("date", START_DATE),
                ("expires", "Tue, 14 Nov 2023 22:14:20 GMT"),
            ],
        ),
    ];
    for (what, status, headers) in cases {
        let (_, cache) = setup(&CacheSettings::default());
        let up = Upstream::new(move |_, _| response(status, headers, "body"));
        for _ in 0..2 {
            let (x, _, body) = read(send(&cache, &up, &get("/n")).await).await;
            assert_eq!((x.as_str(), body.as_str()), ("MISS", "body"), "{what}");
        }
        assert_eq!(up.calls(), 2, "{what}");
        assert_eq!(cache.store().stats().stores, 0, "{what}");
    }
}

#[tokio::test]
async fn statuses_stored() {
    let cc: &[(&str, &str)] = &[("cache-control", "max-age=60")];
    for (status, stored) in [
        (200, true),
        (203, true),
        (204, true),
        (301, true),
        (308, true),
        (404, true),
        (410, true),
        (206, false),
        (302, false),
        (307, false),
        (405, false),
        (500, false),
        (502, false),
        (503, false),
    ] {
        let (_, cache) = setup(&CacheSettings::default());
        let up = Upstream::new(move |_, _| response(status, cc, ""));
        send(&cache, &up, &get("/s")).await;
        let res = send(&cache, &up, &get("/s")).await;
        if status == 204 {
            assert_eq!(header(&res, "content-length"), "-", "a 204 has no length");
        }
        let (x, got, _) = read(res).await;
        assert_eq!(got.as_u16(), status);
        assert_eq!(x == "HIT", stored, "{status}");
    }
}

#[tokio::test]
async fn vary_keeps_one_variant_per_value() {
    let (_, cache) = setup(&CacheSettings::default());
    let up = Upstream::new(|req, _| {
        let accept = req
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        response(
            200,
            &[("cache-control", "max-age=60"), ("vary", "Accept")],
            accept,
        )
    });
    let json = req(Method::GET, "/v", &[("accept", "application/json")]);
    let xml = req(Method::GET, "/v", &[("accept", "application/xml")]);
    let none = get("/v");
    for (r, want) in [
        (&json, "application/json"),
        (&xml, "application/xml"),
        (&none, "none"),
    ] {
        assert_eq!(
            read(send(&cache, &up, r).await).await,
            ("MISS".into(), StatusCode::OK, want.into())
        );
    }
    for (r, want) in [
        (&json, "application/json"),
        (&xml, "application/xml"),
        (&none, "none"),
    ] {
        assert_eq!(
            read(send(&cache, &up, r).await).await,
            ("HIT".into(), StatusCode::OK, want.into())
        );
    }
    assert_eq!(up.calls(), 3);

    // All values of a varied header count, in order.
    let two = req(
        Method::GET,
        "/v",
        &[("accept", "application/json"), ("accept", "text/plain")],
    );
    assert_eq!(read(send(&cache, &up, &two).await).await.0, "MISS");
    assert_eq!(read(send(&cache, &up, &two).await).await.0, "HIT");
    assert_eq!(read(send(&cache, &up, &json).await).await.0, "HIT");
}

#[tokio::test]
async fn a_new_response_replaces_the_variant_it_matches() {
    let (clock, cache) = setup(&CacheSettings::default());
    let up = Upstream::counting("max-age=60");
    send(&cache, &up, &get("/r")).await;
    cache.store().run_pending_tasks();
    let bytes = cache.store().stats().bytes;
    clock.advance(5);
    // A client's no-cache refreshes the entry: later requests get the new answer, Age from it.
    let refresh = req(Method::GET, "/r", &[("cache-control", "no-cache")]);
    assert_eq!(read(send(&cache, &up, &refresh).await).await.2, "call 2");
    let hit = send(&cache, &up, &get("/r")).await;
    assert_eq!(header(&hit, "age"), "0");
    assert_eq!(read(hit).await.2, "call 2");
    // The old answer is gone, not kept beside the new one (the new weighs a little more: its
    // request's `Cache-Control` is in its policy).
    cache.store().run_pending_tasks();
    let now = cache.store().stats().bytes;
    assert!(now < bytes * 3 / 2, "{bytes} bytes then {now}");
}
