//! Prometheus metrics of one binary, served on the admin port in text format 0.0.4.
//!
//! Labels are bounded: route names come from config (never raw paths), status is a class.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label value for requests that matched no route.
pub const NO_ROUTE: &str = "(none)";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: Arc<str>,
    pub status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: Arc<str>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~33 s: proxy overhead is sub-millisecond, upstream time can be long.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// The metric families of a binary.
pub struct Metrics {
    /// Locked only to register a tier's own series and to render a scrape.
    registry: std::sync::Mutex<Registry>,
    /// Idle HTTP/1 connections parked now (see `server::h1`).
    pub parked_connections: Gauge,
    /// Mirrors [`crate::telemetry::writer::dropped_lines`], updated when rendered.
    log_lines_dropped: Counter,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pub upstream_connect_errors: Family<ServiceLabels, Counter>,
    pub open_connections: Family<ListenerLabels, Gauge>,
    pub in_flight: Gauge,
    /// The series of requests no route matched.
    pub no_route: RouteStats,
    pub config_reloads: Family<ReloadLabels, Counter>,
    /// Requests from mTLS peers, by listener and SPIFFE ID (bounded: mesh identities).
    pub peer_requests: Family<PeerLabels, Counter>,
    /// Requests a route sent on its own behalf (mirror copies, handlers' calls).
    pub child_requests: Family<ChildLabels, Counter>,
    /// Parts of handlers' composite answers (aggregation parts), by route, part and outcome.
    pub parts: Family<PartLabels, Counter>,
    pub part_duration: Family<PartLabels, Histogram, fn() -> Histogram>,
    pub upstream: UpstreamMetrics,
    /// Routes that hand work to an event broker and stream events back.
    pub events: EventMetrics,
}

/// A route's series of one kind of outcome; both bounded (route names, a fixed set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub route: Arc<str>,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Arc<str>,
}

/// The event broker's series (docs/events.md lists them).
#[derive(Debug, Clone)]
pub struct EventMetrics {
    /// Publishes by route and outcome: `stored`, `duplicate`, `refused` (no broker, not
    /// connected), `failed` (the broker answered an error), `timeout` (no ack in time).
    pub publishes: Family<OutcomeLabels, Counter>,
    /// From sending a message to the broker's acknowledgement.
    pub ack_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Events written to event-stream clients.
    pub streamed: Family<RouteLabels, Counter>,
    /// Event-stream clients connected now.
    pub stream_clients: Family<RouteLabels, Gauge>,
    /// Messages the broker still held for a route's stream clients when it last delivered one
    /// (the largest lag of its clients is not tracked: the last delivery's).
    pub stream_lag: Family<RouteLabels, Gauge>,
    /// 1 while the broker connection is up.
    pub broker_connected: Gauge,
}

/// A `publish` route's series, resolved once per route (no label lookup per request).
#[derive(Debug, Clone)]
pub struct PublishSeries {
    pub stored: Counter,
    pub duplicate: Counter,
    pub refused: Counter,
    pub failed: Counter,
    pub timeout: Counter,
    pub ack: Histogram,
}

/// An `event_stream` route's series, resolved once per client stream.
#[derive(Debug, Clone)]
pub struct StreamSeries {
    pub streamed: Counter,
    pub clients: Gauge,
    pub lag: Gauge,
}

impl EventMetrics {
    /// The series of the `publish` route `route`.
    pub fn publish_series(&self, route: &Arc<str>) -> PublishSeries {
        let outcome = |outcome| {
            self.publishes
                .get_or_create(&OutcomeLabels {
                    route: route.clone(),
                    outcome,
                })
                .clone()
        };
        let labels = RouteLabels {
            route: route.clone(),
        };
        PublishSeries {
            stored: outcome("stored"),
            duplicate: outcome("duplicate"),
            refused: outcome("refused"),
            failed: outcome("failed"),
            timeout: outcome("timeout"),
            ack: self.ack_duration.get_or_create(&labels).clone(),
        }
    }

    /// The series of the `event_stream` route `route`.
    pub fn stream_series(&self, route: &Arc<str>) -> StreamSeries {
        let labels = RouteLabels {
            route: route.clone(),
        };
        StreamSeries {
            streamed: self.streamed.get_or_create(&labels).clone(),
            clients: self.stream_clients.get_or_create(&labels).clone(),
            lag: self.stream_lag.get_or_create(&labels).clone(),
        }
    }

