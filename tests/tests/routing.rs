//! The route table through real sockets: a table of requests against a table of routes,
//! checking which route (`x-route`, set by each route's response headers) and which backend
//! answered, what the backend saw after rewrites, and the conflicts specificity resolves.
//! Also redirects, direct responses, header transforms, `/routes` and metrics labels.

use gatehouse_tests::named::{header, named, send};
use gatehouse_tests::{BackendHandle, Client, start};
use http::StatusCode;

/// Every route sets `x-route: {route}` on its responses.
fn config(be: &[(&str, &BackendHandle)]) -> String {
    let yaml = String::from(
        r#"
listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
routes:
  - name: default
    service: default
  - name: api
    match: { path_prefix: /api }
    service: legacy
  - name: users
    match: { path_prefix: /api/users }
    service: users-v1
  - name: user-by-id
    match: { path_template: "/api/users/{id}" }
    service: users-v1
    rewrite: { path: "/v1/users/{id}" }
    request_headers:
      set: { x-user-id: "{id}", x-route-seen: "{route}" }
      remove: [x-remove-me]
  - name: user-me
    match: { path: /api/users/me }
    service: users-v2
  - name: users-v2-header
    match:
      path_prefix: /api/users
      headers: [{ name: x-api-version, exact: "2" }]
    service: users-v2
  - name: users-ab-cookie
    match:
      path_prefix: /api/users
      cookies: [{ name: ab, exact: b }]
    service: users-v2
  - name: orders-post
    match: { path_prefix: /api/orders, methods: [POST] }
    service: orders
  - name: orders-get
    match: { path_prefix: /api/orders, methods: [GET, HEAD] }
    service: orders
  - name: catalog-host
    match: { host: catalog.example.com }
    service: catalog
  - name: shop-wildcard
    match: { host: "*.shop.example.com", path_prefix: /api }
    service: catalog
  - name: reports
    match: { path_regex: "/reports/(?P<year>[0-9]{4})/.*" }
    service: legacy
    request_headers:
      add: { x-year: "{year}" }
  - name: search
    match:
      path_prefix: /search
      query: [{ name: q }]
    service: catalog
  - name: search-debug
    match:
      path_prefix: /search
      query: [{ name: debug, exact: "1" }]
      headers: [{ name: x-debug, regex: "on|yes" }]
    service: legacy
  - name: admin-scope
    match: { path_prefix: /admin, scopes: [admin] }
    service: orders
  - name: admin-denied
    match: { path_prefix: /admin }
    direct_response: { status: 403, body: forbidden }
  - name: old-pages
    match: { path_template: "/old/{page}" }
    redirect: { status: 308, path: "/new/{page}" }
  - name: to-https
    match: { path_prefix: /secure }
    redirect: { scheme: https, strip_query: true }
  - name: moved
    match: { path: /moved }
    redirect: { location: "https://docs.example.com/moved?from={request_id}", status: 302 }
  - name: health
    match: { path: /healthz }
    direct_response: { status: 200, body: "ok\n" }
  - name: strip
    match: { path_prefix: /legacy }
    service: legacy
    rewrite: { strip_prefix: true }
  - name: replace
    match: { path_prefix: /v0/ }
    service: legacy
    rewrite: { prefix: /api/v0 }
  - name: grpc-get
    match: { path: /orders.v1.OrderService/Get }
    service: orders
  - name: grpc-service
    match: { path_prefix: /orders.v1.OrderService }
    service: legacy
  - name: host-rewrite
    match: { path_prefix: /ext }
    service: legacy
    rewrite: { host: ext.internal }
    response_headers:
      add: { x-route: "{route}" }
      set: { x-request-id-copy: "{request_id}", server: gatehouse }
      remove: [x-echo-x-forwarded-for]
"#,
    );
    let mut yaml = mark(&yaml);
    yaml.push_str("services:\n");
    for (name, handle) in be {
        yaml.push_str(&format!(
            "  {name}: {{ endpoints: [\"{}\"] }}\n",
            handle.addr
        ));
    }
    yaml
}

/// Adds `response_headers: { add: { x-route: "{route}" } }` to every route that has no
/// `response_headers` of its own (those add it themselves).
fn mark(yaml: &str) -> String {
    let mut out = String::new();
    let mut in_routes = false;
    for line in yaml.lines() {
        out.push_str(line);
        out.push('\n');
        in_routes |= line == "routes:";
        if in_routes && line.starts_with("  - name: ") && line != "  - name: host-rewrite" {
            out.push_str("    response_headers: { add: { x-route: \"{route}\" } }\n");
        }
    }
    out
}

struct Case {
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
    route: &'static str,
    /// The backend that answered; `""` for answers made by the gateway.
    backend: &'static str,
    /// Headers of the answer (the backend echoes `x-seen-uri`, `x-seen-host`, `x-echo-*`).
    expect: &'static [(&'static str, &'static str)],
}

const fn case(
    method: &'static str,
    path: &'static str,
    route: &'static str,
    backend: &'static str,
) -> Case {
    Case {
        method,
        path,
        headers: &[],
        status: 200,
        route,
        backend,
        expect: &[],
    }
}

