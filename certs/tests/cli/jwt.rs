//! `gatehouse-certs jwt-keys` and `token`: tokens verify against the published JWKS.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use super::{certs, certs_ok, s, tempdir};

/// Verifies `token` with the key in `dir/jwks.json` named by its `kid`; returns the claims.
fn verify(dir: &Path, token: &str, aud: &str, iss: &str) -> Value {
    let jwks: JwkSet =
        serde_json::from_str(&std::fs::read_to_string(dir.join("jwks.json")).expect("read jwks"))
            .expect("parse jwks");
    let header = decode_header(token).expect("header");
    let kid = header.kid.expect("kid in header");
    let jwk = jwks.find(&kid).expect("kid in jwks");
    let key = DecodingKey::from_jwk(jwk).expect("decoding key from JWK");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[iss]);
    validation.required_spec_claims = HashSet::from(["exp", "sub", "aud", "iss"].map(String::from));
    decode::<Value>(token, &key, &validation)
        .expect("token verifies")
        .claims
}

#[test]
fn tokens_verify_against_jwks_for_every_algorithm() {
    for (alg, kty) in [("ES256", "EC"), ("RS256", "RSA"), ("EdDSA", "OKP")] {
        let tmp = tempdir();
        let dir = tmp.path();
        certs_ok(&["jwt-keys", "--dir", s(dir), "--alg", alg]);
        let jwks: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("jwks.json")).expect("read"))
                .expect("json");
        let jwk = &jwks["keys"][0];
        assert_eq!(
            (jwk["kty"].as_str(), jwk["alg"].as_str()),
            (Some(kty), Some(alg))
        );
        assert_eq!(jwk["use"], "sig");
        let key_mode = std::fs::metadata(dir.join("jwt-signing-key.pem")).expect("meta");
        assert_eq!(key_mode.permissions().mode() & 0o777, 0o600);

        let out = certs_ok(&[
            "token",
            "--dir",
            s(dir),
            "--sub",
            "alice",
            "--scope",
            "users:read orders:write",
            "--ttl",
            "1h",
            "--claim",
            "tenant=acme",
            "--claim",
            "level=3",
        ]);
        assert_eq!(out.lines().count(), 1, "only the token: {out}");
        let claims = verify(dir, out.trim(), "gatehouse", "gatehouse-dev-idp");
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["scope"], "users:read orders:write");
        assert_eq!(
            (claims["tenant"].as_str(), claims["level"].as_u64()),
            (Some("acme"), Some(3))
        );
        let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
        assert_eq!(exp, iat.map(|i| i + 3600), "{alg}");
        assert_eq!(claims["nbf"], claims["iat"]);
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

        let custom = certs_ok(&[
            "token",
            "--dir",
            s(dir),
            "--sub",
            "bob",
            "--aud",
            "other",
            "--iss",
            "idp2",
        ]);
        let claims = verify(dir, custom.trim(), "other", "idp2");
        assert_eq!(
            claims["exp"].as_u64(),
            claims["iat"].as_u64().map(|i| i + 900),
            "default 15m"
        );
    }
}

#[test]
fn jwt_keys_is_idempotent_and_refuses_another_algorithm() {
    let tmp = tempdir();
    let dir = tmp.path();
    let first = certs_ok(&["jwt-keys", "--dir", s(dir)]);
    assert!(first.lines().all(|l| l.starts_with("created ")), "{first}");
    let key = std::fs::read(dir.join("jwt-signing-key.pem")).expect("read");
    std::fs::write(dir.join("jwks.json"), "stale").expect("write");
    let second = certs_ok(&["jwt-keys", "--dir", s(dir), "--alg", "es256"]);
    assert!(
        second.contains("kept ") && second.contains("updated "),
        "{second}"
    );
    assert_eq!(
        std::fs::read(dir.join("jwt-signing-key.pem")).expect("read"),
        key
    );
    assert!(
        std::fs::read_to_string(dir.join("jwks.json"))
            .expect("read")
            .contains("\"kid\"")
    );

    let other = certs(&["jwt-keys", "--dir", s(dir), "--alg", "RS256"]);
    assert_eq!(other.code, Some(1), "{other:?}");
    let no_key = certs(&["token", "--dir", s(&dir.join("empty")), "--sub", "a"]);
    assert_eq!(no_key.code, Some(1));
    assert!(no_key.stderr.contains("jwt-keys"), "{no_key:?}");
    let bad_ttl = certs(&["token", "--dir", s(dir), "--sub", "a", "--ttl", "soon"]);
    assert_eq!(bad_ttl.code, Some(2));
}