    fn new(registry: &mut Registry) -> Self {
        let m = EventMetrics {
            publishes: Family::default(),
            ack_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            streamed: Family::default(),
            stream_clients: Family::default(),
            stream_lag: Family::default(),
            broker_connected: Gauge::default(),
        };
        registry.register(
            "event_publishes",
            "Requests published to the event broker, by route and outcome",
            m.publishes.clone(),
        );
        registry.register(
            "event_ack_duration_seconds",
            "Time from publishing a request to the broker's acknowledgement, by route",
            m.ack_duration.clone(),
        );
        registry.register(
            "events_streamed",
            "Events written to event-stream clients, by route",
            m.streamed.clone(),
        );
        registry.register(
            "event_stream_clients",
            "Event-stream clients connected now, by route",
            m.stream_clients.clone(),
        );
        registry.register(
            "event_stream_lag",
            "Messages the broker still held for a route's stream when it last delivered one",
            m.stream_lag.clone(),
        );
        registry.register(
            "event_broker_connected",
            "1 while the connection to the event broker is up",
            m.broker_connected.clone(),
        );
        m
    }
}

/// Labels of a child request (see [`crate::forward`]); all bounded by the config.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChildLabels {
    pub route: Arc<str>,
    pub service: Arc<str>,
    /// What sent it: `mirror` or a handler's kind.
    pub origin: &'static str,
    pub status_class: &'static str,
}

/// A part's series: the names come from the config, so the label set is bounded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartLabels {
    pub route: Arc<str>,
    pub part: Arc<str>,
    /// `2xx`... by the status the part counts as (a timeout 504, a skipped part 424).
    pub status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub listener: Arc<str>,
    pub peer: Arc<str>,
    pub status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub service: Arc<str>,
    pub endpoint: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OverloadLabels {
    pub service: Arc<str>,
    pub reason: &'static str,
}

/// Metrics of the resilient upstream client, per service and endpoint.
#[derive(Debug, Default, Clone)]
pub struct UpstreamMetrics {
    pub requests: Family<EndpointLabels, Counter>,
    pub retries: Family<ServiceLabels, Counter>,
    pub budget_exhausted: Family<ServiceLabels, Counter>,
    pub ejections: Family<EndpointLabels, Counter>,
    pub overloaded: Family<OverloadLabels, Counter>,
    pub ewma: Family<EndpointLabels, Gauge<f64, AtomicU64>>,
}

impl UpstreamMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "upstream_requests",
            "Attempts sent to upstream endpoints (retries included)",
            self.requests.clone(),
        );
        r.register(
            "upstream_retries",
            "Retries sent, by service",
            self.retries.clone(),
        );
        r.register(
            "upstream_retry_budget_exhausted",
            "Retries refused because the retry budget was spent",
            self.budget_exhausted.clone(),
        );
        r.register(
            "upstream_ejections",
            "Endpoints ejected by outlier detection",
            self.ejections.clone(),
        );
        r.register(
            "upstream_overloaded",
            "Requests refused at once by a circuit breaker, by reason",
            self.overloaded.clone(),
        );
        r.register(
            "upstream_ewma_seconds",
            "Peak-EWMA latency estimate of each endpoint",
            self.ewma.clone(),
        );
    }

    pub fn request(&self, stats: &EndpointStats, service: &Arc<str>, endpoint: &Arc<str>) {
        stats
            .requests
            .get_or_init(|| self.requests.get_or_create(&ep(service, endpoint)).clone())
            .inc();
    }

    pub fn retry(&self, service: &Arc<str>) {
        self.retries.get_or_create(&svc(service)).inc();
    }

    pub fn retry_budget_exhausted(&self, service: &Arc<str>) {
        self.budget_exhausted.get_or_create(&svc(service)).inc();
    }

    pub fn ejection(&self, service: &Arc<str>, endpoint: &Arc<str>) {
        self.ejections.get_or_create(&ep(service, endpoint)).inc();
    }

    pub fn overloaded(&self, service: &Arc<str>, reason: &'static str) {
        let labels = OverloadLabels {
            service: service.clone(),
            reason,
        };
        self.overloaded.get_or_create(&labels).inc();
    }

    pub fn ewma(
        &self,
        stats: &EndpointStats,
        service: &Arc<str>,
        endpoint: &Arc<str>,
        value: std::time::Duration,
    ) {
        stats
            .ewma
            .get_or_init(|| self.ewma.get_or_create(&ep(service, endpoint)).clone())
            .set(value.as_secs_f64());
    }
}

