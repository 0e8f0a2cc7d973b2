use serde_json::{Value, json};

use super::*;

fn settings(yaml: &str) -> ShapeSettings {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn shape(yaml: &str) -> Shape {
    Shape::build(&settings(yaml)).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

#[test]
fn shapes() {
    let product = json!({
        "id": "1001", "name": "Espresso", "description": "A machine.",
        "category": "machines", "instance": 1
    });
    let cases: Vec<(&str, &str, Value, Value)> = vec![
        ("empty shape", "{}", product.clone(), product.clone()),
        (
            "API version: rename then keep",
            "{rename: {name: title}, keep: [id, title, category]}",
            product.clone(),
            json!({"id": "1001", "title": "Espresso", "category": "machines"}),
        ),
        (
            "mobile BFF: flatten, missing source is null",
            "{move: {/product/id: /id, /product/name: /name, /price/unit_price_cents: /price_cents,
                     /price/currency: /currency, /stock/in_stock: /in_stock,
                     /reviews/average_rating: /rating},
              keep: [id, name, price_cents, currency, in_stock, rating]}",
            json!({
                "product": {"id": "1001", "name": "E"},
                "price": {"unit_price_cents": 100, "currency": "EUR"},
                "stock": {"in_stock": true},
                "reviews": null
            }),
            json!({
                "id": "1001", "name": "E", "price_cents": 100, "currency": "EUR",
                "in_stock": true, "rating": null
            }),
        ),
        (
            "keep: missing members are not added",
            "{keep: [a, zz]}",
            json!({"a": 1, "b": 2}),
            json!({"a": 1}),
        ),
        (
            "keep: [] keeps nothing",
            "{keep: []}",
            json!({"a": 1}),
            json!({}),
        ),
        (
            "drop by name",
            "{drop: [b, missing]}",
            json!({"a": 1, "b": {"c": 2}}),
            json!({"a": 1}),
        ),
        (
            "drop by pointer, nested and array element",
            "{drop: [/a/b, /list/0, /nope/x]}",
            json!({"a": {"b": 1, "c": 2}, "list": [10, 20]}),
            json!({"a": {"c": 2}, "list": [20]}),
        ),
        (
            "a plain name drops only the top-level member",
            "{drop: [b]}",
            json!({"a": {"b": 1}, "b": 2}),
            json!({"a": {"b": 1}}),
        ),
        (
            "rename: missing old does nothing",
            "{rename: {x: y}}",
            json!({"a": 1}),
            json!({"a": 1}),
        ),
        (
            "rename replaces an existing new name",
            "{rename: {a: b}}",
            json!({"a": 1, "b": 2}),
            json!({"b": 1}),
        ),
        (
            "drop and keep see renamed names",
            "{rename: {a: x}, drop: [a], keep: [x]}",
            json!({"a": 1, "b": 2}),
            json!({"x": 1}),
        ),
        (
            "move builds nested targets",
            "{move: {/a: /x/y/z}}",
            json!({"a": 1}),
            json!({"x": {"y": {"z": 1}}}),
        ),
        (
            "move: missing source puts null",
            "{move: {/nope/deeper: /n}}",
            json!({"a": 1}),
            json!({"a": 1, "n": null}),
        ),
        (
            "move replaces a scalar in the way by an object",
            "{move: {/a: /s/t}}",
            json!({"a": 1, "s": "text"}),
            json!({"s": {"t": 1}}),
        ),
        (
            "move into an existing array element, out of another",
            "{move: {/from/1: /list/0/v}}",
            json!({"from": ["a", "b", "c"], "list": [{"v": 0}, {"v": 1}]}),
            json!({"from": ["a", "c"], "list": [{"v": "b"}, {"v": 1}]}),
        ),
        (
            "moves run in the config's order",
            "{move: {/a: /b, /b: /c}}",
            json!({"a": 1, "b": 2}),
            json!({"c": 1}),
        ),
        (
            "from inside to: the parent is replaced",
            "{move: {/a/b: /a}}",
            json!({"a": {"b": 5, "c": 6}}),
            json!({"a": 5}),
        ),
        (
            "pointer escapes ~0 and ~1",
            "{move: {/a~1b: /c~0d}, drop: [/x~1y/~0]}",
            json!({"a/b": 1, "x/y": {"~": 2, "k": 3}}),
            json!({"c~d": 1, "x/y": {"k": 3}}),
        ),
        (
            "a leading-zero token is a member name, not an index",
            "{drop: [/list/01, /obj/01]}",
            json!({"list": [1, 2], "obj": {"01": 1, "1": 2}}),
            json!({"list": [1, 2], "obj": {"1": 2}}),
        ),
        (
            "wrap: array becomes an object",
            "{wrap: items}",
            json!([1, 2]),
            json!({"items": [1, 2]}),
        ),
        (
            "wrap: scalar and null too",
            "{wrap: v}",
            json!(null),
            json!({"v": null}),
        ),
        (
            "wrap: an object is untouched",
            "{wrap: items}",
            json!({"a": 1}),
            json!({"a": 1}),
        ),
        (
            "top-level array: every object element shaped, then wrapped",
            "{move: {/info/n: /name}, rename: {id: sku}, drop: [secret], keep: [sku, name], wrap: products}",
            json!([
                {"id": "1", "info": {"n": "E"}, "secret": 1},
                {"id": "2", "extra": true},
                "not an object",
                [1]
            ]),
            json!({"products": [
                {"sku": "1", "name": "E"},
                {"sku": "2", "name": null},
                "not an object",
                [1]
            ]}),
        ),
        (
            "a scalar document passes steps 1-4",
            "{move: {/a: /b}, keep: [b]}",
            json!("text"),
            json!("text"),
        ),
        (
            "nested arrays are not walked into",
            "{drop: [id]}",
            json!({"list": [{"id": 1}], "id": 2}),
            json!({"list": [{"id": 1}]}),
        ),
    ];
    for (name, yaml, input, want) in cases {
        assert_eq!(shape(yaml).apply(input), want, "{name}");
    }
}