fn cases() -> Vec<Case> {
    vec![
        case("GET", "/", "default", "default"),
        case("GET", "/unknown/x", "default", "default"),
        case("GET", "/api", "api", "legacy"),
        case("GET", "/api/other", "api", "legacy"),
        // Prefixes match whole segments.
        case("GET", "/apix", "default", "default"),
        case("GET", "/api/users", "users", "users-v1"),
        // `{id}` needs a non-empty segment.
        case("GET", "/api/users/", "users", "users-v1"),
        Case {
            headers: &[("x-remove-me", "1")],
            expect: &[
                ("x-seen-uri", "/v1/users/42"),
                ("x-echo-x-user-id", "42"),
                ("x-echo-x-route-seen", "user-by-id"),
                ("x-echo-x-remove-me", ""),
            ],
            ..case("GET", "/api/users/42", "user-by-id", "users-v1")
        },
        Case {
            expect: &[("x-seen-uri", "/v1/users/42?x=1&y=2")],
            ..case("GET", "/api/users/42?x=1&y=2", "user-by-id", "users-v1")
        },
        // Exact beats template.
        case("GET", "/api/users/me", "user-me", "users-v2"),
        // Template needs the whole path: a longer one falls back to the prefix.
        case("GET", "/api/users/42/posts", "users", "users-v1"),
        // Header version routing: same prefix, one more condition.
        Case {
            headers: &[("x-api-version", "2")],
            ..case("GET", "/api/users", "users-v2-header", "users-v2")
        },
        Case {
            headers: &[("x-api-version", "1")],
            ..case("GET", "/api/users", "users", "users-v1")
        },
        // A template beats a prefix with more conditions.
        Case {
            headers: &[("x-api-version", "2")],
            ..case("GET", "/api/users/42", "user-by-id", "users-v1")
        },
        // A/B by cookie.
        Case {
            headers: &[("cookie", "session=x; ab=b")],
            ..case("GET", "/api/users", "users-ab-cookie", "users-v2")
        },
        Case {
            headers: &[("cookie", "ab=a")],
            ..case("GET", "/api/users", "users", "users-v1")
        },
        case("POST", "/api/orders", "orders-post", "orders"),
        case("GET", "/api/orders/7", "orders-get", "orders"),
        // Neither method list: the shorter prefix.
        case("DELETE", "/api/orders", "api", "legacy"),
        Case {
            headers: &[("host", "catalog.example.com")],
            ..case("GET", "/anything", "catalog-host", "catalog")
        },
        // Host: case-insensitive, port ignored.
        Case {
            headers: &[("host", "CATALOG.Example.com:8080")],
            ..case("GET", "/", "catalog-host", "catalog")
        },
        // `*.shop.example.com` and `/api`: one more condition than `api`.
        Case {
            headers: &[("host", "eu.shop.example.com")],
            ..case("GET", "/api/items", "shop-wildcard", "catalog")
        },
        Case {
            headers: &[("host", "a.b.shop.example.com")],
            ..case("GET", "/api/items", "shop-wildcard", "catalog")
        },
        // The bare domain is not under the wildcard.
        Case {
            headers: &[("host", "shop.example.com")],
            ..case("GET", "/api/items", "api", "legacy")
        },
        // A longer prefix beats a host condition.
        Case {
            headers: &[("host", "eu.shop.example.com")],
            ..case("GET", "/api/users", "users", "users-v1")
        },
        Case {
            expect: &[("x-echo-x-year", "2024")],
            ..case("GET", "/reports/2024/q1", "reports", "legacy")
        },
        // The regex does not match: the catch-all.
        case("GET", "/reports/20x4/q1", "default", "default"),
        case("GET", "/search?q=shoes", "search", "catalog"),
        case("GET", "/search?q=shoes&debug=1", "search", "catalog"),
        Case {
            headers: &[("x-debug", "on")],
            ..case("GET", "/search?q=shoes&debug=1", "search-debug", "legacy")
        },
        case("GET", "/search", "default", "default"),
        // Identity headers from a plain-text client are removed: no scope, no admin.
        Case {
            headers: &[("x-gatehouse-scopes", "admin")],
            status: 403,
            ..case("GET", "/admin/users", "admin-denied", "")
        },
        Case {
            status: 308,
            expect: &[("location", "http://gateway.test/new/intro?lang=en")],
            headers: &[("host", "gateway.test")],
            ..case("GET", "/old/intro?lang=en", "old-pages", "")
        },
        Case {
            status: 301,
            expect: &[("location", "https://gateway.test/secure/login")],
            headers: &[("host", "gateway.test:8080")],
            ..case("GET", "/secure/login?next=/x", "to-https", "")
        },
        Case {
            status: 302,
            headers: &[("x-request-id", "abc123")],
            expect: &[("location", "https://docs.example.com/moved?from=abc123")],
            ..case("GET", "/moved", "moved", "")
        },
        case("GET", "/healthz", "health", ""),
        Case {
            expect: &[("x-seen-uri", "/a/b?z=1")],
            ..case("GET", "/legacy/a/b?z=1", "strip", "legacy")
        },
        Case {
            expect: &[("x-seen-uri", "/")],
            ..case("GET", "/legacy", "strip", "legacy")
        },
        Case {
            expect: &[("x-seen-uri", "/api/v0/things")],
            ..case("GET", "/v0/things", "replace", "legacy")
        },
        case("POST", "/orders.v1.OrderService/Get", "grpc-get", "orders"),
        case(
            "POST",
            "/orders.v1.OrderService/List",
            "grpc-service",
            "legacy",
        ),
        Case {
            headers: &[("x-request-id", "rid-7")],
            expect: &[
                ("x-seen-host", "ext.internal"),
                ("x-request-id-copy", "rid-7"),
                ("server", "gatehouse"),
                ("x-echo-x-forwarded-for", ""),
            ],
            ..case("GET", "/ext/x", "host-rewrite", "legacy")
        },
    ]
}

