//! `gatehouse-certs init`: layout, idempotence, permissions, and what openssl thinks.

use std::os::unix::fs::PermissionsExt;

use super::{certs, certs_ok, openssl, s, tempdir, uri_sans};

const LAYOUT: [&str; 8] = [
    "ca.pem",
    "ca-key.pem",
    "edge.pem",
    "edge-key.pem",
    "internal.pem",
    "internal-key.pem",
    "orders.pem",
    "orders-key.pem",
];

#[test]
fn init_twice_keeps_everything_byte_for_byte() {
    let tmp = tempdir();
    let dir = tmp.path().join("certs");
    let first = certs_ok(&["init", "--dir", s(&dir), "--service", "orders"]);
    let expected: Vec<String> = LAYOUT
        .iter()
        .map(|f| format!("created {}", dir.join(f).display()))
        .collect();
    assert_eq!(first.lines().collect::<Vec<_>>(), expected);
    let before: Vec<Vec<u8>> = LAYOUT
        .iter()
        .map(|f| std::fs::read(dir.join(f)).expect("read"))
        .collect();

    let second = certs_ok(&["init", "--dir", s(&dir), "--service", "orders"]);
    let expected: Vec<String> = LAYOUT
        .iter()
        .map(|f| format!("kept {}", dir.join(f).display()))
        .collect();
    assert_eq!(second.lines().collect::<Vec<_>>(), expected);
    for (file, old) in LAYOUT.iter().zip(before) {
        assert_eq!(
            std::fs::read(dir.join(file)).expect("read"),
            old,
            "{file} changed"
        );
    }
}

#[test]
fn rerun_adds_only_what_is_missing() {
    let tmp = tempdir();
    let dir = s(tmp.path());
    certs_ok(&["init", "--dir", dir]);
    let out = certs_ok(&["init", "--dir", dir, "--service", "users"]);
    assert!(out.contains("kept ") && out.contains("ca.pem"), "{out}");
    assert!(out.contains(&format!("created {dir}/users.pem")), "{out}");
    assert!(
        out.contains(&format!("created {dir}/users-key.pem")),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("created")).count(),
        2,
        "{out}"
    );
}

#[test]
fn key_files_are_0600_and_dir_0700() {
    let tmp = tempdir();
    let dir = tmp.path().join("new");
    certs_ok(&["init", "--dir", s(&dir), "--service", "orders"]);
    let mode = |f: &str| {
        let meta = std::fs::metadata(dir.join(f)).expect("metadata");
        meta.permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o700);
    for key in [
        "ca-key.pem",
        "edge-key.pem",
        "internal-key.pem",
        "orders-key.pem",
    ] {
        assert_eq!(mode(key), 0o600, "{key}");
    }
}

#[test]
fn openssl_sees_one_spiffe_uri_and_verifies_the_chain() {
    let tmp = tempdir();
    let dir = tmp.path();
    certs_ok(&[
        "init",
        "--dir",
        s(dir),
        "--service",
        "orders",
        "--dns",
        "orders.internal",
    ]);
    let leaf = dir.join("orders.pem");
    let text = openssl(&["x509", "-noout", "-text", "-in", s(&leaf)]);
    assert_eq!(text.code, Some(0), "{text:?}");
    assert!(
        text.stdout
            .contains("URI:spiffe://gatehouse.local/service/orders")
    );
    for san in [
        "DNS:orders",
        "DNS:localhost",
        "DNS:orders.internal",
        "IP Address:127.0.0.1",
    ] {
        assert!(text.stdout.contains(san), "{san} missing:\n{}", text.stdout);
    }
    assert!(
        text.stdout
            .contains("TLS Web Server Authentication, TLS Web Client Authentication")
    );
    assert_eq!(text.stdout.matches("URI:").count(), 1);
    assert_eq!(uri_sans(&leaf), ["spiffe://gatehouse.local/service/orders"]);
    assert_eq!(
        uri_sans(&dir.join("edge.pem")),
        ["spiffe://gatehouse.local/gateway/edge"]
    );

    let ca = dir.join("ca.pem");
    let verify = openssl(&["verify", "-CAfile", s(&ca), s(&leaf)]);
    assert_eq!(verify.code, Some(0), "{verify:?}");
    let ca_text = openssl(&["x509", "-noout", "-text", "-in", s(&ca)]).stdout;
    assert!(ca_text.contains("CA:TRUE"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign, CRL Sign"), "{ca_text}");
}

#[test]
fn other_algorithms_verify_too() {
    for alg in ["ed25519", "rsa-2048"] {
        let tmp = tempdir();
        let dir = tmp.path();
        certs_ok(&["init", "--dir", s(dir), "--gateway", "edge", "--alg", alg]);
        let verify = openssl(&[
            "verify",
            "-CAfile",
            s(&dir.join("ca.pem")),
            s(&dir.join("edge.pem")),
        ]);
        assert_eq!(verify.code, Some(0), "{alg}: {verify:?}");
        assert!(
            !dir.join("internal.pem").exists(),
            "explicit --gateway replaces the defaults"
        );
    }
}

#[test]
fn refusals_exit_1_with_a_message() {
    let tmp = tempdir();
    let dir = s(tmp.path());
    let bad_name = certs(&["init", "--dir", dir, "--service", "../escape"]);
    assert_eq!(bad_name.code, Some(1));
    assert!(
        bad_name.stderr.contains("invalid identity name"),
        "{bad_name:?}"
    );
    let clash = certs(&["init", "--dir", dir, "--gateway", "x", "--service", "x"]);
    assert_eq!(clash.code, Some(1), "{clash:?}");

    certs_ok(&["init", "--dir", dir]);
    let other_td = certs(&["init", "--dir", dir, "--trust-domain", "other.local"]);
    assert_eq!(other_td.code, Some(1));
    assert!(other_td.stderr.contains("gatehouse.local"), "{other_td:?}");

    std::fs::remove_file(tmp.path().join("edge-key.pem")).expect("rm");
    let partial = certs(&["init", "--dir", dir]);
    assert_eq!(partial.code, Some(1));
    assert!(partial.stderr.contains("edge-key.pem"), "{partial:?}");

    let usage = certs(&["init"]);
    assert_eq!(usage.code, Some(2), "clap usage errors exit 2");
}
