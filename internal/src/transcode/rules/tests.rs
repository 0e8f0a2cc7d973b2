//! Rules read from the fixture's `Orders` service, the router's choice for each request, and
//! every kind of rule refused at load.

use super::*;
use crate::transcode::testing::{compile_files, shop_pool};

const ORDERS: &str = "gatehouse.test.v1.Orders";

fn router(default_bindings: bool) -> Router {
    Router::new(&shop_pool(), [ORDERS], default_bindings).unwrap_or_else(|e| panic!("{e}"))
}

fn body_text(body: &Body) -> String {
    match body {
        Body::None => String::new(),
        Body::Whole => "*".to_owned(),
        Body::Field(f) => f.name().to_owned(),
    }
}

#[test]
fn reads_every_rule_form() {
    // (method, verb, template, body, response_body), in declaration order.
    let want: &[(&str, &str, &str, &str, &str)] = &[
        ("GetOrder", "GET", "/v1/orders/{order_id}", "", ""),
        (
            "GetOrder",
            "GET",
            "/v1/shops/{inner.name}/orders/{order_id}",
            "",
            "",
        ),
        ("GetMyOrder", "GET", "/v1/orders/mine", "", ""),
        (
            "CancelOrder",
            "POST",
            "/v1/orders/{order_id}:cancel",
            "*",
            "",
        ),
        (
            "CreateOrder",
            "POST",
            "/v1/{parent=shops/*}/orders",
            "order",
            "",
        ),
        ("ListOrders", "GET", "/v1/orders", "", "orders"),
        ("StreamOrders", "REPORT", "/v1/orders:stream", "", ""),
        ("DeleteOrder", "DELETE", "/v1/orders/{order_id}", "", ""),
        ("PatchOrder", "PATCH", "/v1/orders/{order_id}", "*", ""),
        ("GetFile", "GET", "/v1/files/{name=**}", "", ""),
    ];
    let router = router(false);
    let got: Vec<(String, String, String, String, String)> = router
        .bindings()
        .iter()
        .map(|b| {
            (
                b.method.name().to_owned(),
                b.verb.to_string(),
                b.template.to_string(),
                body_text(&b.body),
                b.response_body
                    .as_ref()
                    .map(|f| f.name().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let want: Vec<(String, String, String, String, String)> = want
        .iter()
        .map(|(a, b, c, d, e)| {
            (
                (*a).to_owned(),
                (*b).to_owned(),
                (*c).to_owned(),
                (*d).to_owned(),
                (*e).to_owned(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

/// What `find` should say: the method name and variables, or the error.
enum Want {
    Method(&'static str, &'static [(&'static str, &'static str)]),
    NotFound,
    NotAllowed(&'static [&'static str]),
}

#[test]
fn find_picks_the_most_specific_binding() {
    let cases: &[(&str, &str, Want)] = &[
        (
            "GET",
            "/v1/orders/42",
            Want::Method("GetOrder", &[("order_id", "42")]),
        ),
        // A literal beats a variable, whatever the declaration order.
        ("GET", "/v1/orders/mine", Want::Method("GetMyOrder", &[])),
        (
            "GET",
            "/v1/shops/s1/orders/42",
            Want::Method("GetOrder", &[("inner.name", "s1"), ("order_id", "42")]),
        ),
        (
            "POST",
            "/v1/orders/42:cancel",
            Want::Method("CancelOrder", &[("order_id", "42")]),
        ),
        // Without a verb in GetOrder's template, `:cancel` is part of the id.
        (
            "GET",
            "/v1/orders/42:cancel",
            Want::Method("GetOrder", &[("order_id", "42:cancel")]),
        ),
        (
            "POST",
            "/v1/shops/s1/orders",
            Want::Method("CreateOrder", &[("parent", "shops/s1")]),
        ),
        ("GET", "/v1/orders", Want::Method("ListOrders", &[])),
        (
            "REPORT",
            "/v1/orders:stream",
            Want::Method("StreamOrders", &[]),
        ),
        (
            "DELETE",
            "/v1/orders/42",
            Want::Method("DeleteOrder", &[("order_id", "42")]),
        ),
        (
            "PATCH",
            "/v1/orders/42",
            Want::Method("PatchOrder", &[("order_id", "42")]),
        ),
        (
            "GET",
            "/v1/files/a/b%20c.txt",
            Want::Method("GetFile", &[("name", "a/b c.txt")]),
        ),
        // HEAD is not GET.
        (
            "HEAD",
            "/v1/orders/42",
            Want::NotAllowed(&["DELETE", "GET", "PATCH"]),
        ),
        ("PUT", "/v1/orders", Want::NotAllowed(&["GET"])),
        ("GET", "/v1/orders:stream", Want::NotAllowed(&["REPORT"])),
        ("GET", "/v2/orders", Want::NotFound),
        ("GET", "/v1/orders/", Want::NotFound),
        ("GET", "v1/orders", Want::NotFound),
        ("POST", "/gatehouse.test.v1.Orders/Ping", Want::NotFound),
    ];
    let router = router(false);
    let mut failures = Vec::new();
    for (verb, path, want) in cases {
        let Ok(method) = http::Method::from_bytes(verb.as_bytes()) else {
            panic!("{verb}");
        };
        let got = router.find(&method, path);
        let ok = match (&got, want) {
            (Ok(m), Want::Method(name, vars)) => {
                m.binding.method.name() == *name
                    && m.vars
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .eq(vars.iter().copied())
            }
            (Err(NoMatch::NotFound), Want::NotFound) => true,
            (Err(NoMatch::MethodNotAllowed(allowed)), Want::NotAllowed(want)) => allowed
                .iter()
                .map(http::Method::as_str)
                .eq(want.iter().copied()),
            _ => false,
        };
        if !ok {
            let got = got.map(|m| (m.binding.method.name().to_owned(), m.vars));
            failures.push(format!("{verb} {path}: got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn default_bindings_cover_methods_without_rules() {
    let router = router(true);
    let post = http::Method::POST;
    let Ok(ping) = router.find(&post, "/gatehouse.test.v1.Orders/Ping") else {
        panic!("no default binding for Ping");
    };
    assert_eq!(ping.binding.method.name(), "Ping");
    assert!(matches!(ping.binding.body, Body::Whole));
    // A method with a rule keeps only its rule.
    assert_eq!(
        router
            .find(&post, "/gatehouse.test.v1.Orders/GetOrder")
            .err(),
        Some(NoMatch::NotFound)
    );
}

#[test]
fn bound_fields_are_path_variables_and_the_body_field() {
    let router = router(false);
    let bound = |method: &str, template: &str| {
        router
            .bindings()
            .iter()
            .find(|b| b.method.name() == method && b.template.as_str() == template)
            .map(Binding::bound_fields)
            .unwrap_or_else(|| panic!("no {method} {template}"))
    };
    assert_eq!(
        bound("CreateOrder", "/v1/{parent=shops/*}/orders"),
        ["parent", "order"]
    );
    assert_eq!(
        bound("GetOrder", "/v1/shops/{inner.name}/orders/{order_id}"),
        ["inner.name", "order_id"]
    );
    assert!(bound("ListOrders", "/v1/orders").is_empty());
}

#[test]
fn unknown_service_lists_the_known_ones() {
    let Err(e) = Router::new(&shop_pool(), ["gatehouse.test.v1.Order"], false) else {
        panic!("an unknown service was accepted");
    };
    let text = e.to_string();
    assert!(
        text.contains("unknown gRPC service `gatehouse.test.v1.Order`")
            && text.contains("`gatehouse.test.v1.Catalog`, `gatehouse.test.v1.Orders`"),
        "{text}"
    );
    assert_eq!(e.hint(), Some("did you mean `gatehouse.test.v1.Orders`?"));
}

/// A service whose one method `M` has `rule` (the inside of `option (google.api.http) = {}`),
/// plus `extra` methods.
fn bad_service(rule: &str, extra: &str) -> String {
    format!(
        "syntax = \"proto3\";\npackage bad.v1;\nimport \"google/api/annotations.proto\";\n\
         message Inner {{ string name = 1; }}\n\
         message Req {{ string order_id = 1; Inner inner = 2; repeated string tags = 3; }}\n\
         message Resp {{ string id = 1; }}\n\
         service S {{\n  rpc M(Req) returns (Resp) {{ option (google.api.http) = {{ {rule} }}; }}\n\
         {extra}\n}}\n"
    )
}

#[test]
fn bad_rules_are_refused() {
    let other =
        "rpc N(Req) returns (Resp) { option (google.api.http) = { get: \"/v1/x/{inner.name}\" }; }";
    // (rule, extra methods, message part, hint)
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        (
            "get: \"/v1/{ordr_id}\"",
            "",
            "bad.v1.S.M: rule `GET /v1/{ordr_id}`: path variable `ordr_id`: bad.v1.Req has no field `ordr_id`",
            Some("did you mean `order_id`?"),
        ),
        ("get: \"/v1/{inner}\"", "", "`inner` is a message", None),
        ("get: \"/v1/{tags}\"", "", "`tags` is repeated", None),
        (
            "get: \"/v1/{order_id.x}\"",
            "",
            "`order_id` of bad.v1.Req is not a singular message",
            None,
        ),
        (
            "get: \"/v1/{inner.nme}\"",
            "",
            "bad.v1.Inner has no field `nme`",
            Some("did you mean `name`?"),
        ),
        (
            "post: \"/v1/x\" body: \"ordr\"",
            "",
            "body `ordr`: bad.v1.Req has no field `ordr`",
            None,
        ),
        (
            "post: \"/v1/x\" body: \"inner.name\"",
            "",
            "body `inner.name` must name a top-level field",
            None,
        ),
        (
            "get: \"/v1/x\" response_body: \"name\"",
            "",
            "response_body `name`: bad.v1.Resp has no field `name`",
            None,
        ),
        ("get: \"v1/x\"", "", "must start with `/`", None),
        ("get: \"/v1/{order_id\"", "", "without a matching `}`", None),
        (
            "custom { kind: \"NOT A METHOD\" path: \"/v1/x\" }",
            "",
            "custom kind `NOT A METHOD` is not an HTTP method",
            None,
        ),
        ("body: \"*\"", "", "the rule has no pattern", None),
        (
            "get: \"/v1/a\" additional_bindings { get: \"/v1/b\" additional_bindings { get: \"/v1/c\" } }",
            "",
            "an additional binding cannot have additional bindings",
            None,
        ),
        (
            "get: \"/v1/x/{order_id}\"",
            other,
            "`GET /v1/x/{inner.name}` is bound twice: by bad.v1.S.M and by bad.v1.S.N",
            None,
        ),
        (
            "get: \"/v1/a\" additional_bindings { get: \"/v1/{tags}\" }",
            "",
            "rule `GET /v1/{tags}`: path variable `tags`: `tags` is repeated",
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (rule, extra, want, hint) in cases {
        let text = bad_service(rule, extra);
        let (_dir, pool) = compile_files(&[("bad.proto", &text)], &["bad.proto"], &[]);
        let pool = match pool {
            Ok(pool) => pool,
            Err(e) => {
                failures.push(format!("{rule}: does not compile: {e}"));
                continue;
            }
        };
        match Router::new(&pool, ["bad.v1.S"], false) {
            Ok(_) => failures.push(format!("{rule}: accepted")),
            Err(e) if !e.to_string().contains(want) || e.hint() != *hint => {
                failures.push(format!(
                    "{rule}:\n  got  {e} ({:?})\n  want {want}",
                    e.hint()
                ));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn accepted_oddities() {
    // A body on GET is accepted (Envoy does), and a path variable inside the body field.
    let text = bad_service(
        "get: \"/v1/{inner.name}\" body: \"inner\"",
        "rpc N(Req) returns (Resp);",
    );
    let (_dir, pool) = compile_files(&[("ok.proto", &text)], &["ok.proto"], &[]);
    let pool = pool.unwrap_or_else(|e| panic!("{e}"));
    let router = Router::new(&pool, ["bad.v1.S"], false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(router.bindings().len(), 1);
}
