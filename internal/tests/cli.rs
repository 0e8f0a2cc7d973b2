//! Runs the built `gatehouse-internal` binary: `validate` on good and malformed configs (exit
//! code, `FILE:LINE:COL`, key path, message, hint), `--version`, and that a bad config stops
//! the process before it binds a port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gatehouse_certs::test_util::TestPki;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse-internal");
const EXIT_CONFIG: i32 = 64;

/// Variables the cases set; every run starts with them unset, whatever the test's environment.
const TEST_VARS: [&str; 3] = [
    "GATEHOUSE_TEST_ADDR",
    "GATEHOUSE_TEST_NAME",
    "GATEHOUSE_TEST_UNSET",
];

/// A scratch directory (the processes' working directory) holding the files configs name:
/// `server.pem` / `server-key.pem` (a good chain and key), `ca.pem` (their CA) and
/// `not-pem.pem` (text without a PEM block).
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = TestPki::new("gatehouse.local");
    pki.server(&["localhost", "127.0.0.1"])
        .write_to(dir.path(), "server");
    std::fs::write(dir.path().join("ca.pem"), pki.ca_pem()).expect("write ca.pem");
    std::fs::write(dir.path().join("not-pem.pem"), "not a certificate\n").expect("write");
    dir
}

/// Writes `lines` as `file` in `dir`.
fn write(dir: &Path, file: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write config");
    path
}

/// `gatehouse-internal ARGS` in `dir`, with [`TEST_VARS`] unset, then `env` set.
fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args);
    for var in TEST_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

