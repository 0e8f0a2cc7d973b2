//! The event handlers against a real `nats-server` (TLS, users with permissions) started by
//! each test: publish → ack → 202, a repeated key → the same job, the job's state per owner,
//! the stream as server-sent events with resume and keep-alive, broker down → 503 with
//! Retry-After and back to 202 once it returns, and no broker configured → 503.

#[path = "../../tests/tests/mtls/support.rs"]
#[allow(dead_code)]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use gatehouse_certs::Kind;
use gatehouse_certs::test_util::TestPki;
use gatehouse_common::body::{ProxyBody, full};
use gatehouse_common::config;
use gatehouse_common::runtime::Running;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::nats::{NatsConfig, NatsServer};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use support::{TempDir, mesh_client, open};

const EDGE: &str = "spiffe://gatehouse.local/gateway/edge";
const INTERNAL: &str = "spiffe://gatehouse.local/gateway/internal";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

const GATEWAY_PERMISSIONS: &str = r#"publish: { allow: ["orders.requests", "$JS.API.>", "$KV.JOBS.>", "$JS.FC.>"] }, subscribe: { allow: ["_INBOX.>"] }"#;
const WORKER_PERMISSIONS: &str = r#"publish: { allow: ["$JS.API.>", "$JS.ACK.>", "$KV.JOBS.>", "orders.events.>"], deny: ["orders.requests"] }, subscribe: { allow: ["_INBOX.>"] }"#;

struct Setup {
    dir: TempDir,
    nats: NatsServer,
    gw: Running,
    edge: Edge,
}

/// Requests to the gateway's mesh listener as the edge (mTLS with its identity), on behalf of
/// a subject.
struct Edge {
    pki: TestPki,
    mesh: SocketAddr,
}

async fn broker(pki: &TestPki, dir: &TempDir) -> Option<NatsServer> {
    let (cert, key) = pki
        .server(&["localhost", "127.0.0.1"])
        .write_to(dir.path(), "nats");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).expect("write CA");
    NatsServer::start(NatsConfig {
        tls: Some((cert, key, ca)),
        users: vec![
            (
                "gateway".into(),
                "gw-secret".into(),
                GATEWAY_PERMISSIONS.into(),
            ),
            (
                "worker".into(),
                "wk-secret".into(),
                WORKER_PERMISSIONS.into(),
            ),
        ],
    })
    .await
}

fn gateway_yaml(pki: &TestPki, dir: &TempDir, events: &str) -> String {
    let (cert, key) = pki
        .workload(Kind::Gateway, "internal")
        .write_to(dir.path(), "internal");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).expect("write CA");
    format!(
        r#"
listeners:
  - name: mesh
    address: 127.0.0.1:0
    tls: {{ cert: "{cert}", key: "{key}", client_ca: "{ca}" }}
    trusted_gateways: [{EDGE}]
admin:
  address: 127.0.0.1:0
internal:
{events}
routes:
  - name: async
    match: {{ path: /async/orders, methods: [POST] }}
    handler:
      publish: {{ subject: orders.requests, location: "/jobs/{{job_id}}", bucket: JOBS, ack_timeout: 1s }}
  - name: optional
    match: {{ path: /async/optional, methods: [POST] }}
    handler:
      publish: {{ subject: orders.requests, location: "/jobs/{{job_id}}", idempotency_key: optional, json: false }}
  - name: jobs
    match: {{ path_template: "/jobs/{{job_id}}", methods: [GET] }}
    handler:
      job_status: {{ bucket: JOBS }}
  - name: events
    match: {{ path: /events, methods: [GET] }}
    handler:
      event_stream: {{ stream: ORDER_EVENTS, subject: "orders.events.>", keep_alive: 300ms }}
services: {{}}
"#,
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
    )
}

fn events_section(nats: &NatsServer, dir: &TempDir) -> String {
    format!(
        r#"  events:
    url: "{url}"
    tls: {{ ca: "{ca}" }}
    user: gateway
    password: gw-secret
    streams:
      - {{ name: ORDER_REQUESTS, subjects: [orders.requests] }}
      - {{ name: ORDER_EVENTS, subjects: ["orders.events.>"] }}
    buckets:
      - {{ name: JOBS }}"#,
        url = nats.url(),
        ca = dir.path().join("ca.pem").display(),
    )
}

