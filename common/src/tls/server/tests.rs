//! SNI selection and settings validation of listener configs.

use gatehouse_certs::test_util::TestPki;

use super::*;
use crate::tls::files::load_certified_key;

fn serial_of(key: &CertifiedKey) -> String {
    let der = key.end_entity_cert().expect("leaf");
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).expect("parse");
    cert.raw_serial_as_string().replace(':', "")
}

#[test]
fn sni_picks_by_dns_san_and_defaults_to_the_first() {
    let pki = TestPki::new("gatehouse.local");
    let dir = tempfile::tempdir().expect("tempdir");
    let a = pki.server(&["api.example.com", "localhost"]);
    let b = pki.server(&["*.admin.example.com"]);
    let pa = a.write_to(dir.path(), "a");
    let pb = b.write_to(dir.path(), "b");
    let r = CertResolver::from_files(&[pa.clone(), pb.clone()], None).expect("resolver");
    let pick = |sni| serial_of(&r.pick(sni).expect("a certificate"));
    let a_serial = serial_of(&load_certified_key(&pa.0, &pa.1).expect("a"));
    let b_serial = serial_of(&load_certified_key(&pb.0, &pb.1).expect("b"));
    assert_eq!(pick(Some("api.example.com")), a_serial);
    assert_eq!(pick(Some("API.Example.com")), a_serial);
    assert_eq!(pick(Some("x.admin.example.com")), b_serial);
    assert_eq!(
        pick(Some("admin.example.com")),
        a_serial,
        "wildcard covers one label only"
    );
    assert_eq!(pick(Some("a.b.admin.example.com")), a_serial);
    assert_eq!(pick(Some("unknown.test")), a_serial);
    assert_eq!(pick(None), a_serial);
}

fn settings(yaml: &str) -> ServerTlsSettings {
    serde_yaml::from_str(yaml).expect("settings")
}

#[test]
fn listener_settings_are_checked() {
    let pki = TestPki::new("gatehouse.local");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = pki.server(&["localhost"]).write_to(dir.path(), "s");
    let (cert, key) = (cert.display(), key.display());
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).expect("write CA");
    let ca = ca.display();
    let key_of = |yaml: &str| {
        listener_config(&settings(yaml), crate::tls::ALPN_H2_H1)
            .err()
            .map(|e| e.key().unwrap_or("<file>").to_owned())
    };
    assert_eq!(key_of(&format!("{{cert: {cert}, key: {key}}}")), None);
    assert_eq!(
        key_of(&format!(
            "{{certificates: [{{cert: {cert}, key: {key}}}], client_ca: {ca}}}"
        )),
        None
    );
    assert_eq!(key_of(&format!("{{cert: {cert}}}")).as_deref(), Some("key"));
    assert_eq!(key_of("{}").as_deref(), Some("cert"));
    assert_eq!(
        key_of(&format!(
            "{{cert: {cert}, key: {key}, allow: [spiffe://gatehouse.local/x]}}"
        ))
        .as_deref(),
        Some("allow")
    );
    assert_eq!(
        key_of(&format!(
            "{{cert: {cert}, key: {key}, client_ca: {ca}, allow: [spiffe://other/x]}}"
        ))
        .as_deref(),
        Some("allow[0]")
    );
    assert_eq!(
        key_of(&format!("{{cert: {cert}, key: {ca}}}")).as_deref(),
        Some("<file>"),
        "a certificate is not a key"
    );
    // A key that does not belong to the certificate is refused at load, not at handshake time.
    let (_, other_key) = pki.server(&["localhost"]).write_to(dir.path(), "t");
    let err = listener_config(
        &settings(&format!("{{cert: {cert}, key: {}}}", other_key.display())),
        crate::tls::ALPN_H2_H1,
    )
    .expect_err("mismatched pair");
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
}
