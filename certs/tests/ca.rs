//! The library's CA: round trip through PEM, refusals, validity and key algorithms.

use std::time::{Duration, SystemTime};

use gatehouse_certs::{Ca, CaOptions, Error, IssueOptions, KeyAlg, Kind, Validity};

#[test]
fn ca_round_trips_through_pem_and_keeps_issuing() {
    for alg in [KeyAlg::EcdsaP256, KeyAlg::Ed25519, KeyAlg::Rsa2048] {
        let opts = CaOptions {
            key_alg: alg,
            ..CaOptions::default()
        };
        let ca = Ca::generate("example.org", &opts).expect("generate");
        let loaded = Ca::from_pem(ca.cert_pem(), &ca.key_pem()).expect("load");
        assert_eq!(loaded.trust_domain(), "example.org");
        assert_eq!(loaded.key_alg(), Some(alg));
        let leaf = loaded
            .issue_workload(Kind::Service, "orders", &IssueOptions::new().key_alg(alg))
            .expect("issue");
        let info = gatehouse_certs::inspect(&leaf.chain_pem).expect("inspect");
        assert_eq!(
            info.spiffe_id.as_deref(),
            Some("spiffe://example.org/service/orders")
        );
        assert_eq!(
            info.issuer,
            gatehouse_certs::inspect(ca.cert_pem()).expect("ca").subject
        );
        assert_eq!(info.serial, leaf.serial_hex);
        assert!(
            info.sans.dns.is_empty() && info.sans.ips.is_empty(),
            "no SANs unless asked"
        );
        assert_eq!(leaf.cert_der_chain().expect("chain").len(), 2);
        assert!(
            !format!("{leaf:?} {ca:?}").contains("PRIVATE KEY"),
            "Debug redacts keys"
        );
    }
}

#[test]
fn serials_are_random_and_validity_is_honoured() {
    let ca = Ca::generate("gatehouse.local", &CaOptions::default()).expect("generate");
    let a = ca
        .issue_workload(Kind::Gateway, "edge", &IssueOptions::new())
        .expect("a");
    let b = ca
        .issue_workload(Kind::Gateway, "edge", &IssueOptions::new())
        .expect("b");
    assert_ne!(a.serial_hex, b.serial_hex);
    assert_eq!(a.serial_hex.len(), 32);

    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let end = start + Duration::from_secs(3600);
    let opts = IssueOptions::new().validity(Validity::Between {
        not_before: start,
        not_after: end,
    });
    let info = gatehouse_certs::inspect(
        &ca.issue_server(&["api.local"], &[], &opts)
            .expect("issue")
            .cert_pem,
    )
    .expect("inspect");
    assert_eq!((info.not_before, info.not_after), (start, end));
    assert_eq!(info.subject, "CN=api.local");
}

#[test]
fn refusals() {
    let ca = Ca::generate("gatehouse.local", &CaOptions::default()).expect("generate");
    let other = Ca::generate("gatehouse.local", &CaOptions::default()).expect("generate");
    assert!(matches!(
        Ca::from_pem(ca.cert_pem(), &other.key_pem()),
        Err(Error::KeyMismatch)
    ));
    assert!(Ca::generate("Not A Domain", &CaOptions::default()).is_err());
    assert!(
        ca.issue_workload(Kind::Service, "a/b", &IssueOptions::new())
            .is_err()
    );
    let none: [&str; 0] = [];
    assert!(ca.issue_server(&none, &[], &IssueOptions::new()).is_err());
    let leaf = ca
        .issue_workload(Kind::Service, "x", &IssueOptions::new())
        .expect("leaf");
    assert!(
        Ca::from_pem(&leaf.cert_pem, &leaf.key_pem).is_err(),
        "a leaf is not a CA"
    );
}
