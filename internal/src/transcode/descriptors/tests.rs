//! Descriptor loading: the built-in files are always there, `google.api.http` survives both
//! ways in (sources and descriptor sets), and every failure names its file, line and column.

use std::path::PathBuf;

use prost_reflect::{DescriptorPool, Value};

use super::*;
use crate::transcode::testing::{compile_files, shop_pool};

/// The `get` pattern of a method's `google.api.http` rule, read the way the rules module does.
fn get_pattern(pool: &DescriptorPool, method: &str) -> Option<String> {
    let (service, method) = method.rsplit_once('.')?;
    let method = pool
        .get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)?;
    let ext = pool.get_extension_by_name("google.api.http")?;
    let options = method.options();
    let rule = options.get_extension(&ext);
    match rule.as_message()?.get_field_by_name("get")?.as_ref() {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

#[test]
fn builtins_are_always_there() {
    let pool =
        compile(&DescriptorSettings::default(), Path::new("")).unwrap_or_else(|e| panic!("{e}"));
    for message in [
        "google.rpc.Status",
        "google.rpc.BadRequest",
        "google.protobuf.Any",
        "google.protobuf.Duration",
        "google.api.HttpRule",
        "google.api.HttpBody",
    ] {
        assert!(pool.get_message_by_name(message).is_some(), "{message}");
    }
    assert!(pool.get_extension_by_name("google.api.http").is_some());
    assert!(pool.get_file_by_name("google/rpc/status.proto").is_some());
}

#[test]
fn a_users_status_proto_does_not_shadow_google_rpc() {
    let files = [(
        "status.proto",
        "syntax = \"proto3\";\npackage mine;\nimport \"google/rpc/status.proto\";\n\
         message Status { google.rpc.Status rpc = 1; }\n",
    )];
    let (_dir, result) = compile_files(&files, &["status.proto"], &[]);
    let pool = result.unwrap_or_else(|e| panic!("{e}"));
    assert!(pool.get_message_by_name("mine.Status").is_some());
    assert!(pool.get_message_by_name("google.rpc.Status").is_some());
    assert!(pool.get_message_by_name("google.rpc.ErrorInfo").is_some());
}

#[test]
fn the_http_option_survives_compilation() {
    let pool = shop_pool();
    assert_eq!(
        get_pattern(&pool, "gatehouse.test.v1.Orders.GetOrder").as_deref(),
        Some("/v1/orders/{order_id}")
    );
}

#[test]
fn the_http_option_survives_a_descriptor_set() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("shop.binpb"), shop_pool().encode_to_vec())
        .unwrap_or_else(|e| panic!("{e}"));
    let settings = DescriptorSettings {
        descriptor_sets: vec!["shop.binpb".into()],
        ..DescriptorSettings::default()
    };
    let pool = compile(&settings, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        get_pattern(&pool, "gatehouse.test.v1.Orders.GetOrder").as_deref(),
        Some("/v1/orders/{order_id}")
    );
}

#[test]
fn imports_resolve_against_import_paths() {
    let files = [
        (
            "api/shop/v1/orders.proto",
            "syntax = \"proto3\";\npackage shop.v1;\nimport \"shop/v1/common.proto\";\n\
             import \"google/rpc/status.proto\";\n\
             message Order { Money total = 1; google.rpc.Status last_error = 2; }\n",
        ),
        (
            "api/shop/v1/common.proto",
            "syntax = \"proto3\";\npackage shop.v1;\nmessage Money { int64 units = 1; }\n",
        ),
    ];
    let (_dir, result) = compile_files(&files, &["api/shop/v1/orders.proto"], &["api"]);
    let pool = result.unwrap_or_else(|e| panic!("{e}"));
    assert!(pool.get_message_by_name("shop.v1.Money").is_some());
    // The default import path, the proto's own directory, finds `common.proto` too.
    let files = [
        (
            "protos/orders.proto",
            "syntax = \"proto3\";\nimport \"common.proto\";\nmessage Order { Money m = 1; }\n",
        ),
        (
            "protos/common.proto",
            "syntax = \"proto3\";\nmessage Money { int64 units = 1; }\n",
        ),
    ];
    let (_dir, result) = compile_files(&files, &["protos/orders.proto"], &[]);
    assert!(result.is_ok(), "{:?}", result.err());
}

/// A broken proto and where the error must point.
struct Broken {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    protos: &'static [&'static str],
    /// The key's index in `protos`.
    index: usize,
    /// The file the error names, relative to the directory.
    file: &'static str,
    position: Option<(usize, usize)>,
    message: &'static str,
}

