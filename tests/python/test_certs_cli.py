"""Tokens and certificates from `gatehouse-certs`, checked with independent tools: PyJWT against
the published jwks.json, and the `cryptography` package for the SPIFFE certificate."""

import json
import stat
import subprocess

import jwt
import pytest
from cryptography import x509

from conftest import binary


def certs(*args):
    return subprocess.run([binary("gatehouse-certs"), *args], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_token_verifies_with_pyjwt(tmp_path, alg):
    certs("jwt-keys", "--dir", str(tmp_path), "--alg", alg)
    token = certs("token", "--dir", str(tmp_path), "--sub", "alice", "--scope", "users:read orders:write", "--ttl", "5m").strip()
    jwks = json.loads((tmp_path / "jwks.json").read_text())
    header = jwt.get_unverified_header(token)
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert jwk["alg"] == alg and jwk["use"] == "sig"
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=[alg], audience="gatehouse", issuer="gatehouse-dev-idp")
    assert claims["sub"] == "alice"
    assert claims["scope"] == "users:read orders:write"
    assert claims["exp"] - claims["iat"] == 300
    # A tampered token must not verify.
    head, body, sig = token.split(".")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{body}.{sig[::-1]}", key, algorithms=[alg], audience="gatehouse")


def test_init_writes_spiffe_certs(tmp_path):
    out = certs("init", "--dir", str(tmp_path), "--service", "orders")
    assert "created" in out
    cert = x509.load_pem_x509_certificate((tmp_path / "orders.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://gatehouse.local/service/orders"]
    for key in ("ca-key.pem", "orders-key.pem", "edge-key.pem", "internal-key.pem"):
        mode = stat.S_IMODE((tmp_path / key).stat().st_mode)
        assert mode == 0o600, (key, oct(mode))
    again = certs("init", "--dir", str(tmp_path), "--service", "orders")
    assert "created" not in again
