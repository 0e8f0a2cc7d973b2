//! Path templates: each grammar form parsed or refused, matched against paths (decoding,
//! verbs, mismatches), expanded back, and ordered by specificity.

use super::*;

#[test]
fn parse_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "must start with `/`"),
        ("v1/orders", "must start with `/`"),
        ("//", "empty segment"),
        ("/v1/", "empty segment"),
        ("/v1//orders", "empty segment"),
        ("/v1/{id", "`{` without a matching `}`"),
        ("/v1/id}", "`}` without a matching `{`"),
        ("/v1/{a={b}}", "variables cannot be nested"),
        ("/v1/{a=x/{b}}", "variables cannot be nested"),
        ("/v1/**/orders", "`**` may only be the last segment"),
        ("/v1/{name=**}/orders", "`**` may only be the last segment"),
        ("/v1/{name=**}/{id}", "`**` may only be the last segment"),
        ("/v1/x{id}", "a variable must be a whole segment"),
        ("/v1/{id}x", "a variable must be a whole segment"),
        ("/v1/{}", "is not a field path"),
        ("/v1/{a..b}", "is not a field path"),
        ("/v1/{1a}", "is not a field path"),
        ("/v1/{a-b}", "is not a field path"),
        ("/v1/{=x}", "is not a field path"),
        ("/v1/{id=}", "empty segment"),
        ("/v1/{id=a//b}", "empty segment"),
        ("/v1/{id}/{id}", "variable `id` appears twice"),
        ("/v1/a*", "a literal segment cannot contain"),
        ("/v1/{id=a:b}", "a literal segment cannot contain"),
        ("/v1/a:b/c", "`:` may only start the verb"),
        ("/v1/orders:", "invalid verb ``"),
        ("/v1/orders:a:b", "invalid verb `a:b`"),
        ("/v1/orders:*", "invalid verb `*`"),
        ("/:verb", "empty segment"),
    ];
    let mut failures = Vec::new();
    for (text, want) in cases {
        match PathTemplate::parse(text) {
            Ok(t) => failures.push(format!("{text}: parsed as {t:?}")),
            Err(e) if !e.contains(want) => failures.push(format!("{text}: {e} (want {want})")),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `(template, path, Some(vars) | None)`.
type MatchCase = (
    &'static str,
    &'static str,
    Option<&'static [(&'static str, &'static str)]>,
);

#[test]
fn matches() {
    let cases: &[MatchCase] = &[
        // Literals.
        ("/v1/orders", "/v1/orders", Some(&[])),
        ("/v1/orders", "/v1/orders/", None),
        ("/v1/orders", "/v1/order", None),
        ("/v1/orders", "/v1", None),
        ("/v1/orders", "v1/orders", None),
        ("/v1/orders", "/V1/orders", None),
        ("/", "/", Some(&[])),
        ("/", "/v1", None),
        // `{x}` is `{x=*}`: one non-empty segment.
        ("/v1/orders/{id}", "/v1/orders/42", Some(&[("id", "42")])),
        ("/v1/orders/{id=*}", "/v1/orders/42", Some(&[("id", "42")])),
        ("/v1/orders/{id}", "/v1/orders/", None),
        ("/v1/orders/{id}", "/v1/orders/4/2", None),
        ("/v1/orders/{id}", "/v1/orders", None),
        (
            "/v1/{a}/{b.c}",
            "/v1/x/y",
            Some(&[("a", "x"), ("b.c", "y")]),
        ),
        // Single-segment values are fully decoded, `%2F` included.
        ("/v1/{id}", "/v1/a%20b", Some(&[("id", "a b")])),
        ("/v1/{id}", "/v1/a%2Fb", Some(&[("id", "a/b")])),
        ("/v1/{id}", "/v1/a+b", Some(&[("id", "a+b")])),
        ("/v1/{id}", "/v1/caf%C3%A9", Some(&[("id", "café")])),
        ("/v1/{id}", "/v1/100%", None),
        ("/v1/{id}", "/v1/%FF", None),
        // Without a verb in the template, `:` is part of the segment.
        ("/v1/{id}", "/v1/a:b", Some(&[("id", "a:b")])),
        // Multi-segment variables.
        (
            "/v1/{name=shelves/*}/books",
            "/v1/shelves/7/books",
            Some(&[("name", "shelves/7")]),
        ),
        ("/v1/{name=shelves/*}/books", "/v1/racks/7/books", None),
        (
            "/v1/{name=shelves/*/books/*}",
            "/v1/shelves/1/books/2",
            Some(&[("name", "shelves/1/books/2")]),
        ),
        (
            "/v1/files/{name=**}",
            "/v1/files/a/b/c",
            Some(&[("name", "a/b/c")]),
        ),
        ("/v1/files/{name=**}", "/v1/files", Some(&[("name", "")])),
        ("/v1/files/{name=**}", "/v1/files/", Some(&[("name", "")])),
        (
            "/v1/{name=files/**}",
            "/v1/files",
            Some(&[("name", "files")]),
        ),
        // Multi-segment values keep reserved characters escaped, decode the rest.
        (
            "/v1/files/{name=**}",
            "/v1/files/a%2Fb/c%20d",
            Some(&[("name", "a%2Fb/c d")]),
        ),
        (
            "/v1/files/{name=**}",
            "/v1/files/a%3Ab",
            Some(&[("name", "a%3Ab")]),
        ),
        // Anonymous wildcards.
        ("/v1/*/orders", "/v1/x/orders", Some(&[])),
        ("/v1/**", "/v1/x/y/z", Some(&[])),
        ("/v1/**", "/v2/x", None),
        // Verbs: split at the last `:` of the last segment.
        (
            "/v1/orders/{id}:cancel",
            "/v1/orders/42:cancel",
            Some(&[("id", "42")]),
        ),
        (
            "/v1/orders/{id}:cancel",
            "/v1/orders/a:b:cancel",
            Some(&[("id", "a:b")]),
        ),
        ("/v1/orders/{id}:cancel", "/v1/orders/42", None),
        ("/v1/orders/{id}:cancel", "/v1/orders/42:undo", None),
        ("/v1/orders/{id}:cancel", "/v1/orders/:cancel", None),
        ("/v1/orders/{id}:cancel", "/v1/orders/4:cancel/2", None),
        ("/v1/orders:batch", "/v1/orders:batch", Some(&[])),
        ("/v1/orders:batch", "/v1/orders", None),
        (
            "/v1/{name=**}:undelete",
            "/v1/a/b:undelete",
            Some(&[("name", "a/b")]),
        ),
    ];
    let mut failures = Vec::new();
    for (template, path, want) in cases {
        let parsed = match PathTemplate::parse(template) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{template}: {e}"));
                continue;
            }
        };
        let got = parsed.matches(path);
        let want: Option<Vec<(String, String)>> = want.map(|vars| {
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        });
        if got != want {
            failures.push(format!("{template} ~ {path}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `(template, values, Ok(path) | Err(part of the message))`.
type ExpandCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Result<&'static str, &'static str>,
);

#[test]
fn expand() {
    let cases: &[ExpandCase] = &[
        ("/v1/orders", &[], Ok("/v1/orders")),
        ("/", &[], Ok("/")),
        ("/v1/orders/{id}", &[("id", "42")], Ok("/v1/orders/42")),
        (
            "/v1/orders/{id}",
            &[("id", "a b/c")],
            Ok("/v1/orders/a%20b%2Fc"),
        ),
        (
            "/v1/orders/{id}",
            &[("id", "café")],
            Ok("/v1/orders/caf%C3%A9"),
        ),
        (
            "/v1/orders/{id}:cancel",
            &[("id", "a:b")],
            Ok("/v1/orders/a%3Ab:cancel"),
        ),
        (
            "/v1/{name=shelves/*}/books",
            &[("name", "shelves/a b")],
            Ok("/v1/shelves/a%20b/books"),
        ),
        (
            "/v1/files/{name=**}",
            &[("name", "dir/file.txt")],
            Ok("/v1/files/dir/file.txt"),
        ),
        ("/v1/{a}/{b.c}", &[("a", "x"), ("b.c", "y")], Ok("/v1/x/y")),
        ("/v1/orders/{id}", &[], Err("no value for `id`")),
        ("/v1/orders/{id}", &[("id", "")], Err("does not match")),
        (
            "/v1/{name=shelves/*}/books",
            &[("name", "racks/1")],
            Err("does not match"),
        ),
        (
            "/v1/{name=shelves/*}/books",
            &[("name", "shelves/1/2")],
            Err("does not match"),
        ),
        ("/v1/*/orders", &[], Err("wildcard outside a variable")),
    ];
    let mut failures = Vec::new();
    for (template, values, want) in cases {
        let Ok(parsed) = PathTemplate::parse(template) else {
            failures.push(format!("{template}: does not parse"));
            continue;
        };
        let got = parsed.expand(|field| {
            values
                .iter()
                .find(|(k, _)| *k == field)
                .map(|(_, v)| (*v).to_owned())
        });
        let ok = match (&got, want) {
            (Ok(got), Ok(want)) => got == want,
            (Err(got), Err(want)) => got.contains(want),
            _ => false,
        };
        if !ok {
            failures.push(format!("{template}: got {got:?}, want {want:?}"));
        }
        // What was built routes back to the same values.
        if let Ok(path) = &got {
            let back = parsed.matches(path);
            let want_back: Vec<(String, String)> = values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            if back.as_ref() != Some(&want_back) {
                failures.push(format!("{template}: {path} matched back as {back:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn specificity_prefers_literals_then_verbs() {
    // (more specific, less specific, a path both match)
    let cases: &[(&str, &str, &str)] = &[
        ("/v1/users/me", "/v1/users/{id}", "/v1/users/me"),
        ("/v1/orders:batch", "/v1/{name}", "/v1/orders:batch"),
        (
            "/v1/orders/{id}:cancel",
            "/v1/orders/{id}",
            "/v1/orders/1:cancel",
        ),
        ("/v1/orders/{id}", "/v1/orders/**", "/v1/orders/1"),
        ("/v1/orders", "/v1/orders/**", "/v1/orders"),
        ("/v1/{a}/x", "/v1/{a=**}", "/v1/b/x"),
        ("/v1/a/{b}", "/v1/{a}/b", "/v1/a/b"),
    ];
    for (more, less, path) in cases {
        let (Ok(more_t), Ok(less_t)) = (PathTemplate::parse(more), PathTemplate::parse(less))
        else {
            panic!("{more} or {less} does not parse");
        };
        assert!(more_t.matches(path).is_some(), "{more} ~ {path}");
        assert!(less_t.matches(path).is_some(), "{less} ~ {path}");
        assert!(
            more_t.specificity() > less_t.specificity(),
            "{more} should beat {less}"
        );
    }
}

#[test]
fn same_shape_ignores_variable_names() {
    let shape = |a: &str, b: &str| match (PathTemplate::parse(a), PathTemplate::parse(b)) {
        (Ok(a), Ok(b)) => a.same_shape(&b),
        _ => panic!("{a} or {b} does not parse"),
    };
    assert!(shape("/v1/{id}", "/v1/{name}"));
    assert!(shape("/v1/{id}", "/v1/*"));
    assert!(!shape("/v1/{id}", "/v1/{id}:cancel"));
    assert!(!shape("/v1/{id}", "/v1/{id=**}"));
}

#[test]
fn accessors() {
    let Ok(t) = PathTemplate::parse("/v1/{parent=shops/*}/orders/{order.id}:cancel") else {
        panic!("does not parse");
    };
    assert_eq!(t.verb(), Some("cancel"));
    assert_eq!(t.variables().collect::<Vec<_>>(), ["parent", "order.id"]);
    assert_eq!(
        t.to_string(),
        "/v1/{parent=shops/*}/orders/{order.id}:cancel"
    );
}
