//! Route configuration: a reload swaps the whole table (a bad one is refused), and each kind
//! of mistake in a route is an error pointing at its key.

use gatehouse_common::config;
use gatehouse_common::plan::Plan;
use gatehouse_common::settings::ProxySettings;
use gatehouse_tests::named::{header, named, send};
use gatehouse_tests::{Client, start};
use http::StatusCode;

/// A reload swaps the whole table; a table that does not compile is refused and the old one
/// keeps serving.
#[tokio::test]
async fn reload_swaps_the_table_and_refuses_a_bad_one() {
    let a = named("a").await;
    let b = named("b").await;
    let conf = |routes: &str| {
        format!(
            "listeners: [{{ name: main, address: 127.0.0.1:0 }}]\nadmin: {{ address: 127.0.0.1:0 }}\nservices:\n  a: {{ endpoints: [\"{}\"] }}\n  b: {{ endpoints: [\"{}\"] }}\nroutes:\n{routes}\n",
            a.addr, b.addr
        )
    };
    let proxy = start(&conf(
        "  - { name: x, match: { path_prefix: /x }, service: a }",
    ))
    .await;
    let addr = proxy.addr("main").await.expect("listener");
    let c = Client::http1();
    let url = |path: &str| format!("http://{addr}{path}");
    let (_, h, _) = send(&c, "GET", &url("/x/1"), &[], None).await;
    assert_eq!(header(&h, "x-backend"), "a");

    let bad = conf("  - { name: x, match: { path_regex: \"/x/(\" }, service: b }");
    let loaded = config::parse::<ProxySettings>("test.yaml", &bad).expect("parses");
    assert!(proxy.reload_from(loaded).await.is_err());
    let (_, h, _) = send(&c, "GET", &url("/x/1"), &[], None).await;
    assert_eq!(header(&h, "x-backend"), "a");

    let good = conf("  - { name: x, match: { path_template: \"/x/{n}\" }, service: b }");
    let loaded = config::parse::<ProxySettings>("test.yaml", &good).expect("parses");
    proxy.reload_from(loaded).await.expect("reload");
    let (_, h, _) = send(&c, "GET", &url("/x/1"), &[], None).await;
    assert_eq!(header(&h, "x-backend"), "b");
    let (s, _, _) = send(&c, "GET", &url("/y"), &[], None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A config error per kind of mistake, each pointing at its key.
#[tokio::test]
async fn route_config_errors_point_at_the_key() {
    let base = "listeners: [{ name: main, address: 127.0.0.1:0 }]\nservices:\n  users: { endpoints: [127.0.0.1:1] }\n  orders: { endpoints: [127.0.0.1:1] }\nroutes:\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "  - { name: r, match: { path_regex: \"/(x\" }, service: users }",
            "routes[0].match.path_regex",
            "invalid regex",
        ),
        (
            "  - { name: r, match: { path_template: \"/u/{id\" }, service: users }",
            "routes[0].match.path_template",
            "a capture must be a whole segment",
        ),
        (
            "  - { name: r, match: { headers: [{ name: x, regex: \"[\" }] }, service: users }",
            "routes[0].match.headers[0].regex",
            "invalid regex",
        ),
        (
            "  - { name: r, split: [{ service: users, weight: 90 }, { service: order, weight: 10 }] }",
            "routes[0].split[1].service",
            "unknown service `order` (did you mean `orders`?)",
        ),
        (
            "  - { name: r, service: users, mirror: { service: user } }",
            "routes[0].mirror.service",
            "did you mean `users`?",
        ),
        (
            "  - { name: r, match: { path_template: \"/u/{id}\" }, service: users, rewrite: { path: \"/v1/{idd}\" } }",
            "routes[0].rewrite.path",
            "unknown value `{idd}` (did you mean `{id}`?)",
        ),
        (
            "  - { name: r, service: users, redirect: { location: /x } }",
            "routes[0].redirect",
            "a route has one action: `service` is given too",
        ),
        ("  - { name: r }", "routes[0]", "a route needs an action"),
        (
            "  - { name: r, redirect: { status: 200, location: /x } }",
            "routes[0].redirect.status",
            "not a redirect status",
        ),
        (
            "  - { name: r, match: { path_prefix: /a }, service: users, request_headers: { set: { \"bad header\": x } } }",
            "routes[0].request_headers.set.bad header",
            "invalid header name",
        ),
        (
            "  - { name: r, match: { path: /a }, service: users, rewrite: { strip_prefix: true } }",
            "routes[0].rewrite.strip_prefix",
            "needs `match.path_prefix`",
        ),
        (
            "  - { name: r, service: users, sticky: { header: x } }",
            "routes[0].sticky",
            "only with `split`",
        ),
    ];
    for (route, key, msg) in cases {
        let yaml = format!("{base}{route}\n");
        let loaded = config::parse::<ProxySettings>("test.yaml", &yaml).expect("parses");
        let err = Plan::build(loaded.value, &loaded.source, None)
            .expect_err(&format!("{route} must be refused"))
            .to_string();
        assert!(
            err.contains(&format!("at `{key}`")) && err.contains(msg),
            "{route}\n  got: {err}\n  want key `{key}` and `{msg}`"
        );
    }
}
