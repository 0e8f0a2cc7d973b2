//! Every service's admin listener: health, readiness, metrics, and chaos on the main listener.

use std::time::{Duration, Instant};

use gatehouse_topology::ServiceName;
use http::StatusCode;

use super::support::{chaos, get, start};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let svc = start(ServiceName::Inventory).await;
    assert_ne!(svc.listen(), svc.admin());
    let health = get(svc.admin(), "/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = get(svc.admin(), "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json["service"], "inventory");

    for _ in 0..3 {
        get(svc.listen(), "/stock/1001").await;
    }
    get(svc.listen(), "/stock/none").await;
    let metrics = get(svc.admin(), "/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("# TYPE demo_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains(r#"demo_requests_total{service="inventory",instance="1",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"demo_requests_total{service="inventory",instance="1",status="404"} 1"#),
        "{text}"
    );
    assert_eq!(
        get(svc.admin(), "/nope").await.status,
        StatusCode::NOT_FOUND
    );
    // The admin endpoints are not on the main listener.
    assert_eq!(
        get(svc.listen(), "/healthz").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn chaos_fails_and_slows_the_main_listener_until_reset() {
    let svc = start(ServiceName::Pricing).await;
    let set = chaos(svc.admin(), r#"{"error_rate": 1.0}"#).await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(
        set.json,
        serde_json::json!({"error_rate": 1.0, "latency_ms": 0})
    );
    for _ in 0..5 {
        let a = get(svc.listen(), "/prices/1001").await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(a.header("content-type"), "application/problem+json");
    }
    // The admin listener is never affected.
    assert_eq!(get(svc.admin(), "/healthz").await.status, StatusCode::OK);

    // A field left out keeps its value; the answer is what is now in force.
    let set = chaos(svc.admin(), r#"{"error_rate": 0, "latency_ms": 250}"#).await;
    assert_eq!(
        set.json,
        serde_json::json!({"error_rate": 0.0, "latency_ms": 250})
    );
    let started = Instant::now();
    let a = get(svc.listen(), "/prices/1001").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(250));

    let set = chaos(svc.admin(), r#"{"error_rate": 0, "latency_ms": 0}"#).await;
    assert_eq!(
        set.json,
        serde_json::json!({"error_rate": 0.0, "latency_ms": 0})
    );
    let started = Instant::now();
    assert_eq!(
        get(svc.listen(), "/prices/1001").await.status,
        StatusCode::OK
    );
    assert!(started.elapsed() < Duration::from_millis(200));

    let metrics = get(svc.admin(), "/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains(r#"status="503"} 5"#), "{text}");
    assert!(
        text.contains(r#"demo_chaos_failures_total{service="pricing",instance="1"} 5"#),
        "{text}"
    );
}

#[tokio::test]
async fn chaos_refuses_bad_settings() {
    let svc = start(ServiceName::Echo).await;
    for bad in [
        "not json",
        "",
        r#"{"error_rate": 1.5}"#,
        r#"{"error_rate": -0.1}"#,
        r#"{"latency_ms": -5}"#,
        r#"{"latency_ms": 600000}"#,
        r#"{"error_rate": "half"}"#,
        r#"{"errors": 1}"#,
    ] {
        let a = chaos(svc.admin(), bad).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            a.header("content-type"),
            "application/problem+json",
            "{bad}"
        );
        assert_eq!(a.json["status"], 400);
    }
    let now = get(svc.admin(), "/_chaos").await;
    assert_eq!(
        now.json,
        serde_json::json!({"error_rate": 0.0, "latency_ms": 0})
    );
}
