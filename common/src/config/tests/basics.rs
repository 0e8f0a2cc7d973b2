//! did_you_mean, environment substitution, secrets, file loading and error display.

use std::io::Write as _;

use super::{BASE, Gateway};
use crate::config::{ConfigError, Loaded, Secret, did_you_mean, load, parse_with_env};

#[test]
fn did_you_mean_finds_close_names_only() {
    let fields = [
        "listeners",
        "admin",
        "timeouts",
        "limits",
        "routes",
        "services",
    ];
    assert_eq!(did_you_mean("timeout", fields), Some("timeouts"));
    assert_eq!(did_you_mean("servcies", fields), Some("services"));
    assert_eq!(did_you_mean("lsiteners", fields), Some("listeners"));
    assert_eq!(did_you_mean("ADMIN", fields), Some("admin"));
    assert_eq!(did_you_mean("tracing", fields), None);
    assert_eq!(did_you_mean("x", ["y", "xy"]), Some("y"));
    assert_eq!(did_you_mean("ab", ["cd"]), None);
    assert_eq!(did_you_mean("anything", []), None);
    // A case-insensitive exact match wins over an earlier, merely close candidate.
    assert_eq!(did_you_mean("Users", ["user", "users"]), Some("users"));
}

fn env(name: &str) -> Option<String> {
    match name {
        "HOST" => Some("10.1.2.3".into()),
        "EMPTY" => Some(String::new()),
        "TOKEN" => Some("s3cr3t".into()),
        "MULTI" => Some("a\nb".into()),
        _ => None,
    }
}

fn substitute(text: &str) -> Result<String, String> {
    crate::config::env::substitute(text, &env)
        .map(|s| s.text)
        .map_err(|e| e.message)
}

#[test]
fn env_substitution_forms_and_escapes() {
    assert_eq!(substitute("a: ${HOST}:80"), Ok("a: 10.1.2.3:80".into()));
    assert_eq!(substitute("a: ${UNSET:-x y}"), Ok("a: x y".into()));
    assert_eq!(substitute("a: ${HOST:-x}"), Ok("a: 10.1.2.3".into()));
    assert_eq!(substitute("a: ${EMPTY:-dflt}"), Ok("a: dflt".into()));
    assert_eq!(substitute("a: '${EMPTY}'"), Ok("a: ''".into()));
    assert_eq!(substitute("a: ${UNSET:-}"), Ok("a: ".into()));
    assert_eq!(
        substitute("a: $${HOST} $$ $x $"),
        Ok("a: ${HOST} $$ $x $".into())
    );
    // Read left to right: a lone `$`, then the escape.
    assert_eq!(substitute("a: $$${HOST}"), Ok("a: $${HOST}".into()));
    assert_eq!(
        substitute("é: ${HOST}\nb: ${HOST}"),
        Ok("é: 10.1.2.3\nb: 10.1.2.3".into())
    );
    let refused = [
        ("a: ${UNSET}", "environment variable `UNSET` is not set"),
        ("a: ${MULTI}", "holds a line break"),
        ("a: ${1X}", "invalid environment variable name `1X`"),
        ("a: ${}", "invalid environment variable name ``"),
        ("a: ${HOST\n}", "unterminated"),
    ];
    for (text, want) in refused {
        let got = substitute(text).err().unwrap_or_default();
        assert!(got.contains(want), "{text:?}: {got}");
    }
}