fn validate(dir: &Path, file: &str, env: &[(&str, &str)]) -> Output {
    command(dir, &["validate", "--config", file], env)
        .output()
        .expect("run gatehouse-internal")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A listener on one line, for the cases that are about something else.
macro_rules! listener {
    () => {
        "listeners: [{ name: public, address: 127.0.0.1:0 }]"
    };
}

/// A config `validate` accepts, and the counts it reports.
struct Good {
    name: &'static str,
    yaml: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// `(N listeners, N routes, N services)`.
    counts: &'static str,
}

const GOOD: &[Good] = &[
    Good {
        name: "one listener, nothing else",
        yaml: &[listener!()],
        env: &[],
        counts: "(1 listeners, 0 routes, 0 services)",
    },
    Good {
        name: "every unit form",
        yaml: &[
            listener!(),
            "limits:",
            "  max_request_header_bytes: 65536",
            "  max_request_body_bytes: 10MiB",
            "  header_read_timeout: 1m30s",
            "  idle_timeout: 250ms",
            "drain_timeout: 0s",
            "routes:",
            "  - name: users",
            "    match: { path_prefix: /users, host: api.example.com }",
            "    service: users",
            "services:",
            "  users:",
            "    endpoints: [127.0.0.1:8081, '[::1]:8081']",
            "    protocol: h2c",
            "    timeouts: { connect: 500ms, request: 5s }",
        ],
        env: &[],
        counts: "(1 listeners, 1 routes, 1 services)",
    },
    Good {
        name: "${VAR} set",
        yaml: &["listeners: [{ name: public, address: \"${GATEHOUSE_TEST_ADDR}\" }]"],
        env: &[("GATEHOUSE_TEST_ADDR", "127.0.0.1:0")],
        counts: "(1 listeners, 0 routes, 0 services)",
    },
    Good {
        name: "${VAR:-default} with VAR unset",
        yaml: &["listeners: [{ name: public, address: \"${GATEHOUSE_TEST_ADDR:-127.0.0.1:0}\" }]"],
        env: &[],
        counts: "(1 listeners, 0 routes, 0 services)",
    },
    Good {
        name: "${VAR:-default} with VAR empty",
        yaml: &["listeners: [{ name: public, address: \"${GATEHOUSE_TEST_ADDR:-127.0.0.1:0}\" }]"],
        env: &[("GATEHOUSE_TEST_ADDR", "")],
        counts: "(1 listeners, 0 routes, 0 services)",
    },
    Good {
        name: "$${ escapes a literal ${",
        yaml: &["# $${GATEHOUSE_TEST_UNSET} is not substituted", listener!()],
        env: &[],
        counts: "(1 listeners, 0 routes, 0 services)",
    },
    Good {
        name: "TLS listener with mTLS, https service with its own CA and identity",
        yaml: &[
            "listeners:",
            "  - name: public",
            "    address: 127.0.0.1:0",
            "    tls: { cert: server.pem, key: server-key.pem, client_ca: ca.pem }",
            "services:",
            "  users:",
            "    endpoints: [127.0.0.1:8443]",
            "    protocol: https",
            "    tls: { ca: ca.pem, cert: server.pem, key: server-key.pem }",
        ],
        env: &[],
        counts: "(1 listeners, 0 routes, 1 services)",
    },
];

#[test]
fn validate_accepts_good_configs() {
    let dir = scratch();
    let mut failures = Vec::new();
    for (i, case) in GOOD.iter().enumerate() {
        let file = format!("good{i}.yaml");
        write(dir.path(), &file, case.yaml);
        let out = validate(dir.path(), &file, case.env);
        let want = format!("gatehouse-internal: {file} is valid {}\n", case.counts);
        if out.status.code() != Some(0) || text(&out.stdout) != want {
            failures.push(format!(
                "{}: {:?}\n  stdout: {}  stderr: {}",
                case.name,
                out.status,
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn example_config_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.yaml");
    let example = example.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = validate(dir.path(), example, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let want = format!("gatehouse-internal: {example} is valid (");
    assert!(
        text(&out.stdout).starts_with(&want),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn docs_show_the_example_configs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = std::fs::read_to_string(root.join("docs/configuration.md")).expect("read docs");
    for binary in ["edge", "internal", "sidecar"] {
        let example = root.join(binary).join("config/example.yaml");
        let example = std::fs::read_to_string(example).expect("read example");
        assert!(
            docs.contains(&format!("```yaml\n{example}```")),
            "docs/configuration.md does not show {binary}/config/example.yaml as it is"
        );
    }
}

/// A config `validate` refuses, and the one line it must print.
struct Bad {
    name: &'static str,
    yaml: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// `(LINE, COL)`, 1-based, in the file as written (before `${VAR}` substitution).
    at: (usize, usize),
    /// The key path; `""` for document-level errors (YAML syntax, `${VAR}`).
    key: &'static str,
    /// A substring of the message.
    message: &'static str,
    /// The text in parentheses that ends the line, if any.
    hint: Option<&'static str>,
}

/// Defaults for the fields most cases leave alone.
const BAD: Bad = Bad {
    name: "",
    yaml: &[],
    env: &[],
    at: (0, 0),
    key: "",
    message: "",
    hint: None,
};

const MALFORMED: &[Bad] = &[
    Bad {
        name: "unknown top-level key",
        yaml: &["listners:", "  - name: public", "    address: 127.0.0.1:0"],
        at: (1, 1),
        key: "listners",
        message: "unknown field `listners`, expected one of `listeners`, `admin`",
        hint: Some("did you mean `listeners`?"),
        ..BAD
    },
    Bad {
        name: "missing listeners",
        yaml: &["drain_timeout: 5s"],
        at: (1, 1),
        message: "missing field `listeners`",
        ..BAD
    },
    Bad {
        name: "empty listeners",
        yaml: &["listeners: []"],
        at: (1, 1),
        key: "listeners",
        message: "at least one listener is required",
        ..BAD
    },
    Bad {
        name: "unknown key in a listener",
        yaml: &["listeners:", "  - name: public", "    adress: 127.0.0.1:0"],
        at: (3, 5),
        key: "listeners[0].adress",
        message: "unknown field `adress`, expected one of `name`, `address`, `tls`",
        hint: Some("did you mean `address`?"),
        ..BAD
    },
    Bad {
        name: "host name where a socket address is expected",
        yaml: &[
            "listeners:",
            "  - name: public",
            "    address: localhost:8080",
        ],
        at: (3, 14),
        key: "listeners[0].address",
        message: "invalid socket address syntax",
        ..BAD
    },
    Bad {
        name: "duplicate listener name",
        yaml: &[
            "listeners:",
            "  - { name: public, address: 127.0.0.1:0 }",
            "  - { name: public, address: 127.0.0.1:0 }",
        ],
        at: (3, 7),
        key: "listeners[1].name",
        message: "duplicate listener name `public`",
        ..BAD
    },
    Bad {
        name: "duplicate listener address",
        yaml: &[
            "listeners:",
            "  - { name: a, address: 127.0.0.1:8080 }",
            "  - { name: b, address: 127.0.0.1:8080 }",
        ],
        at: (3, 16),
        key: "listeners[1].address",
        message: "address 127.0.0.1:8080 is used by another listener",
        ..BAD
    },
    Bad {
        name: "duration with a spelled-out unit",
        yaml: &[listener!(), "limits:", "  header_read_timeout: 10 seconds"],
        at: (3, 24),
        key: "limits.header_read_timeout",
        message: "invalid duration `10 seconds`: unknown unit `seconds`, expected d, h, m, s, ms",
        ..BAD
    },
    Bad {
        name: "duration as a bare number",
        yaml: &[listener!(), "limits:", "  idle_timeout: 30"],
        at: (3, 17),
        key: "limits.idle_timeout",
        message: "invalid duration `30`: durations need a unit: 250ms, 5s, 1m",
        ..BAD
    },
    Bad {
        name: "fractional duration",
        yaml: &[listener!(), "drain_timeout: 1.5s"],
        at: (2, 16),
        key: "drain_timeout",
        message: "fractions are not supported: use a smaller unit (1500ms, not 1.5s)",
        ..BAD
    },
    Bad {
        name: "byte size with a wrong-case unit",
        yaml: &[listener!(), "limits:", "  max_request_body_bytes: 10Mb"],
        at: (3, 27),
        key: "limits.max_request_body_bytes",
        message: "invalid byte size `10Mb`: unknown unit `Mb` (did you mean `MB`?)",
        ..BAD
    },
    Bad {
        name: "header limit below 1KiB (a bare number is bytes)",
        yaml: &[listener!(), "limits:", "  max_request_header_bytes: 512"],
        at: (3, 3),
        key: "limits.max_request_header_bytes",
        message: "must be at least 1KiB",
        ..BAD
    },
    Bad {
        name: "unknown protocol",
        yaml: &[
            listener!(),
            "services:",
            "  users:",
            "    endpoints: [127.0.0.1:8081]",
            "    protocol: http3",
        ],
        at: (5, 15),
        key: "services.users.protocol",
        message: "unknown variant `http3`, expected one of `http1`, `h2c`, `https`",
        hint: Some("did you mean `http1`?"),
        ..BAD
    },
    Bad {
        name: "service with no endpoints",
        yaml: &[listener!(), "services:", "  users:", "    endpoints: []"],
        at: (4, 5),
        key: "services.users.endpoints",
        message: "at least one endpoint is required",
        ..BAD
    },
    Bad {
        name: "unknown key in a service's timeouts",
        yaml: &[
            listener!(),
            "services:",
            "  users:",
            "    endpoints: [127.0.0.1:8081]",
            "    timeouts: { conect: 1s }",
        ],
        at: (5, 17),
        key: "services.users.timeouts.conect",
        message: "unknown field `conect`, expected `connect` or `request`",
        hint: Some("did you mean `connect`?"),
        ..BAD
    },
    Bad {
        name: "route to an unknown service",
        yaml: &[
            listener!(),
            "routes:",
            "  - name: users",
            "    service: user",
            "services:",
            "  users: { endpoints: [127.0.0.1:8081] }",
        ],
        at: (4, 5),
        key: "routes[0].service",
        message: "unknown service `user`",
        hint: Some("did you mean `users`?"),
        ..BAD
    },
    Bad {
        name: "route handler this binary does not offer",
        yaml: &[
            listener!(),
            "routes:",
            "  - name: users",
            "    handler:",
            "      envelop: { service: users, path: /users, key: users }",
            "services:",
            "  users: { endpoints: [127.0.0.1:8081] }",
        ],
        at: (5, 7),
        key: "routes[0].handler.envelop",
        message: "unknown handler `envelop`: this binary offers `envelope`",
        hint: Some("did you mean `envelope`?"),
        ..BAD
    },
    Bad {
        name: "route handler argument misspelt",
        yaml: &[
            listener!(),
            "routes:",
            "  - name: users",
            "    handler:",
            "      envelope:",
            "        servce: users",
            "        path: /users",
            "        key: users",
            "services:",
            "  users: { endpoints: [127.0.0.1:8081] }",
        ],
        at: (6, 9),
        key: "routes[0].handler.envelope.servce",
        message: "unknown field `servce`, expected one of `service`, `path`, `key`",
        hint: Some("did you mean `service`?"),
        ..BAD
    },
    Bad {
        name: "route handler names an unknown service",
        yaml: &[
            listener!(),
            "routes:",
            "  - name: users",
            "    handler: { envelope: { service: user, path: /users, key: users } }",
            "services:",
            "  users: { endpoints: [127.0.0.1:8081] }",
        ],
        at: (4, 28),
        key: "routes[0].handler.envelope.service",
        message: "unknown service `user`",
        hint: Some("did you mean `users`?"),
        ..BAD
    },
    Bad {
        name: "internal section key misspelt",
        yaml: &[listener!(), "internal:", "  max_handler_body_byte: 1KiB"],
        at: (3, 3),
        key: "internal.max_handler_body_byte",
        message: "unknown field `max_handler_body_byte`, expected one of `max_handler_body_bytes`",
        hint: Some("did you mean `max_handler_body_bytes`?"),
        ..BAD
    },
    Bad {
        name: "internal handler body limit of zero",
        yaml: &[listener!(), "internal:", "  max_handler_body_bytes: 0"],
        at: (3, 3),
        key: "internal.max_handler_body_bytes",
        message: "must be at least 1 byte",
        ..BAD
    },
    Bad {
        name: "another binary's section",
        yaml: &[listener!(), "edge:", "  policies: []"],
        at: (2, 1),
        key: "edge",
        message: "the `edge` section belongs to another Gatehouse binary (gatehouse-edge)",
        ..BAD
    },
    Bad {
        name: "duplicate route name",
        yaml: &[
            listener!(),
            "routes:",
            "  - { name: users, service: users }",
            "  - { name: users, service: users }",
            "services:",
            "  users: { endpoints: [127.0.0.1:8081] }",
        ],
        at: (4, 7),
        key: "routes[1].name",
        message: "duplicate route name `users`",
        ..BAD
    },
    Bad {
        name: "path prefix without a leading slash",
        yaml: &[
            listener!(),
            "routes:",
            "  - name: users",
            "    match: { path_prefix: users }",
            "    service: users",
            "services:",
            "  users: { endpoints: [127.0.0.1:8081] }",
        ],
        at: (4, 14),
        key: "routes[0].match.path_prefix",
        message: "must start with `/`",
        ..BAD
    },
    Bad {
        name: "listener certificate file missing",
        yaml: &[
            "listeners:",
            "  - name: public",
            "    address: 127.0.0.1:0",
            "    tls: { cert: missing.pem, key: server-key.pem }",
        ],
        at: (4, 5),
        key: "listeners[0].tls",
        message: "cannot read certificates from missing.pem: I/O error: No such file",
        ..BAD
    },
    Bad {
        name: "listener certificate file not PEM",
        yaml: &[
            "listeners:",
            "  - name: public",
            "    address: 127.0.0.1:0",
            "    tls: { cert: not-pem.pem, key: server-key.pem }",
        ],
        at: (4, 5),
        key: "listeners[0].tls",
        message: "no certificate found in not-pem.pem",
        ..BAD
    },
    Bad {
        name: "listener key file missing",
        yaml: &[
            "listeners:",
            "  - name: public",
            "    address: 127.0.0.1:0",
            "    tls: { cert: server.pem, key: missing-key.pem }",
        ],
        at: (4, 5),
        key: "listeners[0].tls",
        message: "cannot read a private key from missing-key.pem",
        ..BAD
    },
    Bad {
        name: "tls on a service with protocol http1",
        yaml: &[
            listener!(),
            "services:",
            "  users:",
            "    endpoints: [127.0.0.1:8081]",
            "    protocol: http1",
            "    tls: { ca: ca.pem }",
        ],
        at: (6, 5),
        key: "services.users.tls",
        message: "`tls` needs `protocol: https`",
        ..BAD
    },
    Bad {
        name: "YAML syntax error (over-indented key)",
        yaml: &[
            "listeners:",
            "  - name: public",
            "     address: 127.0.0.1:0",
        ],
        at: (3, 13),
        key: "listeners[0]",
        message: "mapping values are not allowed in this context",
        ..BAD
    },
    Bad {
        name: "tab indentation",
        yaml: &["listeners:", "\t- name: public"],
        at: (2, 1),
        key: "listeners",
        message: "found character that cannot start any token",
        hint: Some("YAML indentation must use spaces, not tabs"),
        ..BAD
    },
    Bad {
        name: "duplicate key",
        yaml: &[listener!(), "drain_timeout: 5s", "drain_timeout: 6s"],
        at: (3, 1),
        key: "drain_timeout",
        message: "duplicate key (first defined on line 2)",
        ..BAD
    },
    Bad {
        name: "unset ${VAR}",
        yaml: &[
            "listeners:",
            "  - name: public",
            "    address: ${GATEHOUSE_TEST_UNSET}",
        ],
        at: (3, 14),
        message: "environment variable `GATEHOUSE_TEST_UNSET` is not set",
        hint: Some("set it, or give a default: ${GATEHOUSE_TEST_UNSET:-value}"),
        ..BAD
    },
    Bad {
        name: "column after a substituted value is the file's column",
        yaml: &["listeners: [{ name: \"${GATEHOUSE_TEST_NAME}\", adress: 127.0.0.1:0 }]"],
        env: &[(
            "GATEHOUSE_TEST_NAME",
            "a-listener-name-longer-than-the-variable",
        )],
        at: (1, 47),
        key: "listeners[0].adress",
        message: "unknown field `adress`",
        hint: Some("did you mean `address`?"),
    },
];

#[test]
fn validate_reports_malformed_configs_with_their_position() {
    let dir = scratch();
    let mut failures = Vec::new();
    for (i, case) in MALFORMED.iter().enumerate() {
        let file = format!("bad{i}.yaml");
        write(dir.path(), &file, case.yaml);
        let out = validate(dir.path(), &file, case.env);
        let stderr = text(&out.stderr);
        let (line, col) = case.at;
        let at = match case.key {
            "" => String::new(),
            key => format!("at `{key}`: "),
        };
        let prefix = format!("gatehouse-internal: {file}:{line}:{col}: {at}");
        let rest = stderr.strip_prefix(&prefix).unwrap_or_default();
        let hint_ok = case
            .hint
            .is_none_or(|hint| rest.ends_with(&format!(" ({hint})\n")));
        let ok = out.status.code() == Some(EXIT_CONFIG)
            && out.stdout.is_empty()
            && stderr.lines().count() == 1
            && stderr.starts_with(&prefix)
            && rest.contains(case.message)
            && hint_ok;
        if !ok {
            failures.push(format!(
                "{}: {:?}\n  want: {prefix}…{}…{}\n  got:  {stderr}",
                case.name,
                out.status,
                case.message,
                case.hint.map(|h| format!(" ({h})")).unwrap_or_default(),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn missing_config_file_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [
        &["validate", "--config", "absent.yaml"][..],
        &["--config", "absent.yaml"],
    ] {
        let out = command(dir.path(), args, &[]).output().expect("run");
        assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("gatehouse-internal: cannot read config file absent.yaml: "),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn version_and_missing_config_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = command(dir.path(), &["--version"], &[])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let want = format!("gatehouse-internal {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(text(&out.stdout), want);

    for args in [&[][..], &["validate"]] {
        let out = command(dir.path(), args, &[]).output().expect("run");
        assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{args:?}");
        assert_eq!(
            text(&out.stderr),
            "gatehouse-internal: --config FILE is required\n"
        );
    }
}

/// Runs `cmd` to its exit; kills it and fails if it is still running after 20s (it bound its
/// ports and is serving).
fn run_to_exit(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gatehouse-internal");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("still running after 20s; stderr: {}", text(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("wait")
}

#[test]
fn bad_config_exits_before_binding() {
    // A port we hold: a process that tried to bind it would fail with a bind error.
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("local addr");
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = format!("  - {{ name: public, address: \"{addr}\" }}");
    let config = |tail: &[&str]| {
        let mut lines = vec!["admin: { address: 127.0.0.1:0 }", "listeners:", &listener];
        lines.extend_from_slice(tail);
        write(dir.path(), "serve.yaml", &lines);
        let args = ["--config", "serve.yaml", "--log-format", "pretty"];
        run_to_exit(command(dir.path(), &args, &[]))
    };

    // Control: a good config does try to bind, and fails on the held port.
    let out = config(&[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let bind_error = format!("cannot listen on {addr} (listener `public`)");
    assert!(stderr.contains(&bind_error), "{stderr}");

    // Deserialization error, then validation error: both stop the process before it binds.
    let cases: [(&[&str], &str); 2] = [
        (
            &["drain_timeout: 30"],
            "serve.yaml:4:16: at `drain_timeout`: invalid duration `30`",
        ),
        (
            &[
                "routes: [{ name: r, service: nope }]",
                "services: { users: { endpoints: [127.0.0.1:8081] } }",
            ],
            "serve.yaml:4:21: at `routes[0].service`: unknown service `nope`",
        ),
    ];
    for (tail, want) in cases {
        let out = config(tail);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{stderr}");
        assert!(
            stderr.starts_with(&format!("gatehouse-internal: {want}")),
            "{stderr}"
        );
        assert!(!stderr.contains("cannot listen"), "{stderr}");
    }
    drop(held);
}