async fn setup() -> Option<Setup> {
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("internal-events");
    let nats = broker(&pki, &dir).await?;
    let (logs, _guard) = support::Logs::capture();
    let yaml = gateway_yaml(&pki, &dir, &events_section(&nats, &dir));
    let loaded = config::parse::<ProxySettings>("internal.yaml", &yaml).expect("config");
    let gw = gatehouse_internal::run(loaded, None).await.expect("starts");
    // Ready once the broker was reached and the streams and bucket exist.
    for _ in 0..200 {
        if gw.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    if !gw.is_ready() {
        // Shows what the gateway logged about the broker.
        logs.wait_for("readiness with the broker up", |_| false)
            .await;
    }
    let mesh = gw.addr("mesh").await.expect("mesh listener");
    Some(Setup {
        dir,
        nats,
        gw,
        edge: Edge { pki, mesh },
    })
}

impl Edge {
    /// One request as the edge, on behalf of `subject`.
    async fn send(
        &self,
        method: &str,
        path: &str,
        subject: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> hyper::Response<Incoming> {
        let edge = self.pki.workload(Kind::Gateway, "edge");
        let mut conn = open(
            self.mesh,
            mesh_client(&self.pki, INTERNAL, Some(&edge), &rustls::version::TLS13),
            "localhost",
        )
        .await
        .expect("mTLS connection");
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("x-gatehouse-subject", subject)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body: ProxyBody = full(Bytes::from(body.to_owned()));
        conn.sender
            .send_request(req.body(body).expect("request"))
            .await
            .expect("response")
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        subject: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, HeaderMap, Value) {
        let res = self.send(method, path, subject, headers, body).await;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (parts.status, parts.headers, v)
    }
}

impl Setup {
    async fn worker(&self) -> jetstream::Context {
        let tls = gatehouse_common::tls::client_config(Some(&self.dir.path().join("ca.pem")), None)
            .expect("client TLS");
        let client =
            async_nats::ConnectOptions::with_user_and_password("worker".into(), "wk-secret".into())
                .require_tls(true)
                .tls_client_config(tls)
                .connect(self.nats.url())
                .await
                .expect("worker connects");
        jetstream::new(client)
    }
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn publish_answers_202_after_the_ack_and_a_repeat_names_the_same_job() {
    let Some(s) = setup().await else { return };
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let order = r#"{"productId":"p-1","quantity":2}"#;
    let key = [
        ("idempotency-key", "order-1"),
        ("traceparent", traceparent.as_str()),
        ("x-request-id", "req-async-1"),
    ];
    let (status, h, v) = s
        .edge
        .call("POST", "/async/orders", "alice", &key, order)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let job = v["job_id"].as_str().expect("job id").to_owned();
    assert_eq!(v, json!({"job_id": job, "status": "accepted"}));
    assert_eq!(header(&h, "location"), format!("/jobs/{job}"));
    assert_eq!(header(&h, "cache-control"), "no-store");

    // What the broker stored: the body as sent, the job, the caller and the trace.
    let js = s.worker().await;
    let stream = js.get_stream("ORDER_REQUESTS").await.expect("stream");
    let stored = stream.get_raw_message(1).await.expect("message 1");
    assert_eq!(&stored.payload[..], order.as_bytes());
    let headers = stored.headers;
    let get = |name: &str| {
        headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(get("Nats-Msg-Id"), job);
    assert_eq!(get("Gatehouse-Job-Id"), job);
    assert_eq!(get("x-gatehouse-subject"), "alice");
    assert_eq!(get("x-request-id"), "req-async-1");
    assert!(
        get("traceparent").starts_with(&format!("00-{TRACE_ID}-")),
        "{}",
        get("traceparent")
    );
    assert!(
        !get("traceparent").contains("00f067aa0ba902b7"),
        "a new span, not the caller's"
    );

    // The same key again: the same job, and the stream still holds one message.
    let (status, h2, v2) = s
        .edge
        .call("POST", "/async/orders", "alice", &key[..1], order)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v2}");
    assert_eq!(v2["job_id"], job);
    assert_eq!(header(&h2, "location"), header(&h, "location"));
    let mut stream = js.get_stream("ORDER_REQUESTS").await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);
    // Another caller's same key is another job.
    let (status, _, v3) = s
        .edge
        .call("POST", "/async/orders", "bob", &key[..1], order)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_ne!(v3["job_id"], job);

    // Refusals: no key, not JSON, a body too large for the route is refused before publishing.
    let (status, h, v) = s
        .edge
        .call("POST", "/async/orders", "alice", &[], order)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(header(&h, "content-type"), "application/problem+json");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or("")
            .contains("Idempotency-Key"),
        "{v}"
    );
    let (status, _, v) = s
        .edge
        .call(
            "POST",
            "/async/orders",
            "alice",
            &[("idempotency-key", "x")],
            "not json",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    // Optional key, any body: a new job each time.
    let (_, _, a) = s
        .edge
        .call("POST", "/async/optional", "alice", &[], "one")
        .await;
    let (_, _, b) = s
        .edge
        .call("POST", "/async/optional", "alice", &[], "one")
        .await;
    assert_ne!(a["job_id"], b["job_id"], "{a} {b}");
    let mut stream = js.get_stream("ORDER_REQUESTS").await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 4);

    // The job's state: its owner sees it, anyone else gets the same 404 as for no job.
    let path = format!("/jobs/{job}");
    let (status, h, v) = s.edge.call("GET", &path, "alice", &[], "").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"job_id": job, "status": "accepted", "result": null, "error": null})
    );
    assert_eq!(header(&h, "cache-control"), "no-store");
    for (who, p) in [
        ("bob", path.as_str()),
        ("alice", "/jobs/0123456789abcdef0123456789abcdef"),
        ("alice", "/jobs/nope"),
    ] {
        let (status, h, v) = s.edge.call("GET", p, who, &[], "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{who} {p}: {v}");
        assert_eq!(header(&h, "content-type"), "application/problem+json");
    }
    // The worker completes it.
    let kv = js.get_key_value("JOBS").await.expect("bucket");
    let done = json!({"job_id": job, "status": "completed", "owner": "alice", "result": {"orderId": "o-1", "totalCents": 1998}, "error": null});
    kv.put(&job, done.to_string().into()).await.expect("put");
    let (status, _, v) = s.edge.call("GET", &path, "alice", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        json!({"job_id": job, "status": "completed", "result": {"orderId": "o-1", "totalCents": 1998}, "error": null})
    );
    // A repeat after completion answers the job's state.
    let (_, _, v) = s
        .edge
        .call("POST", "/async/orders", "alice", &key[..1], order)
        .await;
    assert_eq!(v, json!({"job_id": job, "status": "completed"}));

    // Only the gateway may publish requests: the worker's publish is refused by the broker.
    let refused = tokio::time::timeout(Duration::from_secs(3), async {
        js.publish("orders.requests", "forged".into()).await?.await
    })
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "the worker published a request"
    );

    let metrics = metrics_text(&s.gw).await;
    for line in [
        r#"gatehouse_event_publishes_total{route="async",outcome="stored"} 2"#,
        r#"gatehouse_event_publishes_total{route="async",outcome="duplicate"} 2"#,
        "gatehouse_event_broker_connected 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

async fn metrics_text(gw: &Running) -> String {
    // The connection gauge is polled every second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, _, body) = gatehouse_tests::Client::http1()
        .get(&format!("http://{}/metrics", gw.admin_addr))
        .await;
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn broker_down_answers_503_with_retry_after_then_202_again() {
    let Some(mut s) = setup().await else { return };
    let order = r#"{"productId":"p-1","quantity":1}"#;
    let (status, _, first) = s
        .edge
        .call(
            "POST",
            "/async/orders",
            "alice",
            &[("idempotency-key", "before")],
            order,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    s.nats.stop().await;
    for key in ["down-1", "down-2"] {
        let (status, h, v) = s
            .edge
            .call(
                "POST",
                "/async/orders",
                "alice",
                &[("idempotency-key", key)],
                order,
            )
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert_eq!(header(&h, "retry-after"), "2");
        assert_eq!(
            v["type"].as_str().unwrap_or(""),
            "urn:gatehouse:problem:broker-unavailable",
            "{v}"
        );
    }
    let (status, h, _) = s.edge.call("GET", "/events", "alice", &[], "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&h, "retry-after"), "2");
    // A job read (its bucket already opened before the outage) is refused at once too, not
    // after the handler's 2s timeout.
    let job_path = format!("/jobs/{}", first["job_id"].as_str().unwrap_or(""));
    let asked = std::time::Instant::now();
    let (status, h, v) = s.edge.call("GET", &job_path, "alice", &[], "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(header(&h, "retry-after"), "2");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "took {:?}",
        asked.elapsed()
    );
    // Readiness was about the start: the other routes keep serving meanwhile.
    assert!(s.gw.is_ready());

    s.nats.restart().await;
    let mut answered = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        let (status, _, _) = s
            .edge
            .call(
                "POST",
                "/async/orders",
                "alice",
                &[("idempotency-key", "down-1")],
                order,
            )
            .await;
        answered = status;
        if status == StatusCode::ACCEPTED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answered,
        StatusCode::ACCEPTED,
        "no 202 after the broker came back"
    );
    // What was stored before the restart is still there.
    let (status, _, v) = s
        .edge
        .call(
            "GET",
            &format!("/jobs/{}", first["job_id"].as_str().unwrap_or("")),
            "alice",
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

/// Reads the event stream until `want` events (or 5s), returning the frames seen.
async fn read_events(body: &mut Incoming, want: usize) -> Vec<String> {
    let mut frames = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while frames
        .iter()
        .filter(|f: &&String| f.starts_with("id:"))
        .count()
        < want
    {
        let Ok(Some(frame)) = tokio::time::timeout_at(deadline, body.frame()).await else {
            break;
        };
        let Ok(data) = frame.expect("frame").into_data() else {
            continue;
        };
        buf.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = buf.find("\n\n") {
            frames.push(buf[..end].to_owned());
            buf.drain(..end + 2);
        }
    }
    frames
}

#[tokio::test]
async fn events_stream_as_sse_to_their_owner_and_resume_after_the_last_id() {
    let Some(s) = setup().await else { return };
    let js = s.worker().await;
    let publish = |subject: &'static str, owner: &'static str, n: u32| {
        let js = js.clone();
        async move {
            let mut h = async_nats::HeaderMap::new();
            h.insert("x-gatehouse-subject", owner);
            h.insert("Gatehouse-Event", "order.completed");
            js.publish_with_headers(subject, h, format!("{{\"n\":{n}}}").into())
                .await
                .expect("publish")
                .await
                .expect("ack")
                .sequence
        }
    };
    let res = s.edge.send("GET", "/events", "alice", &[], "").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(res.headers(), "content-type"), "text/event-stream");
    let mut body = res.into_body();
    // The stream is open once the retry hint arrived; events from now on are shown.
    let hint = read_events(&mut body, 0).await;
    assert!(hint.is_empty());
    let first = body
        .frame()
        .await
        .expect("frame")
        .expect("ok")
        .into_data()
        .expect("data");
    assert_eq!(&first[..], b"retry: 2000\n\n");
    let s1 = publish("orders.events.completed", "alice", 1).await;
    publish("orders.events.completed", "bob", 2).await;
    let s3 = publish("orders.events.completed", "alice", 3).await;
    let frames = read_events(&mut body, 2).await;
    let events: Vec<&String> = frames.iter().filter(|f| f.starts_with("id:")).collect();
    assert_eq!(
        events,
        [
            &format!("id: {s1}\nevent: order.completed\ndata: {{\"n\":1}}"),
            &format!("id: {s3}\nevent: order.completed\ndata: {{\"n\":3}}"),
        ],
        "bob's event is not alice's"
    );
    // Quiet: keep-alive comments.
    let quiet = tokio::time::timeout(Duration::from_secs(2), body.frame()).await;
    let data = quiet
        .expect("a keep-alive within 2s")
        .expect("frame")
        .expect("ok")
        .into_data()
        .expect("data");
    assert_eq!(&data[..], b": keep-alive\n\n");
    drop(body);

    // Resume after the first: the second of alice's comes again, nothing before it.
    let last = s1.to_string();
    let res = s
        .edge
        .send("GET", "/events", "alice", &[("last-event-id", &last)], "")
        .await;
    let mut body = res.into_body();
    let frames = read_events(&mut body, 1).await;
    let events: Vec<&String> = frames.iter().filter(|f| f.starts_with("id:")).collect();
    assert_eq!(
        events,
        [&format!(
            "id: {s3}\nevent: order.completed\ndata: {{\"n\":3}}"
        )]
    );
    let (status, _, v) = s
        .edge
        .call("GET", "/events", "alice", &[("last-event-id", "x")], "")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");

    // Draining ends open streams.
    s.gw.shutdown();
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream did not end when the gateway drained"
    );
}

#[tokio::test]
async fn without_a_broker_event_routes_answer_503() {
    let pki = TestPki::new("gatehouse.local");
    let dir = TempDir::new("internal-events-none");
    let yaml = gateway_yaml(&pki, &dir, "  events: { url: \"\" }");
    let loaded = config::parse::<ProxySettings>("internal.yaml", &yaml).expect("config");
    let gw = gatehouse_internal::run(loaded, None).await.expect("starts");
    let mesh = gw.addr("mesh").await.expect("mesh");
    let edge = Edge { pki, mesh };
    let (status, h, v) = edge
        .call(
            "POST",
            "/async/orders",
            "alice",
            &[("idempotency-key", "k")],
            "{}",
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(header(&h, "retry-after"), "2");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or("")
            .contains("no event broker is configured"),
        "{v}"
    );
    // Readiness does not wait for a broker that is not configured.
    assert!(gw.is_ready());
}

/// A bad `internal.events` or handler argument is refused by `validate` (exit 64) at its key.
#[test]
fn bad_event_settings_are_refused_at_their_key() {
    let cases: [(&str, &str, &str); 7] = [
        (
            "password without user",
            "internal:\n  events: { url: \"nats://127.0.0.1:4222\", password: x }\n",
            "at `internal.events.password`",
        ),
        (
            "not a NATS URL",
            "internal:\n  events: { url: \"ftp://h:1\" }\n",
            "at `internal.events.url`",
        ),
        (
            "stream name",
            "internal:\n  events: { streams: [{ name: \"a b\", subjects: [x] }] }\n",
            "at `internal.events.streams[0].name`",
        ),
        (
            "unreadable CA",
            "internal:\n  events: { url: \"tls://127.0.0.1:1\", tls: { ca: /nonexistent/ca.pem } }\n",
            "at `internal.events.tls`",
        ),
        (
            "wildcard subject to publish on",
            "routes:\n  - { name: a, match: { path: /a }, handler: { publish: { subject: \"orders.*\", location: \"/j/{job_id}\" } } }\n",
            "at `routes[0].handler.publish.subject`",
        ),
        (
            "location without the job id",
            "routes:\n  - { name: a, match: { path: /a }, handler: { publish: { subject: orders.requests, location: /jobs } } }\n",
            "at `routes[0].handler.publish.location`",
        ),
        (
            "unknown key",
            "routes:\n  - { name: a, match: { path: /a }, handler: { event_stream: { stream: S, keepalive: 1s } } }\n",
            "at `routes[0].handler.event_stream.keepalive`: unknown field `keepalive`",
        ),
    ];
    let dir = tempfile::tempdir().expect("dir");
    let mut failures = Vec::new();
    for (name, yaml, want) in cases {
        let path = dir.path().join("config.yaml");
        let text = format!("listeners: [{{ name: public, address: 127.0.0.1:0 }}]\n{yaml}");
        std::fs::write(&path, text).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse-internal"))
            .args(["validate", "--config"])
            .arg(&path)
            .output()
            .expect("run gatehouse-internal");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(64) || !stderr.contains(want) {
            failures.push(format!("{name}: {:?}: {stderr}", out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
