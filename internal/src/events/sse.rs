//! The `event_stream` route handler: a stream's messages to the client as server-sent events
//! (`id:` the stream sequence, `event:` the event type, `data:` the JSON), resumed after
//! `Last-Event-ID`, filtered to the caller's own events, with keep-alive comments, ended when
//! the gateway drains.
//!
//! ```yaml
//! handler:
//!   event_stream: { stream: ORDER_EVENTS, subject: "orders.events.>", only_caller: true }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{DeliverPolicy, push};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use gatehouse_common::body::ProxyBody;
use gatehouse_common::config::ConfigError;
use gatehouse_common::error::ProxyError;
use gatehouse_common::handler::{HandlerBuild, HandlerKind, HandlerRequest, HandlerService};
use gatehouse_common::identity::X_SUBJECT;
use gatehouse_common::metrics::StreamSeries;
use http::Response;
use http::header::{self, HeaderValue};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::broker::{Broker, unavailable};
use super::headers::EVENT_TYPE;
use super::settings::is_name;

/// The comment line sent when nothing else was, so proxies and clients keep the stream open.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// One event in SSE framing. `data` is split into one `data:` line per line (the client joins
/// them with `\n` again); an event type with a line break in it is dropped, not split.
pub fn event_frame(id: u64, event: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 48);
    write_event(&mut out, id, event, data);
    out.freeze()
}

/// Appends one event to `out` (see [`event_frame`]).
pub fn write_event(out: &mut BytesMut, id: u64, event: Option<&str>, data: &[u8]) {
    out.put_slice(b"id: ");
    out.put_slice(id.to_string().as_bytes());
    out.put_u8(b'\n');
    if let Some(event) = event.filter(|e| !e.is_empty() && !e.contains(['\r', '\n'])) {
        out.put_slice(b"event: ");
        out.put_slice(event.as_bytes());
        out.put_u8(b'\n');
    }
    for line in lines(data) {
        out.put_slice(b"data: ");
        out.put_slice(line);
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
}

/// `data` split at `\r\n`, `\n` and `\r` (SSE's line ends); at least one line.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => {
                let skip = if text[i] == b'\r' && text.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = Some(&text[i + skip..]);
                Some(&text[..i])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

/// Where a client's stream starts: after `Last-Event-ID`, or at the stream's new messages.
pub fn start(headers: &http::HeaderMap, replay_all: bool) -> Result<DeliverPolicy, ProxyError> {
    match headers.get("last-event-id") {
        None => Ok(if replay_all {
            DeliverPolicy::All
        } else {
            DeliverPolicy::New
        }),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|seq| DeliverPolicy::ByStartSequence {
                start_sequence: seq.saturating_add(1),
            })
            .ok_or_else(|| ProxyError::BadRequest {
                reason: "`Last-Event-ID` must be the `id:` of an event this stream sent (a number)"
                    .into(),
            }),
    }
}

/// The `event_stream` kind.
#[derive(Debug)]
pub struct EventStream {
    pub broker: Arc<Broker>,
    /// Cancelled when the gateway drains: every stream then ends (clients come back with
    /// `Last-Event-ID` to another instance).
    pub drain: CancellationToken,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    stream: String,
    /// The subjects shown (one filter, wildcards allowed). Default: all of the stream's.
    #[serde(default)]
    subject: Option<String>,
    /// Show only events whose `x-gatehouse-subject` header is the caller's subject. Default true.
    #[serde(default = "yes")]
    only_caller: bool,
    /// A comment line after this long without events. Default 15s.
    #[serde(default)]
    keep_alive: Option<gatehouse_common::config::Duration>,
    /// Without `Last-Event-ID`: `new` events only (default) or `all` the stream holds.
    #[serde(default)]
    replay: Replay,
    /// The reconnection delay suggested to clients (`retry:`). Default 2s.
    #[serde(default)]
    retry: Option<gatehouse_common::config::Duration>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Replay {
    #[default]
    New,
    All,
}

struct Route {
    broker: Arc<Broker>,
    drain: CancellationToken,
    route: Arc<str>,
    stream: String,
    subject: String,
    only_caller: bool,
    keep_alive: Duration,
    replay_all: bool,
    /// `retry: <ms>`, framed once.
    retry: Bytes,
}

impl HandlerKind for EventStream {
    fn name(&self) -> &'static str {
        "event_stream"
    }

