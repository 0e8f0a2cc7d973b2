//! The tier seam without sockets: a test tier reads its own section, offers a handler kind,
//! and the plan builds that kind per route, refuses unknown kinds and other tiers' sections
//! with positions and suggestions; the built handler serves a request.

use std::sync::Arc;

use http::{Request, Response};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use super::*;
use crate::body::{empty, full};
use crate::ctx::RequestCtx;
use crate::error::ProxyError;
use crate::forward::Forward;
use crate::handler::{HandlerBuild, HandlerKind, HandlerRequest, HandlerService};
use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::routing::{Action, ValueTemplate};
use crate::settings::ProxySettings;
use crate::trace_context::TraceContext;

/// The test tier's section (under the reserved `internal` key).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Section {
    greeting: String,
}

#[derive(Debug)]
struct TestTier;

impl Tier for TestTier {
    fn section(&self) -> Option<&'static str> {
        Some("internal")
    }

    fn build(&self, cx: &TierBuild<'_>) -> Result<TierPlan, ConfigError> {
        let section = crate::config::section::<Section>(cx.source, "internal")?;
        let greeting = section.as_ref().map_or("hello", |s| &s.greeting).to_owned();
        Ok(TierPlan {
            handlers: crate::handler::Handlers::new([
                Arc::new(Greet { greeting }) as Arc<dyn HandlerKind>,
                Arc::new(Stall),
            ]),
            section: section
                .and_then(|s| serde_json::to_value(s).ok())
                .map(|v| ("internal", v)),
            ..TierPlan::default()
        })
    }
}

/// `greet: {to: TEMPLATE}` answers `<greeting> <to>`.
#[derive(Debug)]
struct Greet {
    greeting: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GreetArgs {
    to: String,
}

impl HandlerKind for Greet {
    fn name(&self) -> &'static str {
        "greet"
    }

    fn build(&self, cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError> {
        let args: GreetArgs = cx.args()?;
        let compiled: Arc<(String, ValueTemplate)> =
            Arc::new((self.greeting.clone(), cx.template("to", &args.to)?));
        Ok(HandlerService::new(tower::service_fn(
            move |req: HandlerRequest| {
                let text = format!("{} {}", compiled.0, compiled.1.render(&req.vars()));
                async move { Ok::<_, ProxyError>(Response::new(full(text))) }
            },
        )))
    }
}

/// `stall: {}` answers after a minute, with hop-by-hop headers a relayed answer could carry.
#[derive(Debug)]
struct Stall;

impl HandlerKind for Stall {
    fn name(&self) -> &'static str {
        "stall"
    }

    fn build(&self, _cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError> {
        Ok(HandlerService::new(tower::service_fn(
            |req: HandlerRequest| async move {
                let wait = match req.parts.uri.path() {
                    "/slow" => std::time::Duration::from_secs(60),
                    _ => std::time::Duration::ZERO,
                };
                tokio::time::sleep(wait).await;
                let mut res = Response::new(full("done"));
                let h = res.headers_mut();
                h.insert(
                    "connection",
                    http::HeaderValue::from_static("keep-alive, x-hop"),
                );
                h.insert("keep-alive", http::HeaderValue::from_static("timeout=5"));
                h.insert("x-hop", http::HeaderValue::from_static("1"));
                h.insert("x-kept", http::HeaderValue::from_static("1"));
                Ok::<_, ProxyError>(res)
            },
        )))
    }
}

const LISTENER: &str = "listeners: [{ name: main, address: 127.0.0.1:0 }]\n";

fn plan(tier: &dyn Tier, yaml: &str) -> Result<Plan, ConfigError> {
    let text = format!("{LISTENER}{yaml}");
    let loaded = crate::config::parse::<ProxySettings>("tier.yaml", &text)?;
    Plan::build_with(loaded.value, &loaded.source, None, tier)
}

fn refused(tier: &dyn Tier, yaml: &str) -> String {
    match plan(tier, yaml) {
        Ok(_) => panic!("accepted: {yaml}"),
        Err(e) => e.to_string(),
    }
}

const GREET_ROUTE: &str = "routes:\n  - name: hi\n    match: { path_template: \"/hi/{name}\" }\n    handler:\n      greet: { to: \"{name}\" }\n";

fn request_ctx() -> RequestCtx {
    let (trace, trace_valid) = TraceContext::from_headers(&http::HeaderMap::new());
    RequestCtx {
        request_id: http::HeaderValue::from_static("req-1"),
        trace,
        trace_valid,
        start: std::time::Instant::now(),
        client_addr: "127.0.0.1:1234".parse().expect("addr"),
        listener: Arc::from("main"),
        grpc: false,
        tls: false,
        peer_identity: None,
        method: http::Method::GET,
        path: "/hi/ada".into(),
        authority: None,
        version: http::Version::HTTP_11,
        route: Some(Arc::from("hi")),
        route_stats: None,
        service: None,
        upstream: None,
        failed: None,
        extensions: http::Extensions::new(),
    }
}

#[tokio::test]
async fn a_tiers_handler_is_built_per_route_and_serves() {
    let yaml = format!("internal: {{ greeting: welcome }}\n{GREET_ROUTE}");
    let plan = plan(&TestTier, &yaml).expect("plan");
    let route = &plan.routes()[0];
    assert_eq!(route.action.kind(), "greet");
    let (key, section) = plan
        .tier
        .section
        .as_ref()
        .expect("section kept for /config");
    assert_eq!(*key, "internal");
    assert_eq!(section["greeting"], "welcome");

    let Action::Handler { service, .. } = &route.action else {
        panic!("not a handler: {:?}", route.action)
    };
    let ctx = request_ctx();
    let (parts, body) = Request::get("/hi/ada")
        .body(empty())
        .expect("req")
        .into_parts();
    let forward = Forward::for_request(&ctx, &parts.headers, Arc::new(Metrics::new()), None, false);
    let req = HandlerRequest {
        parts,
        body,
        captures: vec![Some("ada".into())],
        route: Arc::from("hi"),
        host: None,
        forward,
    };
    let res = service.clone().oneshot(req).await.expect("handler answers");
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"welcome ada");
}

