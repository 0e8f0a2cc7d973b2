//! Endpoint health: active checks (an HTTP probe on an interval, with thresholds) and the
//! settings of passive outlier detection (ejection after consecutive failures).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::client::UpstreamClient;
use crate::config::Duration as ConfigDuration;

/// Passive outlier detection: endpoints that fail are taken out of rotation for a while.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierSettings {
    /// Eject after this many consecutive failures (5xx, connect error, timeout). Default 5;
    /// 0 disables ejection.
    pub consecutive_failures: u32,
    /// First ejection time; the n-th consecutive ejection lasts n times this. Default 30s.
    pub base_ejection_time: ConfigDuration,
    /// Longest ejection. Default 300s.
    pub max_ejection_time: ConfigDuration,
    /// Never eject more than this share of a service's endpoints. Default 50.
    pub max_ejection_percent: u8,
}

impl Default for OutlierSettings {
    fn default() -> Self {
        OutlierSettings {
            consecutive_failures: 5,
            base_ejection_time: ConfigDuration::from_secs(30),
            max_ejection_time: ConfigDuration::from_secs(300),
            max_ejection_percent: 50,
        }
    }
}

/// Active health checking of every endpoint of a service.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSettings {
    /// Path probed with GET; a 2xx or 3xx answer is healthy.
    pub path: String,
    /// Default 5s.
    #[serde(default = "default_interval")]
    pub interval: ConfigDuration,
    /// Default 1s.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
    /// Consecutive successes to become healthy again. Default 2.
    #[serde(default = "default_healthy")]
    pub healthy_threshold: u32,
    /// Consecutive failures to become unhealthy. Default 3.
    #[serde(default = "default_unhealthy")]
    pub unhealthy_threshold: u32,
}

fn default_interval() -> ConfigDuration {
    ConfigDuration::from_secs(5)
}
fn default_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(1)
}
fn default_healthy() -> u32 {
    2
}
fn default_unhealthy() -> u32 {
    3
}

/// Runs the checks until `stop`: each round probes the endpoints the service has then.
pub fn spawn_checks(
    service: Arc<str>,
    settings: HealthCheckSettings,
    client: UpstreamClient,
    endpoints: Arc<arc_swap::ArcSwap<Vec<Arc<super::endpoint::Endpoint>>>>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        // (consecutive successes, consecutive failures) per endpoint.
        let mut streaks: HashMap<SocketAddr, (u32, u32)> = HashMap::new();
        let mut tick = tokio::time::interval(settings.interval.get());
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let current = endpoints.load_full();
            streaks.retain(|addr, _| current.iter().any(|e| e.addr == *addr));
            let probes = current.iter().map(|e| {
                let client = client.clone();
                let path = settings.path.clone();
                let timeout = settings.timeout.get();
                let e = e.clone();
                async move {
                    let ok = probe(&client, e.addr, &path, timeout).await;
                    (e, ok)
                }
            });
            for (e, ok) in futures_util::future::join_all(probes).await {
                let s = streaks.entry(e.addr).or_insert((0, 0));
                if ok {
                    *s = (s.0 + 1, 0);
                    if s.0 >= settings.healthy_threshold {
                        e.set_healthy(true);
                    }
                } else {
                    *s = (0, s.1 + 1);
                    if s.1 >= settings.unhealthy_threshold {
                        if s.1 == settings.unhealthy_threshold {
                            tracing::warn!(service = %service, endpoint = %e.addr, "endpoint failed its health checks");
                        }
                        e.set_healthy(false);
                    }
                }
            }
        }
    });
}

async fn probe(
    client: &UpstreamClient,
    addr: SocketAddr,
    path: &str,
    timeout: std::time::Duration,
) -> bool {
    let uri = format!("{}://{addr}{path}", client.scheme());
    let Ok(req) = http::Request::get(uri)
        .header(http::header::USER_AGENT, "gatehouse-health-check")
        .body(crate::body::empty())
    else {
        return false;
    };
    match tokio::time::timeout(timeout, client.send(req)).await {
        Ok(Ok(res)) => res.status().is_success() || res.status().is_redirection(),
        _ => false,
    }
}
