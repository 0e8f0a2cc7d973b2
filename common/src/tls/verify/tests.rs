//! Verifier unit tests: each refusal maps to its own reason.

use gatehouse_certs::Kind;
use gatehouse_certs::test_util::{LeafOptions, TestCert, TestPki};
use rustls::RootCertStore;
use rustls::pki_types::UnixTime;

use super::*;

fn roots(pki: &TestPki) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der()).expect("test CA as trust anchor");
    roots
}

fn client_check(v: &SpiffeClientVerifier, cert: &TestCert) -> Result<String, Reason> {
    let chain = cert.cert_der_chain();
    v.check(&chain[0], &chain[1..], UnixTime::now())
        .map(|id| id.to_string())
}

#[test]
fn client_verifier_reasons() {
    let pki = TestPki::new("gatehouse.local");
    let allow = vec![
        "spiffe://gatehouse.local/gateway/edge".to_owned(),
        "spiffe://gatehouse.local/service/*".to_owned(),
    ];
    let policy = Policy::new("gatehouse.local", Some(&allow)).expect("policy");
    let v = SpiffeClientVerifier::new(roots(&pki), policy).expect("verifier");
    let opts = LeafOptions::new;
    let cases: Vec<(&str, TestCert, Result<String, Reason>)> = vec![
        (
            "valid service",
            pki.workload(Kind::Service, "orders"),
            Ok("spiffe://gatehouse.local/service/orders".into()),
        ),
        (
            "valid edge",
            pki.workload(Kind::Gateway, "edge"),
            Ok("spiffe://gatehouse.local/gateway/edge".into()),
        ),
        (
            "other CA",
            TestPki::other().workload(Kind::Service, "orders"),
            Err(Reason::UnknownCa),
        ),
        (
            "expired",
            pki.workload_with(Kind::Service, "orders", opts().expired()),
            Err(Reason::Expired),
        ),
        (
            "not yet valid",
            pki.workload_with(Kind::Service, "orders", opts().not_yet_valid()),
            Err(Reason::NotYetValid),
        ),
        (
            "two URI SANs",
            pki.workload_with(
                Kind::Service,
                "orders",
                opts().second_uri("spiffe://gatehouse.local/service/other"),
            ),
            Err(Reason::MultipleUriSans),
        ),
        (
            "foreign trust domain",
            pki.workload_with(Kind::Service, "orders", opts().trust_domain("evil.local")),
            Err(Reason::ForeignTrustDomain),
        ),
        (
            "not in the allow list",
            pki.workload(Kind::Gateway, "internal"),
            Err(Reason::IdentityNotAllowed),
        ),
        (
            "server-only certificate",
            pki.server(&["localhost"]),
            Err(Reason::BadCertificate),
        ),
    ];
    for (name, cert, want) in cases {
        assert_eq!(client_check(&v, &cert), want, "{name}");
    }
}

/// A client certificate of `pki` with exactly these URI SANs (the fixtures always add one).
fn client_leaf(pki: &TestPki, uris: &[&str]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::from_pem(&pki.ca().key_pem()).expect("CA key");
    let issuer = Issuer::from_ca_cert_pem(pki.ca_pem(), ca_key).expect("issuer");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.subject_alt_names = uris
        .iter()
        .map(|u| SanType::URI((*u).try_into().expect("IA5 URI")))
        .collect();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, &issuer).expect("sign leaf");
    vec![cert.der().clone(), pki.ca_der()]
}

#[test]
fn client_verifier_needs_one_valid_spiffe_uri() {
    let pki = TestPki::new("gatehouse.local");
    let policy = Policy::trust_domain("gatehouse.local").expect("policy");
    let v = SpiffeClientVerifier::new(roots(&pki), policy).expect("verifier");
    let check = |uris: &[&str]| {
        let chain = client_leaf(&pki, uris);
        v.check(&chain[0], &chain[1..], UnixTime::now())
            .map(|id| id.to_string())
    };
    assert_eq!(
        check(&["spiffe://gatehouse.local/service/orders"]),
        Ok("spiffe://gatehouse.local/service/orders".into())
    );
    assert_eq!(check(&[]), Err(Reason::NoSpiffeId));
    assert_eq!(
        check(&["https://gatehouse.local/service/orders"]),
        Err(Reason::NoSpiffeId)
    );
    assert_eq!(
        check(&["spiffe://gatehouse.local"]),
        Err(Reason::InvalidSpiffeId)
    );
    assert_eq!(
        check(&["spiffe://gatehouse.local/a/../b"]),
        Err(Reason::InvalidSpiffeId)
    );
    assert_eq!(
        check(&["spiffe://gatehouse.local/a", "https://x.test/"]),
        Err(Reason::MultipleUriSans)
    );
}

#[test]
fn refusal_survives_rustls_with_the_peer_id() {
    let pki = TestPki::new("gatehouse.local");
    let allow = vec!["spiffe://gatehouse.local/gateway/edge".to_owned()];
    let policy = Policy::new("gatehouse.local", Some(&allow)).expect("policy");
    let v = SpiffeClientVerifier::new(roots(&pki), policy).expect("verifier");
    let chain = pki.workload(Kind::Service, "orders").cert_der_chain();
    let err = v
        .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
        .expect_err("refused");
    assert_eq!(Reason::of(&err), Reason::IdentityNotAllowed);
    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, err);
    assert_eq!(Reason::of_io(&io), Reason::IdentityNotAllowed);
    assert_eq!(
        Reason::peer_id_of(&io).as_deref(),
        Some("spiffe://gatehouse.local/service/orders")
    );
    assert_eq!(
        Reason::of(&rustls::Error::NoCertificatesPresented),
        Reason::NoClientCertificate
    );
}

#[test]
fn server_verifier_requires_the_expected_id_not_the_name() {
    let pki = TestPki::new("gatehouse.local");
    let expected = SpiffeId::parse("spiffe://gatehouse.local/gateway/internal").expect("id");
    let v = SpiffeServerVerifier::new(roots(&pki), expected);
    let check = |cert: &TestCert| {
        let chain = cert.cert_der_chain();
        v.check(&chain[0], &chain[1..], UnixTime::now())
            .map(|id| id.to_string())
    };
    assert_eq!(
        check(&pki.workload(Kind::Gateway, "internal")),
        Ok("spiffe://gatehouse.local/gateway/internal".into())
    );
    assert_eq!(
        check(&pki.workload(Kind::Gateway, "edge")),
        Err(Reason::UnexpectedIdentity)
    );
    assert_eq!(
        check(&TestPki::other().workload(Kind::Gateway, "internal")),
        Err(Reason::UnknownCa)
    );
    assert_eq!(
        check(&pki.workload_with(Kind::Gateway, "internal", LeafOptions::new().expired())),
        Err(Reason::Expired)
    );
    // The trait entry point ignores the dialled name: an IP works.
    let chain = pki.workload(Kind::Gateway, "internal").cert_der_chain();
    let ip = ServerName::try_from("10.1.2.3").expect("IP server name");
    assert!(
        v.verify_server_cert(&chain[0], &chain[1..], &ip, &[], UnixTime::now())
            .is_ok()
    );
}
