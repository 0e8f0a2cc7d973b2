//! The `test-util` fixtures have the properties they claim, checked with x509-parser and openssl.

use std::net::IpAddr;
use std::time::SystemTime;

use gatehouse_certs::test_util::{LeafOptions, TestPki, jwt_keys};
use gatehouse_certs::{JwtAlg, Kind, TokenRequest};

fn leaf_der(pem: &str) -> Vec<u8> {
    gatehouse_certs::pem::certs_from_pem(pem).expect("pem")[0].to_vec()
}

#[test]
fn workload_is_a_valid_svid_with_one_uri() {
    let pki = TestPki::new("gatehouse.local");
    let orders = pki.workload(Kind::Service, "orders");
    let der = leaf_der(&orders.cert_pem);
    let (_, x509) = x509_parser::parse_x509_certificate(&der).expect("x509");
    let sans = x509.subject_alternative_name().expect("ext").expect("sans");
    let names: Vec<String> = sans
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["URI(spiffe://gatehouse.local/service/orders)"]);
    assert!(x509.validity().is_valid());
    let eku = x509.extended_key_usage().expect("ext").expect("eku").value;
    assert!(eku.server_auth && eku.client_auth);
    assert_eq!(
        orders.spiffe_id.as_deref(),
        Some("spiffe://gatehouse.local/service/orders")
    );
    assert_eq!(orders.info().serial, orders.serial_hex);
    assert_eq!(orders.cert_der_chain().len(), 2, "leaf then CA");
    assert_eq!(orders.cert_der_chain()[1], pki.ca_der());
    assert!(matches!(
        orders.key_der(),
        rustls_pki_types::PrivateKeyDer::Pkcs8(_)
    ));
    assert!(
        !format!("{orders:?}").contains("PRIVATE KEY"),
        "Debug redacts the key"
    );
}

#[test]
fn bent_leaves_have_the_claimed_defect() {
    let pki = TestPki::new("gatehouse.local");
    let now = SystemTime::now();

    let expired = pki
        .workload_with(Kind::Service, "orders", LeafOptions::new().expired())
        .info();
    assert!(expired.not_after < now && !expired.is_valid_at(now));

    let early = pki
        .workload_with(Kind::Gateway, "edge", LeafOptions::new().not_yet_valid())
        .info();
    assert!(early.not_before > now && !early.is_valid_at(now));

    let extra = "spiffe://gatehouse.local/service/admin";
    let two = pki.workload_with(
        Kind::Service,
        "orders",
        LeafOptions::new().second_uri(extra),
    );
    assert_eq!(two.spiffe_id, None);
    let der = leaf_der(&two.cert_pem);
    let (_, x509) = x509_parser::parse_x509_certificate(&der).expect("x509");
    let sans = x509.subject_alternative_name().expect("ext").expect("sans");
    let uris = sans
        .value
        .general_names
        .iter()
        .filter(|n| matches!(n, x509_parser::extensions::GeneralName::URI(_)));
    assert_eq!(uris.count(), 2);

    let foreign = pki.workload_with(
        Kind::Service,
        "orders",
        LeafOptions::new().trust_domain("evil.local"),
    );
    assert_eq!(
        foreign.info().spiffe_id.as_deref(),
        Some("spiffe://evil.local/service/orders")
    );
    let ca_subject = gatehouse_certs::inspect(pki.ca_pem())
        .expect("inspect CA")
        .subject;
    assert_eq!(
        foreign.info().issuer,
        ca_subject,
        "signed by this PKI's CA all the same"
    );
}

#[test]
fn server_turns_ip_strings_into_ip_sans() {
    let pki = TestPki::new("gatehouse.local");
    let info = pki.server(&["localhost", "127.0.0.1", "::1"]).info();
    assert_eq!(info.sans.dns, ["localhost"]);
    let ips: Vec<IpAddr> = ["127.0.0.1", "::1"]
        .iter()
        .filter_map(|i| i.parse().ok())
        .collect();
    assert_eq!(info.sans.ips, ips);
    assert!(info.sans.uris.is_empty() && info.spiffe_id.is_none());
    assert_eq!(info.ext_key_usage, ["serverAuth"]);
}

#[test]
fn other_ca_is_unrelated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new("gatehouse.local");
    let other = TestPki::other();
    assert_ne!(pki.ca_pem(), other.ca_pem());
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).expect("write");
    let own = pki
        .workload(Kind::Gateway, "edge")
        .write_to(tmp.path(), "own")
        .0;
    let foreign = other
        .workload(Kind::Gateway, "edge")
        .write_to(tmp.path(), "foreign")
        .0;
    let verify = |leaf: &std::path::Path| {
        std::process::Command::new("/usr/bin/openssl")
            .args(["verify", "-CAfile"])
            .args([&ca, leaf])
            .output()
            .expect("openssl")
            .status
            .success()
    };
    assert!(verify(&own));
    assert!(!verify(&foreign));
}

#[test]
fn write_dir_matches_the_init_layout_and_loads_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("certs");
    let pki = TestPki::new("gatehouse.local");
    pki.write_dir(&dir);
    for f in [
        "ca.pem",
        "ca-key.pem",
        "edge.pem",
        "edge-key.pem",
        "internal.pem",
        "internal-key.pem",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let ca = gatehouse_certs::layout::load_ca(&dir).expect("load CA back");
    assert_eq!(ca.cert_pem(), pki.ca_pem());
    assert_eq!(ca.trust_domain(), "gatehouse.local");
    let (cert, _) = pki.write_identity(&dir, Kind::Service, "orders");
    let info =
        gatehouse_certs::inspect(&std::fs::read_to_string(cert).expect("read")).expect("inspect");
    assert_eq!(
        info.spiffe_id.as_deref(),
        Some("spiffe://gatehouse.local/service/orders")
    );
}

#[test]
fn jwt_keys_sign_verifiable_tokens() {
    let keys = jwt_keys(JwtAlg::Es256);
    let token = keys
        .issue_token(&TokenRequest::new("alice").scope("users:read"))
        .expect("sign");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["gatehouse"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &keys.decoding_key().expect("key"),
        &validation,
    )
    .expect("verify");
    assert_eq!(data.claims["scope"], "users:read");
    assert!(!format!("{keys:?}").contains("PRIVATE"));

    let past = SystemTime::now() - std::time::Duration::from_secs(3600);
    let stale = keys
        .issue_token(&TokenRequest::new("alice").issued_at(past))
        .expect("sign");
    assert!(
        jsonwebtoken::decode::<serde_json::Value>(
            &stale,
            &keys.decoding_key().expect("key"),
            &validation
        )
        .is_err()
    );
}