fn svc(service: &Arc<str>) -> ServiceLabels {
    ServiceLabels {
        service: service.clone(),
    }
}

fn ep(service: &Arc<str>, endpoint: &Arc<str>) -> EndpointLabels {
    EndpointLabels {
        service: service.clone(),
        endpoint: endpoint.clone(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            );
        let upstream_connect_errors = Family::<ServiceLabels, Counter>::default();
        let open_connections = Family::<ListenerLabels, Gauge>::default();
        let in_flight = Gauge::default();
        let config_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route and status class",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request head to the end of the response body",
            request_duration.clone(),
        );
        registry.register(
            "upstream_connect_errors",
            "Failed connections to upstream endpoints, by service",
            upstream_connect_errors.clone(),
        );
        registry.register(
            "open_connections",
            "Downstream connections open now, by listener",
            open_connections.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Requests being handled now",
            in_flight.clone(),
        );
        registry.register(
            "config_reloads",
            "Config reload attempts, by result",
            config_reloads.clone(),
        );
        let peer_requests = Family::<PeerLabels, Counter>::default();
        registry.register(
            "peer_requests",
            "Requests from mTLS peers, by listener, SPIFFE ID and status class",
            peer_requests.clone(),
        );
        let child_requests = Family::<ChildLabels, Counter>::default();
        registry.register(
            "child_requests",
            "Requests routes sent on their own behalf (mirrors, handlers), by route, service, \
             origin and status class",
            child_requests.clone(),
        );
        let parts = Family::<PartLabels, Counter>::default();
        registry.register(
            "handler_parts",
            "Parts of composite answers (aggregation), by route, part and status class",
            parts.clone(),
        );
        let part_duration =
            Family::<PartLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            );
        registry.register(
            "handler_part_duration_seconds",
            "Time a part of a composite answer took, by route, part and status class",
            part_duration.clone(),
        );
        let parked_connections = Gauge::default();
        registry.register(
            "parked_connections",
            "Idle HTTP/1 connections holding only their socket (hyper's buffers released)",
            parked_connections.clone(),
        );
        let log_lines_dropped = Counter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because stderr could not keep up (the log queue was full)",
            log_lines_dropped.clone(),
        );
        let upstream = UpstreamMetrics::default();
        upstream.register(&mut registry);
        let events = EventMetrics::new(&mut registry);
        Metrics {
            no_route: RouteStats::new(Arc::from(NO_ROUTE)),
            parked_connections,
            log_lines_dropped,
            events,
            peer_requests,
            child_requests,
            parts,
            part_duration,
            upstream,
            registry: std::sync::Mutex::new(registry),
            requests,
            request_duration,
            upstream_connect_errors,
            open_connections,
            in_flight,
            config_reloads,
        }
    }

    /// Records one finished request of a route ([`Metrics::no_route`] when none matched).
    pub fn observe_request(&self, route: &RouteStats, status: u16, seconds: f64) {
        let i = class_index(status);
        let (requests, duration) = route.classes[i].get_or_init(|| {
            let labels = RequestLabels {
                route: route.route.clone(),
                status_class: STATUS_CLASSES[i],
            };
            (
                self.requests.get_or_create(&labels).clone(),
                self.request_duration.get_or_create(&labels).clone(),
            )
        });
        requests.inc();
        duration.observe(seconds);
    }

    /// Counts a failed connection to an endpoint of `service`.
    pub fn upstream_connect_error(&self, service: &Arc<str>) {
        self.upstream_connect_errors
            .get_or_create(&svc(service))
            .inc();
    }

    /// Registers a tier's own series (its crate declares them), e.g. the edge's shared rate
    /// limits. Call once per process: a name registered twice is rendered twice.
    pub fn register(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The registry in Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        // The writer counts drops process-wide; the counter catches up at each scrape.
        let dropped = crate::telemetry::writer::dropped_lines();
        let seen = self.log_lines_dropped.get();
        if dropped > seen {
            self.log_lines_dropped.inc_by(dropped - seen);
        }
        let mut out = String::with_capacity(4096);
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

/// `2xx`, `4xx`, ... for a status code.
pub fn status_class(status: u16) -> &'static str {
    STATUS_CLASSES[class_index(status)]
}

