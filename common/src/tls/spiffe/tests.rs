//! SPIFFE ID parsing and policy tests.

use super::*;

#[test]
fn parses_valid_ids() {
    let id = SpiffeId::parse("spiffe://gatehouse.local/service/orders").expect("valid");
    assert_eq!(id.trust_domain(), "gatehouse.local");
    assert_eq!(id.path(), "/service/orders");
    let td = SpiffeId::parse("spiffe://gatehouse.local").expect("trust domain ID");
    assert_eq!(td.path(), "");
}

#[test]
fn refuses_malformed_ids() {
    for bad in [
        "https://gatehouse.local/service/orders",
        "SPIFFE://gatehouse.local/x",
        "spiffe://",
        "spiffe:///service/x",
        "spiffe://Gatehouse.local/x",
        "spiffe://gatehouse.local:8443/x",
        "spiffe://user@gatehouse.local/x",
        "spiffe://gatehouse.local/service/",
        "spiffe://gatehouse.local//x",
        "spiffe://gatehouse.local/service/../x",
        "spiffe://gatehouse.local/service/x?q=1",
        "spiffe://gatehouse.local/service/x#f",
        "spiffe://gatehouse.local/service/o%20x",
    ] {
        assert!(SpiffeId::parse(bad).is_err(), "{bad} must be refused");
    }
    let long = format!("spiffe://td/{}", "a".repeat(MAX_LEN));
    assert!(SpiffeId::parse(&long).is_err());
}

fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).expect("test ID")
}

#[test]
fn policy_exact_and_wildcards() {
    let allow = vec![
        "spiffe://gatehouse.local/gateway/edge".to_owned(),
        "spiffe://gatehouse.local/service/*".to_owned(),
    ];
    let p = Policy::new("gatehouse.local", Some(&allow)).expect("policy");
    assert_eq!(
        p.check(&id("spiffe://gatehouse.local/gateway/edge")),
        Ok(())
    );
    assert_eq!(
        p.check(&id("spiffe://gatehouse.local/service/orders")),
        Ok(())
    );
    assert_eq!(p.check(&id("spiffe://gatehouse.local/service/a/b")), Ok(()));
    for denied in [
        "spiffe://gatehouse.local/gateway/internal",
        "spiffe://gatehouse.local/gateway/edge2",
        "spiffe://gatehouse.local/services/orders",
        "spiffe://gatehouse.local/service",
    ] {
        assert_eq!(
            p.check(&id(denied)),
            Err(Reason::IdentityNotAllowed),
            "{denied}"
        );
    }
    assert_eq!(
        p.check(&id("spiffe://other.td/service/orders")),
        Err(Reason::ForeignTrustDomain)
    );
}

#[test]
fn policy_default_admits_the_trust_domain() {
    let p = Policy::trust_domain("gatehouse.local").expect("policy");
    assert_eq!(p.check(&id("spiffe://gatehouse.local/anything/x")), Ok(()));
    assert_eq!(
        p.check(&id("spiffe://evil.local/service/x")),
        Err(Reason::ForeignTrustDomain)
    );
}

#[test]
fn policy_refuses_bad_entries_naming_them() {
    let key = |allow: &[&str]| {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        Policy::new("gatehouse.local", Some(&allow))
            .err()
            .and_then(|e| e.key().map(str::to_owned))
    };
    assert_eq!(
        key(&["spiffe://gatehouse.local/a", "spiffe://other/a"]).as_deref(),
        Some("allow[1]")
    );
    assert_eq!(
        key(&["spiffe://gatehouse.local/serv*"]).as_deref(),
        Some("allow[0]")
    );
    assert_eq!(
        key(&["spiffe://gatehouse.local"]).as_deref(),
        Some("allow[0]")
    );
    assert_eq!(key(&[]).as_deref(), Some("allow"));
    assert!(Policy::new("Bad Domain", None).is_err());
    assert!(
        Policy::new(
            "gatehouse.local",
            Some(&["spiffe://gatehouse.local/*".into()])
        )
        .is_ok()
    );
}
