//! The service's Prometheus metrics (text exposition format 0.0.4): requests by status, chaos
//! faults injected, and the chaos settings in force.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::chaos::ChaosSettings;

/// The `Content-Type` of `/metrics`.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counters of one demo service.
#[derive(Debug)]
pub(crate) struct Metrics {
    service: &'static str,
    instance: u32,
    /// Requests answered on the main listener, by status: the HTTP status code for REST, the
    /// gRPC status code number (`0` = OK) for `orders`.
    requests: Mutex<BTreeMap<String, u64>>,
    /// Requests failed on purpose by chaos.
    injected: Mutex<u64>,
}

impl Metrics {
    pub(crate) fn new(service: &'static str, instance: u32) -> Self {
        Metrics {
            service,
            instance,
            requests: Mutex::new(BTreeMap::new()),
            injected: Mutex::new(0),
        }
    }

    /// Counts one answered request.
    pub(crate) fn request(&self, status: impl ToString) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry(status.to_string()).or_default() += 1;
    }

    /// Counts one request failed by chaos.
    pub(crate) fn injected(&self) {
        *self.injected.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    /// The exposition text.
    pub(crate) fn render(&self, chaos: ChaosSettings) -> String {
        let labels = format!(
            "service=\"{}\",instance=\"{}\"",
            self.service, self.instance
        );
        let mut out = String::new();
        out.push_str("# HELP demo_requests_total Requests answered on the main listener, by status (HTTP code, or gRPC code number).\n");
        out.push_str("# TYPE demo_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for (status, n) in requests.iter() {
            let _ = writeln!(
                out,
                "demo_requests_total{{{labels},status=\"{status}\"}} {n}"
            );
        }
        drop(requests);
        let injected = *self.injected.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP demo_chaos_failures_total Requests failed on purpose by chaos.\n");
        out.push_str("# TYPE demo_chaos_failures_total counter\n");
        let _ = writeln!(out, "demo_chaos_failures_total{{{labels}}} {injected}");
        out.push_str("# HELP demo_chaos_error_rate Share of requests chaos fails.\n");
        out.push_str("# TYPE demo_chaos_error_rate gauge\n");
        let _ = writeln!(
            out,
            "demo_chaos_error_rate{{{labels}}} {}",
            chaos.error_rate
        );
        out.push_str("# HELP demo_chaos_latency_seconds Latency chaos adds before every answer.\n");
        out.push_str("# TYPE demo_chaos_latency_seconds gauge\n");
        let secs = chaos.latency_ms as f64 / 1000.0;
        let _ = writeln!(out, "demo_chaos_latency_seconds{{{labels}}} {secs}");
        out
    }
}
