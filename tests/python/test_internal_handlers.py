"""A route handler of the built gatehouse-internal binary, seen by clients we did not write
(httpx over HTTP/1.1 and HTTP/2 prior knowledge, curl): the `envelope` handler makes a child
request to a Python backend, which sees the parent's request id, the same trace with a new
span and the remaining deadline; the child's access-log line carries the parent's request id."""

import json
import queue
import subprocess
import time

import httpx

CONFIG = """
listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
routes:
  - name: user
    match: {{ path_template: "/api/users/{{id}}" }}
    timeout: 2s
    handler:
      envelope: {{ service: echo, path: "/users/{{id}}", key: user }}
services:
  echo:
    endpoints: ["{host}:{port}"]
"""

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def start(gateway, backend):
    host, port = backend
    gw = gateway("gatehouse-internal", CONFIG.format(host=host, port=port))
    return gw, gw.listeners["main"]


def child_log_line(gw, request_id):
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            line = gw.lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line.get("message") == "child request" and line.get("request_id") == request_id:
            return line
    raise AssertionError(f"no child access-log line for {request_id}")


def check_child(seen, request_id):
    h = seen["headers"]
    assert seen["method"] == "GET"
    assert seen["path"] == "/users/42"
    assert h["x-request-id"] == request_id
    version, trace, span, flags = h["traceparent"].split("-")
    assert trace == TRACE, "the child continues the caller's trace"
    assert span != CALLER_SPAN, "with a span of its own"
    assert 0 < int(h["x-gatehouse-deadline-ms"]) <= 2000


def test_httpx_both_versions(gateway, backend):
    gw, addr = start(gateway, backend)
    for http2, rid in ((False, "py-h1"), (True, "py-h2")):
        with httpx.Client(http1=not http2, http2=http2) as c:
            r = c.get(
                f"http://{addr}/api/users/42",
                headers={"x-request-id": rid, "traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"},
            )
        assert r.status_code == 200, r.text
        assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-request-id"] == rid
        body = r.json()
        assert list(body) == ["user"]
        check_child(body["user"], rid)
        line = child_log_line(gw, rid)
        assert line["child"] == "envelope"
        assert line["service"] == "echo"
        assert line["route"] == "user"
        assert line["trace_id"] == TRACE


def test_curl_and_routes(gateway, backend):
    gw, addr = start(gateway, backend)
    out = subprocess.run(
        ["curl", "-sS", "-H", "x-request-id: curl-1", "-H", f"traceparent: 00-{TRACE}-{CALLER_SPAN}-01",
         f"http://{addr}/api/users/42"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout
    check_child(json.loads(out)["user"], "curl-1")
    routes = httpx.get(f"http://{gw.admin}/routes").json()
    assert routes[0]["action"] == "envelope"
    metrics = httpx.get(f"http://{gw.admin}/metrics").text
    assert 'gatehouse_child_requests_total{route="user",service="echo",origin="envelope",status_class="2xx"} 1' in metrics