const BROKEN: &[Broken] = &[
    Broken {
        name: "syntax error: a missing `;`",
        files: &[(
            "protos/bad.proto",
            "syntax = \"proto3\";\n\nmessage A {\n  int32 x = 1\n}\n",
        )],
        protos: &["protos/bad.proto"],
        index: 0,
        file: "protos/bad.proto",
        position: Some((5, 1)),
        message: "expected ';'",
    },
    Broken {
        name: "unknown type",
        files: &[(
            "bad.proto",
            "syntax = \"proto3\";\npackage p;\nmessage A {\n  Missing m = 1;\n}\n",
        )],
        protos: &["bad.proto"],
        index: 0,
        file: "bad.proto",
        position: Some((4, 3)),
        message: "name 'Missing' is not defined",
    },
    Broken {
        name: "duplicate message: the second definition",
        files: &[(
            "bad.proto",
            "syntax = \"proto3\";\nmessage A {}\nmessage A {}\n",
        )],
        protos: &["bad.proto"],
        index: 0,
        file: "bad.proto",
        position: Some((3, 9)),
        message: "name 'A' is defined twice",
    },
    Broken {
        name: "import not found",
        files: &[(
            "bad.proto",
            "syntax = \"proto3\";\nimport \"nowhere.proto\";\n",
        )],
        protos: &["bad.proto"],
        index: 0,
        file: "bad.proto",
        position: Some((2, 1)),
        message: "import 'nowhere.proto' not found",
    },
    Broken {
        name: "the error is in an imported file",
        files: &[
            (
                "good.proto",
                "syntax = \"proto3\";\nimport \"dep.proto\";\nmessage A {}\n",
            ),
            (
                "dep.proto",
                "syntax = \"proto3\";\nmessage B { int32 = 1; }\n",
            ),
        ],
        protos: &["good.proto"],
        index: 0,
        file: "dep.proto",
        position: Some((2, 19)),
        message: "expected an identifier",
    },
    Broken {
        name: "the second listed file",
        files: &[
            ("a.proto", "syntax = \"proto3\";\nmessage A {}\n"),
            ("b.proto", "syntax = \"proto4\";\n"),
        ],
        protos: &["a.proto", "b.proto"],
        index: 1,
        file: "b.proto",
        position: Some((1, 10)),
        message: "unknown syntax 'proto4'",
    },
    Broken {
        name: "a listed file that does not exist",
        files: &[],
        protos: &["missing.proto"],
        index: 0,
        file: "missing.proto",
        position: None,
        message: "No such file",
    },
];

#[test]
fn broken_protos_name_file_line_and_column() {
    let mut failures = Vec::new();
    for case in BROKEN {
        let (dir, result) = compile_files(case.files, case.protos, &[]);
        let Err(error) = result else {
            failures.push(format!("{}: compiled", case.name));
            continue;
        };
        let want_key = format!("internal.descriptors.protos[{}]", case.index);
        let want_file: PathBuf = dir.path().join(case.file);
        let at = match case.position {
            Some((line, column)) => format!("{}:{line}:{column}: ", want_file.display()),
            None => format!("{}: ", want_file.display()),
        };
        let text = error.to_string();
        if error.key() != want_key || !text.starts_with(&at) || !text.contains(case.message) {
            failures.push(format!(
                "{}:\n  got  {} | {text}\n  want {want_key} | {at}...{}...",
                case.name,
                error.key(),
                case.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn broken_descriptor_sets_name_their_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("garbage.binpb"),
        b"\xff\xff\xff not a descriptor set",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        ("garbage.binpb", "invalid descriptor set"),
        ("missing.binpb", "No such file"),
    ];
    for (file, message) in cases {
        let settings = DescriptorSettings {
            descriptor_sets: vec!["ok.binpb".into(), file.into()],
            ..DescriptorSettings::default()
        };
        std::fs::write(dir.path().join("ok.binpb"), shop_pool().encode_to_vec())
            .unwrap_or_else(|e| panic!("{e}"));
        let Err(error) = compile(&settings, dir.path()) else {
            panic!("{file} loaded");
        };
        assert_eq!(error.key(), "internal.descriptors.descriptor_sets[1]");
        let text = error.to_string();
        let at = format!("{}: ", dir.path().join(file).display());
        assert!(text.starts_with(&at) && text.contains(message), "{text}");
    }
}
