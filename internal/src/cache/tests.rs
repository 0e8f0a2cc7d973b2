//! The cache's rules without sockets: a fake upstream (a `fetch` closure that counts its
//! calls) behind a [`RouteCache`], a store whose freshness clock the test moves by hand.
//! Coalescing of concurrent misses is in `tests/coalesce.rs`, body buffering in
//! `tests/buffer.rs`.

mod buffer;
mod coalesce;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gatehouse_common::BoxError;
use gatehouse_common::body::{ProxyBody, full};
use gatehouse_common::config::ByteSize;
use gatehouse_common::error::ProxyError;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;

use super::*;

/// The fake clock's start: Tue, 14 Nov 2023 22:13:20 GMT.
const START_SECS: u64 = 1_700_000_000;
const START_DATE: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

/// A freshness clock the test moves.
#[derive(Clone)]
struct TestClock(Arc<Mutex<SystemTime>>);

impl TestClock {
    fn new() -> Self {
        TestClock(Arc::new(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(START_SECS),
        )))
    }

    fn advance(&self, secs: u64) {
        let mut now = self.0.lock().expect("clock");
        *now += Duration::from_secs(secs);
    }

    fn store(&self, settings: &StoreSettings) -> Arc<Store> {
        let clock = self.0.clone();
        Arc::new(Store::with_clock(
            settings,
            Arc::new(move || *clock.lock().expect("clock")),
        ))
    }
}

/// A store with the default budget on a fake clock, and one route over it.
fn setup(settings: &CacheSettings) -> (TestClock, RouteCache) {
    let clock = TestClock::new();
    let store = clock.store(&StoreSettings::default());
    (clock, RouteCache::new(store, "items", settings))
}

/// A request head.
fn req(method: Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    b.body(()).expect("request").into_parts().0
}

fn get(uri: &str) -> http::request::Parts {
    req(Method::GET, uri, &[])
}

/// A response with `headers` and `body`.
fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response<ProxyBody> {
    let mut b = Response::builder().status(status);
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    b.body(full(Bytes::from(body.to_owned())))
        .expect("response")
}

/// Response headers of a test case.
type Headers = &'static [(&'static str, &'static str)];

type Respond = dyn Fn(&http::request::Parts, usize) -> Response<ProxyBody> + Send + Sync;

/// The fake upstream: answers call `n` with `respond(request, n)` after `delay(n)`, or fails
/// it if `fails(n)`, and counts its calls.
#[derive(Clone)]
struct Upstream {
    calls: Arc<AtomicUsize>,
    respond: Arc<Respond>,
    delay: Arc<dyn Fn(usize) -> Duration + Send + Sync>,
    fails: Arc<dyn Fn(usize) -> bool + Send + Sync>,
    /// Methods it was called with, in order.
    seen: Arc<Mutex<Vec<Method>>>,
}

impl Upstream {
    fn new(
        respond: impl Fn(&http::request::Parts, usize) -> Response<ProxyBody> + Send + Sync + 'static,
    ) -> Self {
        Upstream {
            calls: Arc::new(AtomicUsize::new(0)),
            respond: Arc::new(respond),
            delay: Arc::new(|_| Duration::ZERO),
            fails: Arc::new(|_| false),
            seen: Arc::default(),
        }
    }

    /// Always the same answer.
    fn fixed(status: u16, headers: Headers, body: &'static str) -> Self {
        Upstream::new(move |_, _| response(status, headers, body))
    }

    /// A cacheable answer whose body names the call (`call 1`, `call 2`...).
    fn counting(cache_control: &'static str) -> Self {
        Upstream::new(move |_, n| {
            response(
                200,
                &[("cache-control", cache_control)],
                &format!("call {n}"),
            )
        })
    }

    /// Each call answers after `delay`.
    fn delayed(self, delay: Duration) -> Self {
        self.delayed_by(move |_| delay)
    }

    /// Call `n` answers after `delay(n)`.
    fn delayed_by(mut self, delay: impl Fn(usize) -> Duration + Send + Sync + 'static) -> Self {
        self.delay = Arc::new(delay);
        self
    }

    /// Call `n` fails (after its delay) if `fails(n)`.
    fn failing(mut self, fails: impl Fn(usize) -> bool + Send + Sync + 'static) -> Self {
        self.fails = Arc::new(fails);
        self
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn fetch(&self, req: &http::request::Parts) -> Result<Response<ProxyBody>, ProxyError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.seen.lock().expect("seen").push(req.method.clone());
        let delay = (self.delay)(n);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if (self.fails)(n) {
            return Err(ProxyError::UpstreamTimeout {
                service: "items".into(),
                after: delay,
            });
        }
        Ok((self.respond)(req, n))
    }
}

/// Sends `req` through `cache` to `upstream` on host `api.test`.
async fn send(
    cache: &RouteCache,
    upstream: &Upstream,
    req: &http::request::Parts,
) -> Response<ProxyBody> {
    cache
        .serve(req, Some("api.test"), None, || upstream.fetch(req))
        .await
        .expect("answered")
}

/// `x-cache`, status and body of an answer.
async fn read(res: Response<ProxyBody>) -> (String, StatusCode, String) {
    let x_cache = header(&res, X_CACHE);
    let status = res.status();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (x_cache, status, String::from_utf8_lossy(&body).into_owned())
}

fn header(res: &Response<ProxyBody>, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// A body of several data frames (optionally ending in an error), without a length.
struct Chunks(VecDeque<Result<Frame<Bytes>, BoxError>>);

impl Chunks {
    fn body(chunks: &[&[u8]]) -> ProxyBody {
        Chunks(
            chunks
                .iter()
                .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
                .collect(),
        )
        .boxed_unsync()
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.get_mut().0.pop_front())
    }
}

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
    let cases: [(&str, u16, Headers); 14] = [
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