#[test]
fn build_errors() {
    let cases = [
        (
            "{move: {a/b: /c}}",
            "move.a/b",
            "a JSON pointer must start with `/`",
        ),
        (
            "{move: {'': /c}}",
            "move.",
            "a JSON pointer must start with `/`",
        ),
        (
            "{move: {/a: b}}",
            "move./a",
            "`to` (b): a JSON pointer must start with `/`",
        ),
        (
            "{move: {/a~2: /b}}",
            "move./a~2",
            "in a JSON pointer `~` must be followed by `0` or `1` (RFC 6901)",
        ),
        (
            "{move: {/a~: /b}}",
            "move./a~",
            "in a JSON pointer `~` must be followed by `0` or `1` (RFC 6901)",
        ),
        (
            "{move: {/a: /a/b}}",
            "move./a",
            "`to` must not be `from` or inside it",
        ),
        (
            "{move: {/a: /a}}",
            "move./a",
            "`to` must not be `from` or inside it",
        ),
        (
            "{rename: {/a: b}}",
            "rename./a",
            "`rename` takes top-level member names, not pointers (use `move`)",
        ),
        (
            "{rename: {a: ''}}",
            "rename.a",
            "a member name must not be empty",
        ),
        (
            "{rename: {a: c, b: c}}",
            "rename.b",
            "two members are renamed to `c`",
        ),
        (
            "{rename: {a: b, b: c}}",
            "rename.a",
            "`b` is both renamed and a new name (renames do not chain)",
        ),
        ("{drop: [a, '', b]}", "drop[1]", "must not be empty"),
        (
            "{drop: [a, /b~x]}",
            "drop[1]",
            "in a JSON pointer `~` must be followed by `0` or `1` (RFC 6901)",
        ),
        (
            "{keep: [a, /b/c]}",
            "keep[1]",
            "`keep` takes top-level member names, not pointers (`move` the value up first)",
        ),
        ("{keep: ['']}", "keep[0]", "a member name must not be empty"),
        ("{wrap: ''}", "wrap", "must not be empty"),
    ];
    for (yaml, key, message) in cases {
        let err = Shape::build(&settings(yaml)).expect_err(yaml);
        assert_eq!(
            (err.key.as_str(), err.message.as_str()),
            (key, message),
            "{yaml}"
        );
    }
}

#[test]
fn settings_parse_and_round_trip() {
    let yaml = "move: {/z: /a, /b: /c}\nrename: {y: x, a: b}\ndrop: [d]\nkeep: [a]\nwrap: w\n";
    let parsed = settings(yaml);
    // The config's order, not sorted.
    assert_eq!(
        parsed.moves,
        [("/z".into(), "/a".into()), ("/b".into(), "/c".into())]
    );
    assert_eq!(
        parsed.rename,
        [("y".into(), "x".into()), ("a".into(), "b".into())]
    );
    let written = serde_yaml::to_string(&parsed).expect("serialize");
    assert_eq!(settings(&written), parsed);
    assert!(!parsed.is_empty());
    assert!(ShapeSettings::default().is_empty());
    assert!(
        Shape::build(&ShapeSettings::default())
            .expect("empty")
            .is_empty()
    );
    assert!(!shape("{keep: []}").is_empty());
}

#[test]
fn settings_refused_by_serde() {
    let cases = [
        ("{unknown: 1}", "unknown field `unknown`"),
        ("{move: {/a: /b, /a: /c}}", "duplicate"),
        ("{move: [/a]}", "a mapping of strings to strings"),
        ("{rename: {a: [b]}}", "invalid type"),
    ];
    for (yaml, want) in cases {
        let err = serde_yaml::from_str::<ShapeSettings>(yaml)
            .expect_err(yaml)
            .to_string();
        assert!(err.contains(want), "{yaml}: {err}");
    }
}
