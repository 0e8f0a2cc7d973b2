//! Route matching, ns per match, for tables of 10, 1,000 and 10,000 routes.
//!
//! `cargo bench -p gatehouse-common --bench routing`
//!
//! The tables are mostly literal-prefix routes (`/svcN`, `/svcN/v1`), with exact paths,
//! templates (`/svcN/{id}/items`), a host-specific route and a header condition every 10th
//! service, and 5 regex routes whatever the size. The requests: a deep prefix hit, an exact
//! hit, a template hit, a header-conditioned hit, a regex hit, and a miss that falls to the
//! catch-all.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_common::routing::{Matcher, RouteRequest, Table};
use gatehouse_common::settings::{RouteMatchSettings, ValueMatchSettings};
use http::{HeaderMap, HeaderValue, Method};

fn settings(f: impl FnOnce(&mut RouteMatchSettings)) -> RouteMatchSettings {
    let mut s = RouteMatchSettings::default();
    f(&mut s);
    s
}

/// About `n` routes.
fn table(n: usize) -> Table {
    let mut routes = vec![settings(|_| {})];
    for r in 0..5 {
        routes.push(settings(|s| {
            s.path_regex = Some(format!("/reports{r}/[0-9]{{4}}/.*"))
        }));
    }
    let mut i = 0;
    while routes.len() < n {
        routes.push(settings(|s| s.path_prefix = Some(format!("/svc{i}"))));
        routes.push(settings(|s| s.path_prefix = Some(format!("/svc{i}/v1"))));
        routes.push(settings(|s| s.path = Some(format!("/svc{i}/health"))));
        routes.push(settings(|s| {
            s.path_template = Some(format!("/svc{i}/{{id}}/items"))
        }));
        if i % 10 == 0 {
            routes.push(settings(|s| {
                s.path_prefix = Some(format!("/svc{i}"));
                s.headers = vec![ValueMatchSettings {
                    name: "x-api-version".into(),
                    exact: Some("2".into()),
                    regex: None,
                    present: None,
                }];
            }));
            routes.push(settings(|s| {
                s.path_prefix = Some(format!("/svc{i}"));
                s.host = Some(format!("svc{i}.example.com"));
            }));
        }
        i += 1;
    }
    routes.truncate(n);
    Table::new(
        routes
            .iter()
            .map(|s| Matcher::compile(s).expect("route compiles"))
            .collect(),
    )
}

fn bench(c: &mut Criterion) {
    let get = Method::GET;
    let plain = HeaderMap::new();
    let mut v2 = HeaderMap::new();
    v2.insert("x-api-version", HeaderValue::from_static("2"));
    for n in [10, 1_000, 10_000] {
        let t = table(n);
        // `svc0` exists at every size; the larger tables also have `svc200`.
        let svc = if n >= 1_000 { "svc200" } else { "svc0" };
        let deep = format!("/{svc}/v1/orders/17");
        let exact = format!("/{svc}/health");
        let template = format!("/{svc}/42/items");
        let requests: Vec<(&str, &str, &HeaderMap)> = vec![
            ("prefix", &deep, &plain),
            ("exact", &exact, &plain),
            ("template", &template, &plain),
            ("header", &deep, &v2),
            ("regex", "/reports3/2024/q1", &plain),
            ("miss", "/nothing/here/at/all", &plain),
        ];
        let mut group = c.benchmark_group(format!("routes_{n}"));
        for (name, path, headers) in requests {
            let req = RouteRequest {
                listener: "main",
                method: &get,
                host: Some("gateway.example.com"),
                path,
                query: None,
                headers,
            };
            assert!(t.find(&req).is_some(), "{name} at {n} routes");
            group.bench_function(name, |b| b.iter(|| t.find(black_box(&req))));
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
