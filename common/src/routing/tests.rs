//! Unit tests of matching, ranking and transforms (the socket-level tests are in
//! `tests/tests/routing*.rs`).

use http::{HeaderMap, HeaderValue, Method};

use super::*;
use crate::settings::{RouteMatchSettings, ValueMatchSettings};

fn m(f: impl FnOnce(&mut RouteMatchSettings)) -> Matcher {
    let mut s = RouteMatchSettings::default();
    f(&mut s);
    Matcher::compile(&s).expect("compiles")
}

fn header(name: &str, exact: Option<&str>) -> ValueMatchSettings {
    ValueMatchSettings {
        name: name.into(),
        exact: exact.map(Into::into),
        regex: None,
        present: None,
    }
}

struct Req {
    method: Method,
    host: Option<&'static str>,
    path: &'static str,
    query: Option<&'static str>,
    headers: HeaderMap,
}

fn req(path: &'static str) -> Req {
    Req {
        method: Method::GET,
        host: None,
        path,
        query: None,
        headers: HeaderMap::new(),
    }
}

impl Req {
    fn view(&self) -> RouteRequest<'_> {
        RouteRequest {
            listener: "main",
            method: &self.method,
            host: self.host,
            path: self.path,
            query: self.query,
            headers: &self.headers,
        }
    }
    fn h(mut self, k: &'static str, v: &'static str) -> Self {
        self.headers.append(k, HeaderValue::from_static(v));
        self
    }
}

/// A table and its matchers, to compare the index against a scan.
fn table(ms: Vec<Matcher>) -> (Table, Vec<Matcher>) {
    (Table::new(ms.clone()), ms)
}

/// The reference: the best-ranked matcher by a linear scan.
fn scan(ms: &[Matcher], r: &RouteRequest<'_>) -> Option<usize> {
    ms.iter()
        .enumerate()
        .filter(|(_, m)| m.matches(r))
        .min_by_key(|(i, m)| m.rank_key(*i))
        .map(|(i, _)| i)
}

#[test]
fn specificity_order() {
    let (t, ms) = table(vec![
        m(|_| {}),                                                // 0 catch-all
        m(|s| s.path_prefix = Some("/api".into())),               // 1
        m(|s| s.path_prefix = Some("/api/users".into())),         // 2
        m(|s| s.path_template = Some("/api/users/{id}".into())),  // 3
        m(|s| s.path = Some("/api/users/me".into())),             // 4
        m(|s| s.path_regex = Some("/(api|zz)/.*/x".into())),      // 5
        m(|s| s.path_template = Some("/api/{kind}/{id}".into())), // 6
        m(|s| {
            s.path_prefix = Some("/api".into());
            s.headers = vec![header("x-v", Some("2"))];
        }), // 7
        m(|s| {
            s.path_prefix = Some("/api".into());
            s.host = Some("*.example.com".into());
        }), // 8
        m(|s| {
            s.path_prefix = Some("/api".into());
            s.host = Some("a.example.com".into());
        }), // 9
    ]);
    let cases: Vec<(Req, Option<usize>)> = vec![
        (req("/"), Some(0)),
        (req("/apix"), Some(0)),
        (req("/api"), Some(1)),
        (req("/api/"), Some(1)),
        (req("/api/orders"), Some(1)),
        (req("/api/users"), Some(2)),
        (req("/api/users/7"), Some(3)),
        (req("/api/users/me"), Some(4)),
        (req("/api/users/7/x"), Some(2)),
        (req("/api/orders/x"), Some(6)),
        (req("/api/a/b/x"), Some(1)),
        (req("/zz/a/x"), Some(5)),
        (req("/api/orders").h("x-v", "2"), Some(7)),
        (
            Req {
                host: Some("b.example.com"),
                ..req("/api/orders")
            },
            Some(8),
        ),
        (
            Req {
                host: Some("a.example.com"),
                ..req("/api/orders")
            },
            Some(9),
        ),
        (
            Req {
                host: Some("example.com"),
                ..req("/api/orders")
            },
            Some(1),
        ),
    ];
    for (r, want) in &cases {
        let v = r.view();
        assert_eq!(t.find(&v), *want, "{} {:?}", r.path, r.host);
        assert_eq!(scan(&ms, &v), *want, "scan {} {:?}", r.path, r.host);
    }
}

#[test]
fn conditions_methods_query_cookies_identity() {
    let (t, _) = table(vec![
        m(|s| s.methods = vec!["post".into()]),
        m(|s| {
            s.query = vec![ValueMatchSettings {
                name: "q".into(),
                exact: None,
                regex: Some("[a-z ]+".into()),
                present: None,
            }]
        }),
        m(|s| s.cookies = vec![header("ab", Some("b"))]),
        m(|s| s.scopes = vec!["orders:write".into(), "orders:read".into()]),
        m(|s| s.subject = Some("alice".into())),
        m(|s| {
            s.headers = vec![ValueMatchSettings {
                present: Some(false),
                ..header("x-no", None)
            }]
        }),
    ]);
    let find = |r: Req| t.find(&r.view());
    assert_eq!(
        find(Req {
            method: Method::POST,
            ..req("/")
        }),
        Some(0)
    );
    assert_eq!(
        find(Req {
            query: Some("q=hello+world"),
            ..req("/")
        }),
        Some(1)
    );
    assert_eq!(
        find(Req {
            query: Some("q=hello%20w"),
            ..req("/")
        }),
        Some(1)
    );
    assert_eq!(find(req("/").h("cookie", "x=1; ab=b")), Some(2));
    assert_eq!(
        find(req("/").h("x-gatehouse-scopes", "orders:read orders:write")),
        Some(3)
    );
    assert_eq!(
        find(req("/").h("x-gatehouse-scopes", "orders:read")),
        Some(5)
    );
    assert_eq!(find(req("/").h("x-gatehouse-subject", "alice")), Some(4));
    assert_eq!(find(req("/").h("x-no", "1")), None);
}

