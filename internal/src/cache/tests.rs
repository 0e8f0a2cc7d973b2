//! The cache's rules without sockets: a fake upstream (a `fetch` closure that counts its
//! calls) behind a [`RouteCache`], a store whose freshness clock the test moves by hand.

mod buffer;
mod coalesce;
mod freshness;
mod requests;
mod store;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gatehouse_common::BoxError;
use gatehouse_common::body::{ProxyBody, full};
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
