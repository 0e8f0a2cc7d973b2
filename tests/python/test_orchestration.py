"""The internal gateway's orchestration (docs/orchestration.md) seen by httpx, a client we did not
write: the aggregate's partial-failure contract, the 502 of a required part, XML by `Accept`
and 406, and the response cache (HIT with Age, one backend request for two client requests)."""

import json
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

CONFIG = """
listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
routes:
  - name: page
    match: {{ path_template: "/page/{{id}}" }}
    timeout: 2s
    handler:
      aggregate:
        parts:
          - {{ name: item, service: svc, path: "/ok/{{id}}" }}
          - {{ name: extra, service: svc, path: /fail, required: false }}
        xml: {{ root: page }}
  - name: strict
    match: {{ path: /strict }}
    handler:
      aggregate:
        parts:
          - {{ name: item, service: svc, path: /ok/1 }}
          - {{ name: price, service: svc, path: /fail }}
  - name: cached
    match: {{ path_template: "/cached/{{id}}" }}
    handler:
      proxy: {{ service: svc, path: "/ok/{{id}}", cache: {{}} }}
services:
  svc:
    endpoints: ["{host}:{port}"]
"""


class Service(BaseHTTPRequestHandler):
    """`/ok/<id>` → `{"id": <id>}` fresh for 60 s; `/fail` → 503. Counts requests per path."""

    counts: dict = {}

    def do_GET(self):
        Service.counts[self.path] = Service.counts.get(self.path, 0) + 1
        if self.path.startswith("/ok/"):
            status, body = 200, json.dumps({"id": self.path[4:], "name": "Café & <tea>"})
        else:
            status, body = 503, json.dumps({"title": "down"})
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("cache-control", "max-age=60")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Quiet(ThreadingHTTPServer):
    """A required part's failure cancels the parts still running: their connections close
    mid-answer, which is expected here, not an error to print."""

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def service():
    server = Quiet(("127.0.0.1", 0), Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Service.counts = {}
    yield server.server_address
    server.shutdown()


@pytest.fixture
def base(gateway, service):
    host, port = service
    gw = gateway("gatehouse-internal", CONFIG.format(host=host, port=port))
    return f"http://{gw.listeners['main']}"


@pytest.mark.parametrize("http2", [False, True])
def test_partial_and_failed_aggregates(base, http2):
    with httpx.Client(http1=not http2, http2=http2, timeout=10) as c:
        page = c.get(f"{base}/page/7")
        strict = c.get(f"{base}/strict")
    assert page.status_code == 200, page.text
    assert page.headers["x-gatehouse-partial"] == "extra"
    assert page.headers["cache-control"] == "no-store"
    assert page.json() == {
        "item": {"id": "7", "name": "Café & <tea>"},
        "extra": None,
        "errors": [{"part": "extra", "status": 503, "title": "answered 503"}],
    }
    assert strict.status_code == 502, strict.text
    assert strict.headers["content-type"] == "application/problem+json"
    problem = strict.json()
    assert problem["type"].endswith("aggregate-part-failed")
    assert "`price`" in problem["detail"]


def test_xml_and_406(base):
    with httpx.Client(timeout=10) as c:
        xml = c.get(f"{base}/page/7", headers={"accept": "application/xml"})
        refused = c.get(f"{base}/page/7", headers={"accept": "image/png"})
    assert xml.status_code == 200
    assert xml.headers["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(xml.content)  # an independent XML parser reads it
    assert root.tag == "page"
    assert root.find("item/name").text == "Café & <tea>"
    nil = "{http://www.w3.org/2001/XMLSchema-instance}nil"
    assert root.find("extra").get(nil) == "true"
    assert [e.find("part").text for e in root.find("errors")] == ["extra"]
    assert refused.status_code == 406
    assert refused.headers["content-type"] == "application/problem+json"


def test_cache_hit_with_age(base):
    with httpx.Client(http2=True, http1=False, timeout=10) as c:
        first = c.get(f"{base}/cached/3")
        second = c.get(f"{base}/cached/3")
        bypass = c.get(f"{base}/cached/3", headers={"authorization": "Bearer x"})
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"
    assert int(second.headers["age"]) >= 0
    assert second.json() == first.json()
    assert bypass.headers["x-cache"] == "BYPASS"
    assert Service.counts["/ok/3"] == 2, "the HIT did not reach the service; the bypass did"
