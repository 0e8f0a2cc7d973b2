"""gRPC-Web through the edge binary (real TLS, a PKI from `gatehouse-certs`) to the demo's
`orders` service (`gatehouse-topology service orders`, tonic), with httpx as the browser-side
client: the request frame is built and the answer's frames are taken apart here by hand, and
the protobuf messages too (no generated code), so nothing of Gatehouse's own code checks it."""

import base64
import json
import ssl
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest

from conftest import binary

ORIGIN = "https://shop.example"


class FakeSidecar(BaseHTTPRequestHandler):
    """What `orders` asks through its sidecar: stock and price of any product."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/stock/"):
            body = {"product_id": self.path[7:], "available": 100}
        else:
            body = {"product_id": self.path[8:], "unit_price_cents": 1250}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def orders():
    """The demo's gRPC `orders` service as a process, its east-west calls to a fake sidecar."""
    sidecar = ThreadingHTTPServer(("127.0.0.1", 0), FakeSidecar)
    threading.Thread(target=sidecar.serve_forever, daemon=True).start()
    host, port = sidecar.server_address
    proc = subprocess.Popen(
        [binary("gatehouse-topology"), "service", "orders", "--listen", "127.0.0.1:0",
         "--admin", "127.0.0.1:0", "--upstream-proxy", f"{host}:{port}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line, f"orders exited with {proc.poll()}"
        yield json.loads(line)["listen"]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        sidecar.shutdown()


@pytest.fixture
def edge(tmp_path, gateway, orders):
    certs = tmp_path / "certs"

    def run(*args):
        subprocess.run([binary("gatehouse-certs"), *args], check=True, capture_output=True)

    run("init", "--dir", str(certs))
    run("jwt-keys", "--dir", str(certs), "--alg", "RS256")
    yaml = f"""
listeners:
  - name: https
    address: 127.0.0.1:0
    tls: {{ cert: {certs}/edge.pem, key: {certs}/edge-key.pem }}
admin: {{ address: 127.0.0.1:0 }}
routes: [{{ name: orders, service: orders }}]
services:
  orders: {{ endpoints: ["{orders}"], protocol: h2c }}
edge:
  jwt:
    issuers: [{{ issuer: gatehouse-dev-idp, audiences: [gatehouse], jwks_file: {certs}/jwks.json }}]
  policies:
    - name: orders
      path_prefix: /shop.orders.v1.Orders
      auth: jwt
      grpc_web: true
      cors: {{ allow_origins: ["{ORIGIN}"], allow_headers: [authorization] }}
"""
    gw = gateway("gatehouse-edge", yaml)
    gw.certs = certs
    return gw


def token(edge, sub):
    key = (edge.certs / "jwt-signing-key.pem").read_text()
    kid = json.loads((edge.certs / "jwks.json").read_text())["keys"][0]["kid"]
    now = int(time.time())
    claims = {"iss": "gatehouse-dev-idp", "aud": "gatehouse", "sub": sub, "iat": now,
              "exp": now + 300}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


# --- protobuf and gRPC-Web framing by hand ---------------------------------------------------


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number, value: bytes):
    return varint(number << 3 | 2) + varint(len(value)) + value


def field_varint(number, value: int):
    return varint(number << 3) + varint(value)


def parse_message(data: bytes):
    """Field number → value (ints for varints, bytes for length-delimited), last one wins."""
    fields, i = {}, 0
    while i < len(data):
        key, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        number, wire = key >> 3, key & 7
        value, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        if wire == 2:
            fields[number] = data[i:i + value]
            i += value
        else:
            assert wire == 0, f"unexpected wire type {wire}"
            fields[number] = value
    return fields


def frame(message: bytes):
    return b"\x00" + struct.pack(">I", len(message)) + message


def frames(content_type, body: bytes):
    """The answer's (flag, payload) frames; `-text` bodies are base64 decoded quad by quad,
    since the server may send padded chunks one after another."""
    if "-text" in content_type:
        assert len(body) % 4 == 0
        body = b"".join(base64.b64decode(body[i:i + 4]) for i in range(0, len(body), 4))
    out = []
    while body:
        flag, length = body[0], struct.unpack(">I", body[1:5])[0]
        out.append((flag, body[5:5 + length]))
        body = body[5 + length:]
    return out


def trailers(payload: bytes):
    lines = payload.decode("ascii").split("\r\n")
    assert lines[-1] == "", "the block ends with CRLF"
    return dict(line.split(": ", 1) for line in lines[:-1])


def call(c, edge, method, content_type, message, bearer):
    body = frame(message)
    if "-text" in content_type:
        body = base64.b64encode(body)
    return c.post(
        f"https://{edge.listeners['https']}/shop.orders.v1.Orders/{method}",
        content=body,
        headers={"content-type": content_type, "x-grpc-web": "1", "origin": ORIGIN,
                 "x-user-agent": "grpc-web-python-test", "authorization": f"Bearer {bearer}"},
    )


@pytest.mark.parametrize("http2", [False, True])
def test_unary_and_streaming_grpc_web_calls(edge, http2):
    ctx = ssl.create_default_context(cafile=str(edge.certs / "ca.pem"))
    bearer = token(edge, "carol")
    with httpx.Client(verify=ctx, http1=not http2, http2=http2, timeout=10) as c:
        # CreateOrder{product_id: "1001", quantity: 3} as -text.
        ct = "application/grpc-web-text+proto"
        r = call(c, edge, "CreateOrder", ct, field_bytes(1, b"1001") + field_varint(2, 3), bearer)
        assert r.status_code == 200
        assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert r.headers["content-type"] == ct
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "grpc-status" in r.headers["access-control-expose-headers"]
        (flag, order), (tflag, block) = frames(ct, r.content)
        assert (flag, tflag) == (0x00, 0x80)
        assert trailers(block)["grpc-status"] == "0"
        created = parse_message(order)
        assert created[2] == b"1001" and created[3] == 3
        assert created[4] == b"carol", "the edge forwarded the token's subject"
        assert created[5] == 1250

        # ListOrders{} as binary +proto: the order, then the trailers frame.
        ct = "application/grpc-web+proto"
        r = call(c, edge, "ListOrders", ct, b"", bearer)
        assert r.headers["content-type"] == ct
        listed = frames(ct, r.content)
        assert listed[-1][0] == 0x80 and trailers(listed[-1][1])["grpc-status"] == "0"
        assert [parse_message(m)[1] for _, m in listed[:-1]] == [created[1]]

        # GetOrder of someone else's order: NOT_FOUND, trailers-only (status in the headers).
        r = call(c, edge, "GetOrder", ct, field_bytes(1, created[1]), token(edge, "mallory"))
        assert r.status_code == 200
        assert r.headers["grpc-status"] == "5", r.headers.get("grpc-message")
        assert r.content == b""

        # No token: the edge's own refusal, readable by a gRPC-Web client.
        r = c.post(f"https://{edge.listeners['https']}/shop.orders.v1.Orders/ListOrders",
                   content=frame(b""), headers={"content-type": ct, "origin": ORIGIN})
        assert r.status_code == 200
        assert r.headers["content-type"] == ct
        assert r.headers["grpc-status"] == "16"


def test_browser_preflight(edge):
    ctx = ssl.create_default_context(cafile=str(edge.certs / "ca.pem"))
    with httpx.Client(verify=ctx) as c:
        r = c.options(
            f"https://{edge.listeners['https']}/shop.orders.v1.Orders/GetOrder",
            headers={"origin": ORIGIN, "access-control-request-method": "POST",
                     "access-control-request-headers":
                         "x-grpc-web,content-type,x-user-agent,authorization,grpc-timeout"},
        )
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert r.headers["access-control-allow-headers"] == \
            "x-grpc-web, content-type, x-user-agent, authorization, grpc-timeout"