    fn build(&self, cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError> {
        let args: Args = cx.args()?;
        if !is_name(&args.stream) {
            return Err(cx.error(
                "stream",
                "letters, digits, `-` and `_` only (a stream name)",
            ));
        }
        if let Some(s) = &args.subject
            && (s.is_empty()
                || s.split('.')
                    .any(|t| t.is_empty() || t.contains(char::is_whitespace)))
        {
            return Err(cx.error(
                "subject",
                "must be a NATS subject (wildcards `*` and `>` allowed)",
            ));
        }
        let keep_alive = args.keep_alive.map_or(Duration::from_secs(15), |d| d.get());
        if keep_alive < Duration::from_millis(100) {
            return Err(cx.error("keep_alive", "must be at least 100ms"));
        }
        let retry = args.retry.map_or(Duration::from_secs(2), |d| d.get());
        let route = Arc::new(Route {
            broker: self.broker.clone(),
            drain: self.drain.clone(),
            route: Arc::from(cx.route),
            stream: args.stream,
            subject: args.subject.unwrap_or_default(),
            only_caller: args.only_caller,
            keep_alive,
            replay_all: args.replay == Replay::All,
            retry: Bytes::from(format!("retry: {}\n\n", retry.as_millis())),
        });
        Ok(HandlerService::new(tower::service_fn(
            move |req: HandlerRequest| {
                let route = route.clone();
                async move { route.serve(req).await }
            },
        )))
    }
}

impl Route {
    async fn serve(&self, req: HandlerRequest) -> Result<Response<ProxyBody>, ProxyError> {
        let start = start(&req.parts.headers, self.replay_all)?;
        let caller = match self.only_caller {
            false => None,
            true => Some(req.parts.headers.get(X_SUBJECT).cloned().ok_or_else(|| {
                ProxyError::BadRequest {
                    reason: "this stream shows the caller's own events; the request has no subject"
                        .into(),
                }
            })?),
        };
        let js = self.broker.jetstream()?;
        let client = self.broker.client()?;
        let open = async {
            let stream = js
                .get_stream(&self.stream)
                .await
                .map_err(|e| e.to_string())?;
            let consumer = stream
                .create_consumer(push::OrderedConfig {
                    deliver_subject: client.new_inbox(),
                    filter_subject: self.subject.clone(),
                    deliver_policy: start,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        };
        let messages = match tokio::time::timeout(Duration::from_secs(5), open).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(unavailable(true, format!("stream `{}`: {e}", self.stream))),
            Err(_) => {
                return Err(unavailable(
                    true,
                    format!("stream `{}` did not open in time", self.stream),
                ));
            }
        };
        let series = ClientGauge::new(req.forward.metrics().events.stream_series(&self.route));
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + self.keep_alive,
            self.keep_alive,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let state = State {
            messages,
            tick,
            drain: self.drain.clone(),
            caller,
            first: Some(self.retry.clone()),
            series,
            ended: false,
        };
        let frames = futures_util::stream::unfold(state, |mut s| async move {
            let chunk = s.next_chunk().await?;
            Some((Ok::<_, gatehouse_common::BoxError>(Frame::data(chunk)), s))
        });
        let mut res = Response::new(StreamBody::new(frames).boxed_unsync());
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // nginx and some others buffer responses unless told not to.
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(res)
    }
}

/// One client's stream.
struct State {
    messages: push::Ordered,
    tick: tokio::time::Interval,
    drain: CancellationToken,
    caller: Option<HeaderValue>,
    /// The `retry:` line, sent first.
    first: Option<Bytes>,
    /// Its route's series; counts the client as connected while it lives.
    series: ClientGauge,
    /// The consumer failed or ended: nothing more after what was already written.
    ended: bool,
}

/// The most written in one chunk when several events are ready at once.
const MAX_CHUNK: usize = 32 * 1024;

impl State {
    /// The next bytes to send, or `None` when the stream ends.
    ///
    /// Events that are ready together go out as one chunk (one HTTP/2 DATA frame, up to
    /// [`MAX_CHUNK`]): fewer frames and writes under bursts, and no flood of tiny DATA frames,
    /// which HTTP/2 peers (h2's DATA-frame budget) answer with `ENHANCE_YOUR_CALM` once too
    /// many are buffered unread on a hop.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                _ = self.drain.cancelled() => return None,
                _ = self.tick.tick() => return Some(Bytes::from_static(KEEP_ALIVE)),
                next = self.messages.next() => {
                    let mut out = BytesMut::new();
                    if !self.write(next?, &mut out) {
                        return None;
                    }
                    while out.len() < MAX_CHUNK && !self.ended {
                        match self.messages.next().now_or_never() {
                            Some(Some(next)) => {
                                self.write(next, &mut out);
                            }
                            Some(None) => self.ended = true,
                            None => break,
                        }
                    }
                    if out.is_empty() {
                        // Nothing of the caller's yet.
                        continue;
                    }
                    self.tick.reset();
                    return Some(out.freeze());
                }
            }
        }
    }

    /// Appends `next` to `out` when it is the caller's; false when the consumer failed (the
    /// stream then ends after what `out` holds).
    fn write(
        &mut self,
        next: Result<jetstream::Message, push::OrderedError>,
        out: &mut BytesMut,
    ) -> bool {
        let message = match next {
            Ok(m) => m,
            Err(e) => {
                // The client comes back with `Last-Event-ID` and loses nothing.
                tracing::warn!(error = %e, "event stream: the broker's consumer failed; ending the stream");
                self.ended = true;
                return false;
            }
        };
        let headers = message.headers.as_ref();
        if let Some(caller) = &self.caller {
            let owner = headers
                .and_then(|h| h.get(X_SUBJECT))
                .map(|v| v.as_str().as_bytes());
            if owner != Some(caller.as_bytes()) {
                return true;
            }
        }
        let Ok(info) = message.info() else {
            return true;
        };
        let event = headers
            .and_then(|h| h.get(EVENT_TYPE))
            .map(|v| v.as_str())
            .unwrap_or(message.subject.as_str());
        write_event(out, info.stream_sequence, Some(event), &message.payload);
        self.series
            .0
            .lag
            .set(i64::try_from(info.pending).unwrap_or(i64::MAX));
        self.series.0.streamed.inc();
        true
    }
}