/// The `status_class` label values, indexed by [`class_index`].
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// A route's `requests` counter and `request_duration_seconds` histogram for each status class,
/// looked up in the families on first use and kept with the compiled route: a finished request
/// then costs no label hashing or lock. A reload builds new routes, which find the same series.
/// A route belongs to one process's plan, so to one `Metrics`: the first to write it is that one.
#[derive(Debug)]
pub struct RouteStats {
    route: Arc<str>,
    classes: [OnceLock<(Counter, Histogram)>; 5],
}

impl RouteStats {
    pub fn new(route: Arc<str>) -> Self {
        RouteStats {
            route,
            classes: Default::default(),
        }
    }
}

/// An endpoint's `upstream_requests` counter and `upstream_ewma_seconds` gauge, looked up on
/// first use and kept with the endpoint (see [`RouteStats`]). Each is made when first written,
/// as before, so an endpoint never answered has no latency series.
#[derive(Debug, Default)]
pub struct EndpointStats {
    requests: OnceLock<Counter>,
    ewma: OnceLock<Gauge<f64, AtomicU64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .map(|v| v.trim().to_owned())
    }

    /// Kept handles write the series a label lookup finds: a reload's new routes and endpoint
    /// objects count on in the same series, and nothing appears before it is written.
    #[test]
    fn kept_handles_count_in_the_labelled_series() {
        let m = Metrics::new();
        let name: Arc<str> = Arc::from("users");
        let before_reload = RouteStats::new(name.clone());
        let after_reload = RouteStats::new(name.clone());
        m.observe_request(&before_reload, 200, 0.01);
        m.observe_request(&before_reload, 204, 0.01);
        m.observe_request(&after_reload, 299, 0.01);
        m.observe_request(&after_reload, 503, 0.01);
        m.observe_request(&m.no_route, 404, 0.01);

        let service: Arc<str> = Arc::from("users-svc");
        let endpoint: Arc<str> = Arc::from("127.0.0.1:1");
        let (a, b) = (EndpointStats::default(), EndpointStats::default());
        m.upstream.request(&a, &service, &endpoint);
        m.upstream.request(&b, &service, &endpoint);

        let text = m.render();
        let requests = |class: &str| {
            line_value(
                &text,
                &format!(r#"gatehouse_requests_total{{route="users",status_class="{class}"}}"#),
            )
        };
        assert_eq!(requests("2xx").as_deref(), Some("3"), "{text}");
        assert_eq!(requests("5xx").as_deref(), Some("1"), "{text}");
        assert_eq!(requests("4xx"), None, "{text}");
        assert_eq!(
            line_value(
                &text,
                r#"gatehouse_requests_total{route="(none)",status_class="4xx"}"#
            )
            .as_deref(),
            Some("1")
        );
        assert_eq!(
            line_value(
                &text,
                r#"gatehouse_request_duration_seconds_count{route="users",status_class="2xx"}"#
            )
            .as_deref(),
            Some("3")
        );
        let upstream =
            r#"gatehouse_upstream_requests_total{service="users-svc",endpoint="127.0.0.1:1"}"#;
        assert_eq!(line_value(&text, upstream).as_deref(), Some("2"), "{text}");
        // No answer yet: no latency series.
        assert!(!text.contains("gatehouse_upstream_ewma_seconds{"), "{text}");
        m.upstream
            .ewma(&a, &service, &endpoint, std::time::Duration::from_millis(5));
        assert_eq!(
            line_value(
                &m.render(),
                r#"gatehouse_upstream_ewma_seconds{service="users-svc",endpoint="127.0.0.1:1"}"#
            )
            .as_deref(),
            Some("0.005")
        );
    }
}
