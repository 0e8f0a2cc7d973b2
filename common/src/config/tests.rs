//! Table tests: malformed gateway configs and the exact error each one must produce.

mod basics;
mod units;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{
    ByteSize, ConfigError, Duration, Loaded, Secret, did_you_mean_hint, parse_with_env,
};

/// A gateway-like schema, raw layer: every struct refuses unknown fields.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Gateway {
    listeners: Vec<Listener>,
    admin: Admin,
    #[serde(default)]
    timeouts: Timeouts,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    services: BTreeMap<String, Service>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Listener {
    name: String,
    address: String,
    tls: Option<Tls>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Tls {
    cert: String,
    key: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Admin {
    address: String,
    token: Option<Secret>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Timeouts {
    /// Default is 1 second.
    connect: Duration,
    /// Default is 30 seconds.
    request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    max_body: Option<ByteSize>,
    max_header: Option<ByteSize>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Route {
    name: String,
    #[serde(rename = "match")]
    matcher: Match,
    service: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Match {
    path_prefix: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Service {
    endpoints: Vec<String>,
    #[serde(default)]
    protocol: Protocol,
}

#[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Protocol {
    #[default]
    Http1,
    H2c,
    Tls,
}

/// The valid config every case edits; line numbers in the table refer to this text.
const BASE: &str = "\
listeners:
  - name: public
    address: 0.0.0.0:8443
    tls:
      cert: certs/edge.pem
      key: certs/edge.key
admin:
  address: 127.0.0.1:9901
timeouts:
  connect: 250ms
  request: 30s
limits:
  max_body: 10MiB
  max_header: 64KiB
routes:
  - name: users
    match:
      path_prefix: /users
    service: users
  - name: orders
    match:
      path_prefix: /orders
    service: orders
services:
  users:
    endpoints: [10.0.0.1:8080, 10.0.0.2:8080]
    protocol: http1
  orders:
    endpoints:
      - 10.0.1.1:8080
    protocol: h2c
";

/// Environment of the table: `CONNECT` is set, anything else is unset.
fn test_env(name: &str) -> Option<String> {
    (name == "CONNECT").then(|| "250ms".to_owned())
}

/// Both layers: deserialize, then the checks a validation layer makes.
fn load_and_validate(text: &str) -> Result<Loaded<Gateway>, ConfigError> {
    let loaded: Loaded<Gateway> = parse_with_env("gatehouse.yaml", text, test_env)?;
    let (config, source) = (&loaded.value, &loaded.source);
    for (i, listener) in config.listeners.iter().enumerate() {
        if listener.address.ends_with(":443") && listener.tls.is_none() {
            let message = "a listener on port 443 needs `tls`";
            return Err(source.error_at(&format!("listeners[{i}].tls"), message));
        }
    }
    for (i, route) in config.routes.iter().enumerate() {
        if !config.services.contains_key(&route.service) {
            let names = config.services.keys().map(String::as_str);
            return Err(source.error_at_hint(
                &format!("routes[{i}].service"),
                format!("unknown service `{}`", route.service),
                did_you_mean_hint(&route.service, names),
            ));
        }
    }
    Ok(loaded)
}

/// How a case changes `BASE`: replace the first occurrence of `.0` by `.1`.
type Edit = (&'static str, &'static str);
/// What the error must say: line, column, key path, part of the message, hint.
type Expect = (
    usize,
    usize,
    &'static str,
    &'static str,
    Option<&'static str>,
);

#[rustfmt::skip]
const CASES: &[(&str, Edit, Expect)] = &[
    ("unknown top-level key",
        ("limits:", "limit:"),
        (12, 1, "limit", "unknown field `limit`, expected one of", Some("did you mean `limits`?"))),
    ("unknown nested key, close to a field",
        ("      key: certs", "      keyy: certs"),
        (6, 7, "listeners[0].tls.keyy", "unknown field `keyy`", Some("did you mean `key`?"))),
    ("unknown nested key, nothing close",
        ("/users\n", "/users\n      methods: [GET]\n"),
        (19, 7, "routes[0].match.methods", "unknown field `methods`, expected `path_prefix`", None)),
    ("string where a list is expected",
        ("[10.0.0.1:8080, 10.0.0.2:8080]", "10.0.0.1:8080"),
        (26, 16, "services.users.endpoints", "invalid type: string \"10.0.0.1:8080\", expected a sequence", None)),
    ("map where a string is expected",
        ("service: orders", "service: {name: orders}"),
        (23, 14, "routes[1].service", "invalid type: map, expected a string", None)),
    ("duration with a word unit",
        ("request: 30s", "request: 5 seconds"),
        (11, 12, "timeouts.request", "invalid duration `5 seconds`: unknown unit `seconds`", None)),
    ("negative duration",
        ("connect: 250ms", "connect: -1s"),
        (10, 12, "timeouts.connect", "invalid duration `-1s`: durations cannot be negative", None)),
    ("duration without a unit",
        ("request: 30s", "request: 30"),
        (11, 12, "timeouts.request", "durations need a unit: 250ms, 5s, 1m", None)),
    ("byte size with a wrong-case unit",
        ("max_body: 10MiB", "max_body: 10mib"),
        (13, 13, "limits.max_body", "unknown unit `mib` (did you mean `MiB`?)", None)),
    ("byte size that overflows",
        ("max_header: 64KiB", "max_header: 99999999TiB"),
        (14, 15, "limits.max_header", "invalid byte size `99999999TiB`: too large", None)),
    ("unknown enum variant",
        ("protocol: h2c", "protocol: tsl"),
        (31, 15, "services.orders.protocol", "unknown variant `tsl`, expected one of `http1`, `h2c`, `tls`", Some("did you mean `tls`?"))),
    ("missing required field",
        ("    service: orders\n", ""),
        (20, 5, "routes[1]", "missing field `service`", None)),
    ("missing top-level section",
        ("admin:\n  address: 127.0.0.1:9901\n", ""),
        (1, 1, "", "missing field `admin`", None)),
    ("key indented deeper than its siblings",
        ("  request: 30s", "   request: 30s"),
        (11, 11, "timeouts", "mapping values are not allowed in this context", None)),
    ("unclosed quote points where it opens",
        ("path_prefix: /orders", "path_prefix: \"/orders"),
        (22, 20, "routes[1].match.path_prefix", "found unexpected end of stream, while scanning a quoted scalar", Some("is a quote left unclosed?"))),
    ("tab indentation",
        ("  max_body: 10MiB", "\tmax_body: 10MiB"),
        (13, 1, "limits", "found character that cannot start any token", Some("YAML indentation must use spaces, not tabs"))),
    ("duplicate top-level key",
        ("routes:", "admin:\n  address: 10.0.0.9:9901\nroutes:"),
        (15, 1, "admin", "duplicate key (first defined on line 7)", None)),
    ("duplicate map entry serde would silently merge",
        ("  orders:\n", "  users:\n"),
        (28, 3, "services.users", "duplicate key (first defined on line 25)", None)),
    ("unset environment variable",
        ("address: 127.0.0.1:9901", "address: ${ADMIN_ADDR}"),
        (8, 12, "", "environment variable `ADMIN_ADDR` is not set", Some("set it, or give a default: ${ADMIN_ADDR:-value}"))),
    ("unterminated ${",
        ("address: 127.0.0.1:9901", "address: ${ADMIN_ADDR"),
        (8, 12, "", "unterminated `${`: missing `}`", Some("write `$${` for a literal `${`"))),
    ("env default used, and it is invalid",
        ("request: 30s", "request: ${REQUEST_TIMEOUT:-30}"),
        (11, 12, "timeouts.request", "invalid duration `30`", None)),
    ("columns after a substitution are the file's",
        ("timeouts:\n  connect: 250ms\n  request: 30s\n", "timeouts: {connect: ${CONNECT}, request: 5 seconds}\n"),
        (9, 42, "timeouts.request", "unknown unit `seconds`", None)),
    ("validation: route to an unknown service",
        ("service: orders", "service: order"),
        (23, 5, "routes[1].service", "unknown service `order`", Some("did you mean `orders`?"))),
    ("validation: error at a missing key points at its parent",
        ("    address: 0.0.0.0:8443\n    tls:\n      cert: certs/edge.pem\n      key: certs/edge.key\n", "    address: 0.0.0.0:443\n"),
        (2, 5, "listeners[0].tls", "a listener on port 443 needs `tls`", None)),
];

#[test]
fn malformed_configs_report_file_line_column_key_and_hint() {
    let mut failures = Vec::new();
    for (name, (from, to), (line, column, key_path, message, hint)) in CASES {
        assert!(BASE.contains(from), "{name}: BASE has no {from:?}");
        let text = BASE.replacen(from, to, 1);
        let got = match load_and_validate(&text) {
            Ok(_) => {
                failures.push(format!("{name}: loaded without error"));
                continue;
            }
            Err(ConfigError::Invalid {
                file,
                line,
                column,
                key_path,
                message,
                hint,
            }) => {
                assert_eq!(file.to_str(), Some("gatehouse.yaml"), "{name}");
                (line, column, key_path, message, hint)
            }
            Err(other) => panic!("{name}: unexpected {other:?}"),
        };
        let ok = got.0 == *line
            && got.1 == *column
            && got.2 == *key_path
            && got.3.contains(message)
            && got.4.as_deref() == *hint;
        if !ok {
            failures.push(format!(
                "{name}:\n  want {line}:{column} `{key_path}` {message:?} {hint:?}\n  got  {}:{} `{}` {:?} {:?}",
                got.0, got.1, got.2, got.3, got.4
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn base_config_loads_and_validates() -> Result<(), ConfigError> {
    let loaded = load_and_validate(BASE)?;
    let config = &loaded.value;
    assert_eq!(config.timeouts.connect, Duration::from_millis(250));
    assert_eq!(config.limits.max_body, Some(ByteSize::mib(10)));
    assert_eq!(config.services["orders"].protocol, Protocol::H2c);
    assert_eq!(config.routes[1].matcher.path_prefix, "/orders");
    assert_eq!(
        loaded.source.position("routes[1].match.path_prefix"),
        (22, 7)
    );
    assert_eq!(
        loaded.source.position("services.users.endpoints[1]"),
        (26, 32)
    );
    assert_eq!(
        loaded.source.position("services.orders.endpoints[0]"),
        (30, 9)
    );
    assert_eq!(loaded.source.position(""), (1, 1));
    Ok(())
}