/// Counts a connected client for as long as its stream lives.
struct ClientGauge(StreamSeries);

impl ClientGauge {
    fn new(series: StreamSeries) -> Self {
        series.clients.inc();
        ClientGauge(series)
    }
}

impl Drop for ClientGauge {
    fn drop(&mut self) {
        self.0.clients.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed() {
        let cases: [(u64, Option<&str>, &[u8], &str); 5] = [
            (
                7,
                Some("order.completed"),
                br#"{"a":1}"#,
                "id: 7\nevent: order.completed\ndata: {\"a\":1}\n\n",
            ),
            (8, None, b"x", "id: 8\ndata: x\n\n"),
            (
                9,
                Some("t"),
                b"a\nb\r\nc\rd",
                "id: 9\nevent: t\ndata: a\ndata: b\ndata: c\ndata: d\n\n",
            ),
            (10, Some("bad\nevent"), b"", "id: 10\ndata: \n\n"),
            (11, Some(""), b"{}\n", "id: 11\ndata: {}\ndata: \n\n"),
        ];
        for (id, event, data, want) in cases {
            assert_eq!(event_frame(id, event, data), Bytes::from(want), "{id}");
        }
    }

    #[test]
    fn streams_resume_after_the_last_event() {
        let with = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert("last-event-id", HeaderValue::from_str(v).expect("header"));
            h
        };
        assert!(matches!(
            start(&http::HeaderMap::new(), false),
            Ok(DeliverPolicy::New)
        ));
        assert!(matches!(
            start(&http::HeaderMap::new(), true),
            Ok(DeliverPolicy::All)
        ));
        assert!(matches!(
            start(&with(" 41 "), false),
            Ok(DeliverPolicy::ByStartSequence { start_sequence: 42 })
        ));
        assert!(matches!(
            start(&with("x"), false),
            Err(ProxyError::BadRequest { .. })
        ));
        assert!(matches!(
            start(&with("-1"), false),
            Err(ProxyError::BadRequest { .. })
        ));
    }
}