#[test]
fn index_agrees_with_a_scan_on_many_routes() {
    let mut ms = Vec::new();
    for i in 0..300 {
        ms.push(m(|s| s.path_prefix = Some(format!("/svc{i}"))));
        ms.push(m(|s| s.path_prefix = Some(format!("/svc{i}/v1"))));
        ms.push(m(|s| {
            s.path_template = Some(format!("/svc{i}/{{id}}/items"))
        }));
        ms.push(m(|s| s.path = Some(format!("/svc{i}/health"))));
        if i % 10 == 0 {
            ms.push(m(|s| {
                s.path_prefix = Some(format!("/svc{i}"));
                s.host = Some(format!("h{i}.example.com"));
            }));
        }
    }
    ms.push(m(|s| s.path_regex = Some("/svc1[0-9]/.*".into())));
    let (t, ms) = table(ms);
    let paths = [
        "/svc1",
        "/svc12/x",
        "/svc12/v1/a",
        "/svc250/7/items",
        "/svc250/health",
        "/none",
        "/",
        "/svc40/v1",
    ];
    for p in paths {
        for host in [None, Some("h40.example.com")] {
            let r = Req { host, ..req(p) };
            assert_eq!(t.find(&r.view()), scan(&ms, &r.view()), "{p} {host:?}");
        }
    }
}

#[test]
fn captures_and_templates() {
    let tm = m(|s| s.path_template = Some("/api/users/{id}/posts/{post}".into()));
    assert_eq!(tm.path.capture_names(), vec!["id", "post"]);
    assert_eq!(
        tm.path.captures("/api/users/7/posts/9"),
        vec![Some("7".into()), Some("9".into())]
    );
    assert!(!tm.path.matches("/api/users//posts/9"));
    let rm = m(|s| s.path_regex = Some("/v(?P<ver>[0-9]+)/.*".into()));
    assert_eq!(rm.path.captures("/v3/x"), vec![Some("3".into())]);
    let t = ValueTemplate::parse("/v1/users/{id}?{{x}}", &["id".into()]).expect("parse");
    let vars = Vars {
        captures: &[Some("7".into())],
        request_id: "r",
        subject: None,
        route: "x",
        host: None,
        path: "/",
    };
    assert_eq!(t.render(&vars), "/v1/users/7?{x}");
    let e = ValueTemplate::parse("{idd}", &["id".into()]).expect_err("unknown");
    assert!(e.contains("did you mean `{id}`"), "{e}");
}

#[test]
fn compile_errors_name_the_key() {
    let bad = |f: fn(&mut RouteMatchSettings)| {
        let mut s = RouteMatchSettings::default();
        f(&mut s);
        Matcher::compile(&s).expect_err("must fail")
    };
    let e = bad(|s| s.path_regex = Some("/(unclosed".into()));
    assert_eq!(e.key, "path_regex");
    assert!(e.message.starts_with("invalid regex"), "{}", e.message);
    let e = bad(|s| s.path_template = Some("/users/{id".into()));
    assert_eq!(e.key, "path_template");
    let e = bad(|s| s.path_template = Some("/a/{x}/{x}".into()));
    assert!(e.message.contains("twice"), "{}", e.message);
    let e = bad(|s| {
        s.path = Some("/a".into());
        s.path_prefix = Some("/b".into());
    });
    assert_eq!(e.key, "path_prefix");
    let e = bad(|s| {
        s.headers = vec![ValueMatchSettings {
            regex: Some("[".into()),
            ..header("x", None)
        }]
    });
    assert_eq!(e.key, "headers[0].regex");
    let e = bad(|s| s.host = Some("api:8080".into()));
    assert_eq!(e.key, "host");
}

#[test]
fn prefix_rewrites() {
    let p = PathPattern::prefix("/api/").expect("prefix");
    let vars = Vars {
        captures: &[],
        request_id: "",
        subject: None,
        route: "",
        host: None,
        path: "",
    };
    let strip = Rewrite::compile(
        &crate::settings::RewriteSettings {
            strip_prefix: true,
            ..Default::default()
        },
        &p,
    )
    .expect("rewrite");
    assert_eq!(strip.path("/api/users", &vars).as_deref(), Some("/users"));
    assert_eq!(strip.path("/api", &vars).as_deref(), Some("/"));
    let replace = Rewrite::compile(
        &crate::settings::RewriteSettings {
            prefix: Some("/v1/".into()),
            ..Default::default()
        },
        &p,
    )
    .expect("rewrite");
    assert_eq!(
        replace.path("/api/users", &vars).as_deref(),
        Some("/v1/users")
    );
    assert_eq!(replace.path("/api", &vars).as_deref(), Some("/v1"));
}
