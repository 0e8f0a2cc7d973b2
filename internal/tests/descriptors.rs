//! Runs the built `gatehouse-internal` binary on configs with `internal.descriptors`: good
//! protos and descriptor sets validate; a broken `.proto` exits 64 naming the config key and
//! the proto's file, line and column; paths are relative to the config file's directory.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse-internal");
const EXIT_CONFIG: i32 = 64;

const GOOD_PROTO: &str = r#"syntax = "proto3";
package shop.v1;

import "google/api/annotations.proto";
import "google/protobuf/timestamp.proto";
import "common.proto";

message Order {
  string id = 1;
  Money total = 2;
  google.protobuf.Timestamp created = 3;
}

message GetOrderRequest { string id = 1; }

service Orders {
  rpc GetOrder(GetOrderRequest) returns (Order) {
    option (google.api.http) = { get: "/v1/orders/{id}" };
  }
}
"#;

const COMMON_PROTO: &str =
    "syntax = \"proto3\";\npackage shop.v1;\nmessage Money { int64 units = 1; }\n";

/// `files` written under a fresh directory.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

/// A config whose `internal.descriptors` lists `protos` (line 6 on) and no descriptor set.
fn config(protos: &[&str]) -> String {
    let mut lines = vec![
        "listeners: [{ name: public, address: 127.0.0.1:0 }]".to_owned(),
        "internal:".to_owned(),
        "  descriptors:".to_owned(),
        "    import_paths: [protos]".to_owned(),
        "    protos:".to_owned(),
    ];
    lines.extend(protos.iter().map(|p| format!("      - {p}")));
    lines.join("\n") + "\n"
}

fn validate(cwd: &Path, config: &str) -> Output {
    Command::new(BIN)
        .current_dir(cwd)
        .args(["validate", "--config", config])
        .output()
        .expect("run gatehouse-internal")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn good_protos_validate() {
    let dir = dir_with(&[
        ("protos/orders.proto", GOOD_PROTO),
        ("protos/common.proto", COMMON_PROTO),
        ("config.yaml", &config(&["protos/orders.proto"])),
    ]);
    let out = validate(dir.path(), "config.yaml");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A broken proto, listed second, and what `validate` must print after
/// `gatehouse-internal: config.yaml:7:9: at `internal.descriptors.protos[1]`: `.
struct Broken {
    name: &'static str,
    proto: &'static str,
    /// `FILE:LINE:COL: message` as printed.
    want: &'static str,
}

const BROKEN: &[Broken] = &[
    Broken {
        name: "syntax error",
        proto: "syntax = \"proto3\";\npackage shop.v1;\n\nmessage Order {\n  string id = 1\n}\n",
        want: "protos/bad.proto:6:1: expected ';' or '[', but found '}'",
    },
    Broken {
        name: "unknown type",
        proto: "syntax = \"proto3\";\npackage shop.v1;\nimport \"common.proto\";\n\n\
                message Order {\n  Money total = 1;\n  Price price = 2;\n}\n",
        want: "protos/bad.proto:7:3: name 'Price' is not defined",
    },
    Broken {
        name: "missing import",
        proto: "syntax = \"proto3\";\npackage shop.v1;\nimport \"money.proto\";\n",
        want: "protos/bad.proto:3:1: import 'money.proto' not found",
    },
];

#[test]
fn broken_proto_names_file_line_and_column() {
    let mut failures = Vec::new();
    for case in BROKEN {
        let dir = dir_with(&[
            ("protos/common.proto", COMMON_PROTO),
            ("protos/bad.proto", case.proto),
            (
                "config.yaml",
                &config(&["protos/common.proto", "protos/bad.proto"]),
            ),
        ]);
        let out = validate(dir.path(), "config.yaml");
        let stderr = text(&out.stderr);
        let want = format!(
            "gatehouse-internal: config.yaml:7:9: at `internal.descriptors.protos[1]`: {}",
            case.want
        );
        if out.status.code() != Some(EXIT_CONFIG)
            || stderr.lines().count() != 1
            || !stderr.starts_with(&want)
        {
            failures.push(format!(
                "{}: {:?}\n  want: {want}\n  got:  {stderr}",
                case.name, out.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn paths_are_relative_to_the_config_file() {
    // Run from elsewhere, with the config named by its absolute path: the protos are still
    // found next to it, and the error names the proto by the path it was opened at.
    let dir = dir_with(&[
        ("protos/common.proto", COMMON_PROTO),
        (
            "protos/bad.proto",
            "syntax = \"proto3\";\nmessage A { int32 x = 1 }\n",
        ),
        (
            "config.yaml",
            &config(&["protos/common.proto", "protos/bad.proto"]),
        ),
    ]);
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.yaml");
    let out = validate(elsewhere.path(), config.to_str().expect("utf-8"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{stderr}");
    let want = format!(
        "{}:2:25: expected ';'",
        dir.path().join("protos/bad.proto").display()
    );
    assert!(stderr.contains(&want), "want {want}\ngot  {stderr}");
}

#[test]
fn missing_descriptor_set_is_refused() {
    let dir = dir_with(&[(
        "config.yaml",
        "listeners: [{ name: public, address: 127.0.0.1:0 }]\ninternal:\n  descriptors:\n    \
         descriptor_sets: [build/shop.binpb]\n",
    )]);
    let out = validate(dir.path(), "config.yaml");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{stderr}");
    assert!(
        stderr.starts_with(
            "gatehouse-internal: config.yaml:4:23: at `internal.descriptors.descriptor_sets[0]`: \
             build/shop.binpb: "
        ),
        "{stderr}"
    );
}
