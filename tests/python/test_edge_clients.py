"""The edge binary (real TLS, a PKI from `gatehouse-certs`) checked with clients nobody here wrote:
httpx over HTTP/1.1 and HTTP/2, aioquic over HTTP/3, PyJWT-signed tokens, and plain-HTTP
redirects and CORS preflights as a browser would send them."""

import asyncio
import json
import ssl
import subprocess
import time

import httpx
import jwt
import pytest
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration

from conftest import binary

ORIGIN = "https://app.example"


@pytest.fixture
def edge(tmp_path, gateway, backend):
    certs = tmp_path / "certs"

    def run(*args):
        subprocess.run([binary("gatehouse-certs"), *args], check=True, capture_output=True)

    run("init", "--dir", str(certs))
    run("jwt-keys", "--dir", str(certs), "--alg", "RS256")
    host, port = backend
    yaml = f"""
listeners:
  - name: https
    address: 127.0.0.1:0
    tls: {{ cert: {certs}/edge.pem, key: {certs}/edge-key.pem }}
  - name: http
    address: 127.0.0.1:0
admin: {{ address: 127.0.0.1:0 }}
routes: [{{ name: all, service: internal }}]
services:
  internal: {{ endpoints: ["{host}:{port}"] }}
edge:
  https_redirect: {{ listeners: [http], https_port: 8443 }}
  hsts: {{ max_age: 365d, include_subdomains: true }}
  jwt:
    issuers:
      - issuer: gatehouse-dev-idp
        audiences: [gatehouse]
        jwks_file: {certs}/jwks.json
  policies:
    - {{ name: public, path_prefix: /public, methods: [GET], auth: none }}
    - name: api
      path_prefix: /api
      auth: jwt
      cors:
        allow_origins: ["{ORIGIN}"]
        allow_headers: [authorization, content-type]
        max_age: 10m
"""
    gw = gateway("gatehouse-edge", yaml)
    gw.certs = certs
    return gw


def client(edge, http2):
    ctx = ssl.create_default_context(cafile=str(edge.certs / "ca.pem"))
    return httpx.Client(verify=ctx, http1=not http2, http2=http2)


def url(edge, path):
    return f"https://{edge.listeners['https']}{path}"


async def h3_get(address, cafile, path):
    """One GET over HTTP/3 with aioquic; returns (status, headers, body)."""
    host, port = address.rsplit(":", 1)
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    config.load_verify_locations(cafile)
    config.server_name = "localhost"

    class Client(QuicConnectionProtocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.h3 = H3Connection(self._quic)
            self.done = asyncio.get_running_loop().create_future()
            self.headers, self.body = {}, b""

        def quic_event_received(self, event):
            for e in self.h3.handle_event(event):
                if isinstance(e, HeadersReceived):
                    self.headers.update({k.decode(): v.decode() for k, v in e.headers})
                elif isinstance(e, DataReceived):
                    self.body += e.data
                if getattr(e, "stream_ended", False) and not self.done.done():
                    self.done.set_result(None)

    async with connect(host, int(port), configuration=config, create_protocol=Client) as proto:
        stream = proto._quic.get_next_available_stream_id()
        proto.h3.send_headers(
            stream,
            [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", f"localhost:{port}".encode()),
             (b":path", path.encode())],
            end_stream=True,
        )
        proto.transmit()
        await asyncio.wait_for(proto.done, 10)
        return int(proto.headers[":status"]), proto.headers, proto.body


def test_same_answer_over_http1_http2_and_http3(edge):
    answers = []
    for http2 in (False, True):
        with client(edge, http2) as c:
            r = c.get(url(edge, "/public/items?x=1"))
            assert r.status_code == 200
            assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            port = edge.listeners["https"].rsplit(":", 1)[1]
            assert r.headers["alt-svc"] == f'h3=":{port}"; ma=86400'
            assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
            answers.append(json.loads(r.content)["path"])
    # The QUIC endpoint starts just after the TCP listeners: give it a moment.
    status = None
    for _ in range(10):
        try:
            status, headers, body = asyncio.run(asyncio.wait_for(
                h3_get(edge.listeners["https"], str(edge.certs / "ca.pem"), "/public/items?x=1"), 5))
            break
        except (ConnectionError, asyncio.TimeoutError):
            time.sleep(0.25)
    assert status == 200
    assert "alt-svc" not in headers
    assert headers["strict-transport-security"].startswith("max-age=")
    answers.append(json.loads(body)["path"])
    assert answers == ["/public/items?x=1"] * 3


def test_plain_http_redirects_with_308(edge):
    r = httpx.get(f"http://{edge.listeners['http']}/public/a?b=c", headers={"host": "shop.example"})
    assert r.status_code == 308
    assert r.headers["location"] == "https://shop.example:8443/public/a?b=c"
    assert "strict-transport-security" not in r.headers


def test_pyjwt_tokens(edge):
    key = (edge.certs / "jwt-signing-key.pem").read_text()
    kid = json.loads((edge.certs / "jwks.json").read_text())["keys"][0]["kid"]
    now = int(time.time())
    claims = {"iss": "gatehouse-dev-idp", "aud": "gatehouse", "sub": "alice", "iat": now, "exp": now + 300}
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    expired = jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, key, algorithm="RS256",
                         headers={"kid": kid})
    with client(edge, True) as c:
        r = c.get(url(edge, "/api/me"), headers={"authorization": f"Bearer {good}",
                                                 "x-gatehouse-subject": "admin"})
        assert r.status_code == 200
        seen = json.loads(r.content)["headers"]
        assert seen["x-gatehouse-subject"] == "alice"
        assert "authorization" not in seen
        r = c.get(url(edge, "/api/me"), headers={"authorization": f"Bearer {expired}"})
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert expired not in r.text


def test_cors_preflight_as_a_browser_sends_it(edge):
    with client(edge, False) as c:
        r = c.options(url(edge, "/api/orders"), headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        })
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert r.headers["access-control-max-age"] == "600"
        assert r.headers["access-control-allow-headers"] == "authorization, content-type"
        r = c.options(url(edge, "/api/orders"), headers={
            "origin": "https://evil.example", "access-control-request-method": "POST"})
        assert r.status_code == 403
        assert "access-control-allow-origin" not in r.headers
