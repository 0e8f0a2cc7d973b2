//! `gatehouse-certs issue` and `inspect`.

use super::{certs, certs_ok, openssl, s, tempdir, uri_sans};

#[test]
fn issue_adds_an_identity_signed_by_the_existing_ca() {
    let tmp = tempdir();
    let dir = tmp.path();
    certs_ok(&["init", "--dir", s(dir)]);
    let ca_before = std::fs::read(dir.join("ca.pem")).expect("read");
    let out = certs_ok(&[
        "issue",
        "--dir",
        s(dir),
        "--service",
        "billing",
        "--ip",
        "10.1.2.3",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("created {}", dir.join("billing.pem").display()),
            format!("created {}", dir.join("billing-key.pem").display()),
        ]
    );
    assert_eq!(std::fs::read(dir.join("ca.pem")).expect("read"), ca_before);
    let leaf = dir.join("billing.pem");
    assert_eq!(
        uri_sans(&leaf),
        ["spiffe://gatehouse.local/service/billing"]
    );
    let verify = openssl(&["verify", "-CAfile", s(&dir.join("ca.pem")), s(&leaf)]);
    assert_eq!(verify.code, Some(0), "{verify:?}");
    let text = openssl(&["x509", "-noout", "-text", "-in", s(&leaf)]).stdout;
    assert!(text.contains("IP Address:10.1.2.3"), "{text}");

    let gw = certs_ok(&["issue", "--dir", s(dir), "--gateway", "admin"]);
    assert!(gw.contains("admin.pem"), "{gw}");
    assert_eq!(
        uri_sans(&dir.join("admin.pem")),
        ["spiffe://gatehouse.local/gateway/admin"]
    );
    let again = certs_ok(&["issue", "--dir", s(dir), "--gateway", "admin"]);
    assert!(again.lines().all(|l| l.starts_with("kept ")), "{again}");
}

#[test]
fn issue_without_a_ca_fails() {
    let tmp = tempdir();
    let out = certs(&["issue", "--dir", s(tmp.path()), "--service", "orders"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no CA"), "{out:?}");
    assert!(!tmp.path().join("orders.pem").exists());
    let neither = certs(&["issue", "--dir", s(tmp.path())]);
    assert_eq!(neither.code, Some(2), "{neither:?}");
}

#[test]
fn inspect_shows_the_spiffe_id() {
    let tmp = tempdir();
    let dir = tmp.path();
    certs_ok(&["init", "--dir", s(dir), "--service", "orders"]);
    let out = certs_ok(&["inspect", s(&dir.join("orders.pem"))]);
    assert!(
        out.contains("spiffe id:  spiffe://gatehouse.local/service/orders"),
        "{out}"
    );
    assert!(out.contains("CN=orders"), "{out}");
    assert!(out.contains("Gatehouse Dev CA"), "{out}");
    for field in [
        "not before:",
        "not after:",
        "serial:",
        "dns sans:   orders, localhost",
    ] {
        assert!(out.contains(field), "{field} missing:\n{out}");
    }
    let missing = certs(&["inspect", s(&dir.join("nope.pem"))]);
    assert_eq!(missing.code, Some(1));
    let key = certs(&["inspect", s(&dir.join("orders-key.pem"))]);
    assert_eq!(key.code, Some(1), "a key is not a certificate: {key:?}");
}
