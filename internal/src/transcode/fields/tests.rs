//! Text → field conversions (every scalar kind, bounds, enums, bytes, wrappers, timestamps,
//! nested and repeated paths, both spellings), query strings both ways, and `get_path`. Results
//! are checked as the message's proto3 JSON, the form a client would see.

use prost_reflect::{DynamicMessage, Value};
use serde_json::json;

use super::*;
use crate::transcode::testing::{empty, message};

fn as_json(msg: &DynamicMessage) -> serde_json::Value {
    serde_json::to_value(msg).unwrap_or_else(|e| panic!("serialize: {e}"))
}

/// `(path, text, Ok(JSON of the message after) | Err(part of the error))`.
type SetCase = (
    &'static str,
    &'static str,
    Result<serde_json::Value, &'static str>,
);

#[test]
fn set_path_converts_text_by_the_json_rules() {
    let cases: Vec<SetCase> = vec![
        // 32-bit integers and their bounds.
        ("i32", "-2147483648", Ok(json!({"i32": -2147483648}))),
        ("i32", "2147483647", Ok(json!({"i32": 2147483647}))),
        ("i32", "2147483648", Err("out of range for int32")),
        ("i32", "1e3", Ok(json!({"i32": 1000}))),
        ("i32", "5.0", Ok(json!({"i32": 5}))),
        ("i32", "1.5", Err("not an integer")),
        (
            "i32",
            "abc",
            Err("invalid value `abc` for `i32` (int32): not an integer"),
        ),
        ("i32", "", Err("not an integer")),
        ("i32", "0x10", Err("not an integer")),
        ("s32", "-5", Ok(json!({"s32": -5}))),
        ("sfx32", "-6", Ok(json!({"sfx32": -6}))),
        ("u32", "4294967295", Ok(json!({"u32": 4294967295u32}))),
        ("u32", "-1", Err("out of range for uint32")),
        ("fx32", "7", Ok(json!({"fx32": 7}))),
        // 64-bit integers: strings in JSON, exact to the last digit.
        (
            "i64",
            "9223372036854775807",
            Ok(json!({"i64": "9223372036854775807"})),
        ),
        (
            "i64",
            "-9223372036854775808",
            Ok(json!({"i64": "-9223372036854775808"})),
        ),
        ("i64", "9223372036854775808", Err("out of range for int64")),
        ("i64", "1e300", Err("out of range for int64")),
        ("s64", "-1", Ok(json!({"s64": "-1"}))),
        ("sfx64", "-7", Ok(json!({"sfx64": "-7"}))),
        (
            "u64",
            "18446744073709551615",
            Ok(json!({"u64": "18446744073709551615"})),
        ),
        (
            "u64",
            "18446744073709551616",
            Err("out of range for uint64"),
        ),
        ("u64", "-0", Ok(json!({}))),
        ("fx64", "8", Ok(json!({"fx64": "8"}))),
        // Floating point.
        ("fl", "1.5", Ok(json!({"fl": 1.5}))),
        ("fl", "NaN", Ok(json!({"fl": "NaN"}))),
        ("fl", "-Infinity", Ok(json!({"fl": "-Infinity"}))),
        ("fl", "1e39", Err("out of range for float")),
        ("db", "-2.5e-3", Ok(json!({"db": -0.0025}))),
        ("db", "Infinity", Ok(json!({"db": "Infinity"}))),
        ("db", "inf", Err("not a number")),
        ("db", "nan", Err("not a number")),
        ("db", "1e400", Err("out of range for double")),
        // Booleans, strings.
        ("flag", "true", Ok(json!({"flag": true}))),
        ("flag", "false", Ok(json!({}))),
        ("flag", "1", Err("expected `true` or `false`")),
        ("flag", "True", Err("expected `true` or `false`")),
        ("text", "héllo wörld", Ok(json!({"text": "héllo wörld"}))),
        // Bytes: base64 of either alphabet, padded or not.
        ("data", "aGk/Pz4+", Ok(json!({"data": "aGk/Pz4+"}))),
        ("data", "aGk_Pz4-", Ok(json!({"data": "aGk/Pz4+"}))),
        ("data", "aGk", Ok(json!({"data": "aGk="}))),
        ("data", "aGk=", Ok(json!({"data": "aGk="}))),
        ("data", "aGk/Pz4 ", Ok(json!({"data": "aGk/Pz4+"}))),
        ("data", "!!", Err("not base64")),
        // Enums by name or number; unknown numbers kept (open enums).
        ("color", "GREEN", Ok(json!({"color": "GREEN"}))),
        ("color", "2", Ok(json!({"color": "GREEN"}))),
        ("color", "7", Ok(json!({"color": 7}))),
        (
            "color",
            "BLUE",
            Err("expected a number or one of COLOR_UNSPECIFIED, RED, GREEN"),
        ),
        ("color", "green", Err("expected a number or one of")),
        // Repeated fields take one element; nested paths create their messages.
        ("tags", "x", Ok(json!({"tags": ["x"]}))),
        ("colors", "RED", Ok(json!({"colors": ["RED"]}))),
        ("numbers", "x", Err("not an integer")),
        ("inner.name", "n", Ok(json!({"inner": {"name": "n"}}))),
        (
            "inner.child.count",
            "3",
            Ok(json!({"inner": {"child": {"count": "3"}}})),
        ),
        ("inner.labels", "l", Ok(json!({"inner": {"labels": ["l"]}}))),
        // Both spellings.
        ("page_size", "5", Ok(json!({"pageSize": 5}))),
        ("pageSize", "5", Ok(json!({"pageSize": 5}))),
        ("maybeText", "t", Ok(json!({"maybeText": "t"}))),
        // Wrappers: set even to their default (that is their point).
        ("big", "123", Ok(json!({"big": "123"}))),
        ("big", "0", Ok(json!({"big": "0"}))),
        ("maybe_text", "", Ok(json!({"maybeText": ""}))),
        ("maybe_flag", "false", Ok(json!({"maybeFlag": false}))),
        ("ratio", "0.5", Ok(json!({"ratio": 0.5}))),
        // (NaN in a FloatValue: see `wrappers_hold_non_finite_floats`.)
        ("ratio32", "-1.25", Ok(json!({"ratio32": -1.25}))),
        ("blob", "aGk", Ok(json!({"blob": "aGk="}))),
        ("small", "-1", Err("out of range for uint32")),
        (
            "big",
            "x",
            Err("(google.protobuf.Int64Value): not an integer"),
        ),
        // Timestamp, Duration, FieldMask as their JSON strings.
        (
            "at",
            "2024-05-01T12:30:00Z",
            Ok(json!({"at": "2024-05-01T12:30:00Z"})),
        ),
        (
            "at",
            "2024-05-01T12:30:00.5+02:00",
            Ok(json!({"at": "2024-05-01T10:30:00.500Z"})),
        ),
        ("at", "yesterday", Err("(google.protobuf.Timestamp)")),
        ("at", "2024-05-01", Err("(google.protobuf.Timestamp)")),
        ("ttl", "1.5s", Ok(json!({"ttl": "1.500s"}))),
        ("ttl", "-3s", Ok(json!({"ttl": "-3s"}))),
        ("ttl", "3m", Err("(google.protobuf.Duration)")),
        (
            "update_mask",
            "text,inner.name,pageSize",
            Ok(json!({"updateMask": "text,inner.name,pageSize"})),
        ),
        (
            "times",
            "2024-01-01T00:00:00Z",
            Ok(json!({"times": ["2024-01-01T00:00:00Z"]})),
        ),
        // Presence: an `optional` field and a oneof member are set even at their default.
        ("maybe", "0", Ok(json!({"maybe": 0}))),
        ("two", "0", Ok(json!({"two": 0}))),
        // Paths that name no scalar.
        (
            "nope",
            "1",
            Err("`nope`: gatehouse.test.v1.Everything has no field `nope`"),
        ),
        (
            "inner.nope",
            "1",
            Err("`inner.nope`: gatehouse.test.v1.Inner has no field `nope`"),
        ),
        ("inner", "x", Err("`inner` is a message")),
        ("extra", "x", Err("`extra` is a message")),
        ("attrs", "x", Err("`attrs` is a map")),
        ("tags.x", "1", Err("`tags` is not a singular message field")),
        (
            "inners.name",
            "x",
            Err("`inners` is not a singular message field"),
        ),
        ("text.x", "1", Err("`text` is not a singular message field")),
        (
            "attrs.key",
            "1",
            Err("`attrs` is not a singular message field"),
        ),
        ("", "1", Err("has no field ``")),
    ];
    let mut failures = Vec::new();
    for (path, text, want) in cases {
        let mut msg = empty("Everything");
        let got = set_path(&mut msg, path, text).map(|()| as_json(&msg));
        let ok = match (&got, &want) {
            (Ok(got), Ok(want)) => got == want,
            (Err(got), Err(want)) => got.to_string().contains(want),
            _ => false,
        };
        if !ok {
            let got = got.map_err(|e| e.to_string());
            failures.push(format!("{path}={text}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// prost-reflect's JSON writes a NaN or infinite `FloatValue`/`DoubleValue` as a bare float,
/// which serde_json turns into `null` (proto3 JSON says `"NaN"`): the value itself is right.
#[test]
fn wrappers_hold_non_finite_floats() {
    for (path, text) in [("ratio32", "NaN"), ("ratio", "-Infinity")] {
        let mut msg = empty("Everything");
        set_path(&mut msg, path, text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(get_path(&msg, path).as_deref(), Some(text), "{path}");
    }
}

#[test]
fn repeated_fields_append_and_oneofs_switch() {
    let mut msg = empty("Everything");
    for (path, text) in [("tags", "a"), ("tags", "b"), ("one", "x"), ("two", "2")] {
        set_path(&mut msg, path, text).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(as_json(&msg), json!({"tags": ["a", "b"], "two": 2}));
}

/// `(query, bound, ignore_unknown, Ok(JSON) | Err(message))`.
type QueryCase = (
    &'static str,
    &'static [&'static str],
    bool,
    Result<serde_json::Value, &'static str>,
);

#[test]
fn apply_query_table() {
    let cases: Vec<QueryCase> = vec![
        ("", &[], false, Ok(json!({}))),
        ("&&flag=true&", &[], false, Ok(json!({"flag": true}))),
        (
            "i64=5&tags=a&tags=b",
            &[],
            false,
            Ok(json!({"i64": "5", "tags": ["a", "b"]})),
        ),
        (
            "inner.name=x%20y&inner.child.count=2",
            &[],
            false,
            Ok(json!({"inner": {"name": "x y", "child": {"count": "2"}}})),
        ),
        ("pageSize=10", &[], false, Ok(json!({"pageSize": 10}))),
        ("page_size=10", &[], false, Ok(json!({"pageSize": 10}))),
        ("text=a+b%2Bc", &[], false, Ok(json!({"text": "a b+c"}))),
        ("text=caf%C3%A9", &[], false, Ok(json!({"text": "café"}))),
        (
            "inner%2Ename=k",
            &[],
            false,
            Ok(json!({"inner": {"name": "k"}})),
        ),
        // An unescaped base64 `+` arrives as a space and is read back as `+`.
        ("data=aGk/Pz4+", &[], false, Ok(json!({"data": "aGk/Pz4+"}))),
        (
            "color=RED&colors=GREEN&colors=1",
            &[],
            false,
            Ok(json!({"color": "RED", "colors": ["GREEN", "RED"]})),
        ),
        (
            "at=2024-05-01T12%3A30%3A00Z&ttl=2s&big=9",
            &[],
            false,
            Ok(json!({"at": "2024-05-01T12:30:00Z", "ttl": "2s", "big": "9"})),
        ),
        ("text=", &[], false, Ok(json!({}))),
        // Unknown parameters.
        ("nope=1", &[], false, Err("unknown query parameter `nope`")),
        ("nope=1&i32=2", &[], true, Ok(json!({"i32": 2}))),
        (
            "inner.nope=1",
            &[],
            false,
            Err("unknown query parameter `inner.nope`"),
        ),
        ("inner.nope=1", &[], true, Ok(json!({}))),
        (
            "PageSize=1",
            &[],
            false,
            Err("unknown query parameter `PageSize`"),
        ),
        // Known fields that text cannot set are errors even when unknown ones are ignored.
        ("inner=x", &[], true, Err("`inner` is a message")),
        ("attrs=x", &[], false, Err("`attrs` is a map")),
        (
            "flag",
            &[],
            false,
            Err("invalid value `` for `flag` (bool)"),
        ),
        (
            "i64=x",
            &[],
            false,
            Err("invalid value `x` for `i64` (int64): not an integer"),
        ),
        (
            "pageSize=x",
            &[],
            false,
            Err("invalid value `x` for `pageSize` (int32)"),
        ),
        (
            "text=%zz",
            &[],
            false,
            Err("query parameter `%zz`: `%` not followed by two hex digits"),
        ),
        ("text=%FF", &[], false, Err("not valid UTF-8")),
        // Fields the path or body bound are left alone, in either spelling, and below them.
        ("text=a&i32=1", &["text"], false, Ok(json!({"i32": 1}))),
        ("pageSize=3", &["page_size"], false, Ok(json!({}))),
        ("inner.name=a&inner=x", &["inner"], false, Ok(json!({}))),
        (
            "inner.name=a&inner.count=2",
            &["inner.name"],
            false,
            Ok(json!({"inner": {"count": "2"}})),
        ),
        // `inner_x` is not below `inner`.
        ("text=a", &["tex"], false, Ok(json!({"text": "a"}))),
    ];
    let mut failures = Vec::new();
    for (query, bound, ignore, want) in cases {
        let mut msg = empty("Everything");
        let got = apply_query(&mut msg, query, bound, ignore).map(|()| as_json(&msg));
        let ok = match (&got, &want) {
            (Ok(got), Ok(want)) => got == want,
            (Err(got), Err(want)) => got.to_string().contains(want),
            _ => false,
        };
        if !ok {
            let got = got.map_err(|e| e.to_string());
            failures.push(format!("?{query} {bound:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A message with many kinds of field set, through the query mapping.
fn filled() -> DynamicMessage {
    let mut msg = empty("Everything");
    let query = "i64=-5&fl=NaN&data=aGk&color=GREEN&tags=a&tags=b%20c&inner.name=a%20b\
                 &inner.child.count=2&big=0&at=2024-05-01T12:30:00Z&ttl=1.5s&page_size=3\
                 &maybe=0&update_mask=inner.name,pageSize&flag=true&u64=18446744073709551615";
    apply_query(&mut msg, query, &[] as &[&str], false).unwrap_or_else(|e| panic!("{e}"));
    msg
}

#[test]
fn get_path_reads_text_back() {
    let msg = filled();
    let cases: &[(&str, Option<&str>)] = &[
        ("i64", Some("-5")),
        ("fl", Some("NaN")),
        ("data", Some("aGk=")),
        ("color", Some("GREEN")),
        ("inner.name", Some("a b")),
        ("inner.child.count", Some("2")),
        ("pageSize", Some("3")),
        ("page_size", Some("3")),
        ("big", Some("0")),
        ("at", Some("2024-05-01T12:30:00Z")),
        ("ttl", Some("1.500s")),
        ("update_mask", Some("inner.name,pageSize")),
        ("flag", Some("true")),
        ("u64", Some("18446744073709551615")),
        ("maybe", Some("0")),
        // Unset scalars read as their default, through unset parents too.
        ("text", Some("")),
        ("i32", Some("0")),
        ("inner.child.child.name", Some("")),
        // No text form, or unset well-known types.
        ("tags", None),
        ("inner", None),
        ("attrs", None),
        ("extra", None),
        ("maybe_text", None),
        ("nope", None),
        ("tags.x", None),
    ];
    for (path, want) in cases {
        assert_eq!(get_path(&msg, path).as_deref(), *want, "{path}");
    }
    let mut unknown = empty("Everything");
    set_path(&mut unknown, "color", "7").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(get_path(&unknown, "color").as_deref(), Some("7"));
}

#[test]
fn to_query_writes_set_fields_by_json_name() {
    let mut msg = filled();
    // Maps and repeated messages have no query form: left out.
    let inner = message("Inner");
    let mut element = DynamicMessage::new(inner);
    element.set_field_by_name("name", Value::String("e".to_owned()));
    msg.set_field_by_name("inners", Value::List(vec![Value::Message(element)]));
    set_path(&mut msg, "text", "x").unwrap_or_else(|e| panic!("{e}"));

    let query = to_query(&msg, &["text", "inner.child"]);
    assert_eq!(
        query,
        "i64=-5&u64=18446744073709551615&fl=NaN&flag=true&data=aGk%3D&color=GREEN\
         &tags=a&tags=b%20c&inner.name=a%20b&big=0&at=2024-05-01T12%3A30%3A00Z&ttl=1.500s\
         &updateMask=inner.name%2CpageSize&pageSize=3&maybe=0"
    );

    // What `to_query` writes, `apply_query` reads back to the same message (less what
    // has no query form).
    let mut back = empty("Everything");
    apply_query(
        &mut back,
        &to_query(&msg, &[] as &[&str]),
        &[] as &[&str],
        false,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    msg.clear_field_by_name("inners");
    assert_eq!(as_json(&back), as_json(&msg));
}