/// What a config gave ↔ the error it gets (a substring each).
#[test]
fn handlers_and_sections_are_refused_with_position_and_hint() {
    let cases: [(&str, &dyn Tier, String, &[&str]); 6] = [
        (
            "unknown kind",
            &TestTier,
            GREET_ROUTE.replace("greet:", "gret:"),
            &[
                "tier.yaml:6:7: at `routes[0].handler.gret`",
                "unknown handler `gret`: this binary offers `greet`",
                "(did you mean `greet`?)",
            ],
        ),
        (
            "a binary without handlers",
            &NoTier,
            GREET_ROUTE.to_owned(),
            &["unknown handler `greet`: this binary offers no route handlers"],
        ),
        (
            "two kinds",
            &TestTier,
            GREET_ROUTE.replace(
                "      greet: { to: \"{name}\" }",
                "      greet: {}\n      wave: {}",
            ),
            &["at `routes[0].handler`", "names exactly one kind"],
        ),
        (
            "misspelt argument",
            &TestTier,
            GREET_ROUTE.replace("{ to:", "{ too:"),
            &[
                "at `routes[0].handler.greet.too`",
                "unknown field `too`, expected `to`",
                "(did you mean `to`?)",
            ],
        ),
        (
            "misspelt section key",
            &TestTier,
            "internal:\n  greting: hi\n".to_owned(),
            &[
                "tier.yaml:3:3: at `internal.greting`",
                "unknown field `greting`",
                "(did you mean `greeting`?)",
            ],
        ),
        (
            "another binary's section",
            &NoTier,
            "internal: { greeting: hi }\n".to_owned(),
            &[
                "tier.yaml:2:1: at `internal`",
                "belongs to another Gatehouse binary",
                "this binary reads no section of its own",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (name, tier, yaml, wants) in cases {
        let got = refused(tier, &yaml);
        for want in wants {
            if !got.contains(want) {
                failures.push(format!("{name}: want `{want}` in: {got}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Through the proxy path itself, without sockets: `handle` on a plan and a connection record.
async fn through_proxy(plan: Plan, path: &str) -> http::Response<crate::proxy::ResponseBody> {
    let shared = Arc::new(crate::proxy::Shared {
        plan: arc_swap::ArcSwap::from_pointee(plan),
        metrics: Arc::new(Metrics::new()),
    });
    let conn = Arc::new(crate::conn::ConnInfo {
        client_addr: "127.0.0.1:1234".parse().expect("addr"),
        listener: Arc::from("main"),
        tls: false,
        peer_identity: None,
        activity: crate::conn::ConnActivity::default(),
    });
    let req = Request::get(path)
        .header("host", "gw.test")
        .header("x-request-id", "req-9")
        .body(empty())
        .expect("request");
    crate::proxy::handle(shared, conn, req).await
}

const STALL_ROUTE: &str = "routes:\n  - name: stall\n    timeout: 1s\n    handler: { stall: {} }\n";

#[tokio::test(start_paused = true)]
async fn the_route_deadline_bounds_a_handler() {
    let plan = plan(&TestTier, STALL_ROUTE).expect("plan");
    let res = through_proxy(plan, "/slow").await;
    assert_eq!(res.status(), http::StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(res.headers()["x-request-id"], "req-9");
    let body = res.into_body().collect().await.expect("body").to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).expect("problem json");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("upstream-timeout")),
        "{problem}"
    );
}

#[tokio::test]
async fn a_handlers_answer_loses_its_hop_by_hop_headers() {
    let plan = plan(&TestTier, STALL_ROUTE).expect("plan");
    let res = through_proxy(plan, "/now").await;
    assert_eq!(res.status(), http::StatusCode::OK);
    let h = res.headers();
    for gone in ["connection", "keep-alive", "x-hop"] {
        assert!(h.get(gone).is_none(), "{gone} was relayed");
    }
    assert_eq!(h["x-kept"], "1");
    assert_eq!(h["x-request-id"], "req-9");
}
