"""The proxy core seen by clients we did not write: httpx (HTTP/1.1 and HTTP/2 prior knowledge)
and curl, against the built gatehouse-internal binary."""

import json
import subprocess

import httpx

CONFIG = """
listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
routes:
  - name: api
    match: {{ path_prefix: /api }}
    service: echo
services:
  echo:
    endpoints: ["{host}:{port}"]
"""


def start(gateway, backend):
    host, port = backend
    gw = gateway("gatehouse-internal", CONFIG.format(host=host, port=port))
    return gw, gw.listeners["main"]


def check_forwarded(seen, addr):
    h = seen["headers"]
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == addr
    assert h["via"].endswith("gatehouse")
    assert len(h["traceparent"]) == 55
    assert "x-foo" not in h, "a header named in Connection must not be forwarded"


def test_httpx_http1(gateway, backend):
    _, addr = start(gateway, backend)
    with httpx.Client(http1=True, http2=False) as c:
        r = c.get(f"http://{addr}/api/items?q=1", headers={"x-request-id": "py-1", "connection": "x-foo", "x-foo": "1"})
    assert r.status_code == 200
    assert r.http_version == "HTTP/1.1"
    seen = r.json()
    assert seen["path"] == "/api/items?q=1"
    assert seen["headers"]["x-request-id"] == "py-1"
    assert r.headers["x-request-id"] == "py-1"
    check_forwarded(seen, addr)


def test_httpx_http2_prior_knowledge(gateway, backend):
    _, addr = start(gateway, backend)
    with httpx.Client(http1=False, http2=True) as c:
        r = c.post(f"http://{addr}/api/upload", content=b"x" * 100_000)
    assert r.status_code == 200
    assert r.http_version == "HTTP/2"
    seen = r.json()
    assert seen["method"] == "POST"
    assert seen["body_len"] == 100_000
    check_forwarded(seen, addr)


def test_httpx_problem_json(gateway, backend):
    _, addr = start(gateway, backend)
    r = httpx.get(f"http://{addr}/nowhere", headers={"x-request-id": "py-404"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 404
    assert problem["request_id"] == "py-404"
    assert problem["type"].startswith("urn:gatehouse:problem:")


def test_curl_http1_and_h2c(gateway, backend):
    _, addr = start(gateway, backend)
    for flags in (["--http1.1"], ["--http2-prior-knowledge"]):
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "10", *flags, "-H", "x-custom: yes", f"http://{addr}/api/curl"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        seen = json.loads(out)
        assert seen["headers"]["x-custom"] == "yes", flags
        check_forwarded(seen, addr)


def test_admin_with_httpx(gateway, backend):
    gw, addr = start(gateway, backend)
    httpx.get(f"http://{addr}/api/x")
    assert httpx.get(f"http://{gw.admin}/readyz").status_code == 200
    metrics = httpx.get(f"http://{gw.admin}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'gatehouse_requests_total{route="api",status_class="2xx"} 1' in metrics.text