async fn backends() -> Vec<(&'static str, BackendHandle)> {
    let mut out = Vec::new();
    for name in [
        "default", "legacy", "users-v1", "users-v2", "orders", "catalog",
    ] {
        out.push((name, named(name).await));
    }
    out
}

#[tokio::test]
async fn route_table_picks_the_most_specific_route() {
    let be = backends().await;
    let refs: Vec<(&str, &BackendHandle)> = be.iter().map(|(n, h)| (*n, h)).collect();
    let yaml = config(&refs);
    let proxy = start(&yaml).await;
    let addr = proxy.addr("main").await.expect("listener");
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for client in [Client::http1(), Client::h2c()] {
        let mut failures = Vec::new();
        for c in &cases {
            // Over h2 the authority comes from the URI, not a `host` header: host cases are
            // HTTP/1.1 only.
            if client.h2 && c.headers.iter().any(|(k, _)| *k == "host") {
                continue;
            }
            let url = format!("http://{addr}{}", c.path);
            let (status, h, body) = send(&client, c.method, &url, c.headers, None).await;
            let what = format!("{} {} {:?} (h2={})", c.method, c.path, c.headers, client.h2);
            let mut problems = Vec::new();
            if status.as_u16() != c.status {
                problems.push(format!("status {status}, want {}", c.status));
            }
            if header(&h, "x-route") != c.route {
                problems.push(format!(
                    "route `{}`, want `{}`",
                    header(&h, "x-route"),
                    c.route
                ));
            }
            if header(&h, "x-backend") != c.backend {
                problems.push(format!(
                    "backend `{}`, want `{}`",
                    header(&h, "x-backend"),
                    c.backend
                ));
            }
            if !c.backend.is_empty() && body != c.backend.as_bytes() {
                problems.push(format!("body {body:?}"));
            }
            for (k, v) in c.expect {
                if header(&h, k) != *v {
                    problems.push(format!("{k}: `{}`, want `{v}`", header(&h, k)));
                }
            }
            if !problems.is_empty() {
                failures.push(format!("{what}: {}", problems.join("; ")));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }
}

#[tokio::test]
async fn direct_response_and_admin_routes() {
    let be = backends().await;
    let refs: Vec<(&str, &BackendHandle)> = be.iter().map(|(n, h)| (*n, h)).collect();
    let proxy = start(&config(&refs)).await;
    let addr = proxy.addr("main").await.expect("listener");
    let c = Client::http1();
    let (s, h, body) = send(&c, "GET", &format!("http://{addr}/healthz"), &[], None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&body[..], b"ok\n");
    assert_eq!(header(&h, "content-type"), "text/plain; charset=utf-8");
    assert!(!header(&h, "x-request-id").is_empty());
    let (s, _, body) = send(&c, "GET", &format!("http://{addr}/admin"), &[], None).await;
    assert_eq!((s, &body[..]), (StatusCode::FORBIDDEN, &b"forbidden"[..]));

    let admin = proxy.admin_addr;
    let (s, _, body) = c.get(&format!("http://{admin}/routes")).await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let routes = v.as_array().expect("array");
    assert_eq!(routes.len(), 25);
    let by_name = |n: &str| {
        routes
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("route {n} in /routes"))
            .clone()
    };
    assert_eq!(by_name("user-me")["action"], "proxy");
    assert_eq!(by_name("user-me")["service"], "users-v2");
    assert_eq!(by_name("user-me")["match"]["path"], "/api/users/me");
    assert_eq!(by_name("health")["action"], "direct_response");
    assert!(by_name("health")["service"].is_null());
    assert_eq!(by_name("moved")["action"], "redirect");
    // Most specific first: the exact path before everything; the catch-all last.
    assert!(routes[0]["match"]["path"].is_string());
    assert_eq!(
        routes.last().map(|r| r["name"].clone()),
        Some("default".into())
    );

    // Metrics are labelled by route name.
    let (_, _, body) = c.get(&format!("http://{admin}/metrics")).await;
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("route=\"health\""), "{text}");
    assert!(text.contains("route=\"admin-denied\""), "{text}");
}