#[test]
fn env_errors_and_values_keep_lines_and_columns() -> Result<(), ConfigError> {
    let text = "listeners: []\nadmin:\n  address: ${HOST}:${PORT}\n";
    match parse_with_env::<Gateway>("f.yaml", text, env) {
        Err(ConfigError::Invalid {
            line: 3,
            column: 20,
            message,
            ..
        }) => {
            assert!(message.contains("`PORT`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let text = "listeners: []\nadmin: {address: '$${x}', token: \"${TOKEN}\"}\n";
    let loaded: Loaded<Gateway> = parse_with_env("f.yaml", text, env)?;
    assert_eq!(loaded.value.admin.address, "${x}");
    assert_eq!(
        loaded.value.admin.token.as_ref().map(Secret::expose),
        Some("s3cr3t")
    );
    Ok(())
}

#[test]
fn secrets_never_print() -> Result<(), serde_yaml::Error> {
    let secret = Secret::new("hunter2");
    assert_eq!(secret.to_string(), "<redacted>");
    assert_eq!(format!("{secret:?}"), "\"<redacted>\"");
    assert_eq!(serde_yaml::to_string(&secret)?, "<redacted>\n");
    assert_eq!(secret.expose(), "hunter2");
    let config: Gateway = serde_yaml::from_str("listeners: []\nadmin: {address: x, token: t0k}\n")?;
    let dump = serde_yaml::to_string(&config)?;
    assert!(
        dump.contains("token: <redacted>") && !dump.contains("t0k"),
        "{dump}"
    );
    Ok(())
}

#[test]
fn load_reads_files_and_reports_unreadable_ones() -> Result<(), Box<dyn std::error::Error>> {
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(BASE.as_bytes())?;
    let loaded: Loaded<Gateway> = load(file.path())?;
    assert_eq!(loaded.source.file, file.path());
    assert_eq!(loaded.value.routes.len(), 2);

    let missing = file.path().with_extension("missing");
    let error = load::<Gateway>(&missing)
        .err()
        .ok_or("loaded a missing file")?;
    assert!(matches!(&error, ConfigError::Io { file, .. } if *file == missing));
    assert!(std::error::Error::source(&error).is_some());
    assert!(error.to_string().starts_with("cannot read config file "));
    Ok(())
}

#[test]
fn empty_and_comment_only_files_are_refused() {
    for text in ["", "\n\n", "# nothing here\n"] {
        let error = parse_with_env::<Gateway>("empty.yaml", text, env).err();
        let shown = error.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            shown,
            "empty.yaml:1:1: the file is empty: expected a YAML mapping"
        );
    }
}

#[test]
fn errors_display_on_one_line() {
    let text = BASE.replacen("timeouts:", "timeout:", 1);
    let shown = parse_with_env::<Gateway>("gatehouse.yaml", &text, env)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        shown.as_deref(),
        Some(
            "gatehouse.yaml:9:1: at `timeout`: unknown field `timeout`, expected one of \
             `listeners`, `admin`, `timeouts`, `limits`, `routes`, `services` \
             (did you mean `timeouts`?)"
        )
    );
    let error = ConfigError::invalid("f.yaml", (2, 3), "a", "bad\nvalue", None);
    assert_eq!(error.to_string(), "f.yaml:2:3: at `a`: bad value");
    assert_eq!(error.key_path(), Some("a"));
}

#[test]
fn top_level_sequence_is_a_type_error() {
    let error = parse_with_env::<Gateway>("f.yaml", "- a\n- b\n", env).err();
    let shown = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        shown.starts_with("f.yaml:1:1: invalid type: sequence, expected struct Gateway"),
        "{shown}"
    );
}

#[test]
fn anchors_tags_and_merge_keys_pass_the_syntax_check() -> Result<(), ConfigError> {
    type Doc = std::collections::BTreeMap<String, serde_yaml::Value>;
    let text = "base: &b {x: 1}\nmerged: {<<: *b, y: 2}\nalias: *b\ntagged: !tag {z: [1, 2]}\n";
    let loaded: Loaded<Doc> = parse_with_env("f.yaml", text, env)?;
    assert_eq!(loaded.value.len(), 4);
    assert_eq!(loaded.source.position("tagged.z[1]"), (4, 22));
    let two_documents = parse_with_env::<Doc>("f.yaml", "a: 1\n---\nb: 2\n", env).err();
    let shown = two_documents.map(|e| e.to_string()).unwrap_or_default();
    assert!(shown.contains("more than one document"), "{shown}");
    Ok(())
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = "listeners: []\nadmin: {address: \"é\", token: [x]}\n";
    match parse_with_env::<Gateway>("f.yaml", text, env) {
        Err(ConfigError::Invalid {
            line,
            column,
            key_path,
            ..
        }) => {
            assert_eq!((line, column, key_path.as_str()), (2, 30, "admin.token"));
        }
        other => panic!("{other:?}"),
    }
    let source = crate::config::Source::new("f.yaml", text);
    assert_eq!(source.position("admin.token"), (2, 23));
    assert_eq!(source.position("admin.nothing"), (2, 1));
}
