"""REST <-> gRPC transcoding of the built gatehouse-internal binary (docs/transcoding.md), seen by
clients we did not write: httpx for REST (HTTP/1.1, HTTP/2 over TLS, h2c prior knowledge),
grpcio with stubs that grpc_tools' protoc compiles from the repository's .proto files at test
time, protobuf's own JSON mapping (`json_format`) to compare with the gateway's, and
openapi-spec-validator / openapi-schema-validator for the OpenAPI document.

The gateway runs with two listeners:
- `mesh`: mTLS, `trusted_gateways: [spiffe://gatehouse.local/gateway/edge]`. The clients present
  the edge's certificate (from `gatehouse-certs init`) and send `x-gatehouse-subject` as the edge
  would; the gateway passes it on to `orders`, whose orders belong to that subject.
- `plain`: no TLS, any client, HTTP/1.1 and h2c. Identity headers are removed there (identity
  hygiene, docs/configuration.md), so `orders` refuses every call with UNAUTHENTICATED: this
  listener serves what needs no identity (the gateway's own refusals, the OpenAPI document, the
  reverse `Catalog`, which calls a REST service that ignores identity).

Behind it: the demo's gRPC `orders` (`gatehouse-topology service orders`, tonic) with a fake
sidecar answering stock and prices, and a fake REST `catalog` written here that records the
requests it gets.
"""

import importlib
import json
import pathlib
import re
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import grpc
import httpx
import pytest
from google.protobuf import json_format
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from conftest import ROOT, Gateway, binary
from test_internal_handlers import child_log_line

EDGE_ID = "spiffe://gatehouse.local/gateway/edge"
PROTO_DIR = ROOT / "topology" / "proto"
GOOGLE_API_DIR = ROOT / "internal" / "proto"

# What the fake sidecar answers for `orders`: every product has 100 in stock and costs 1250
# cents, except BIG, whose price needs all 64 bits (2^53 + 1 is not exact as a JSON number in
# most clients: the int64-as-string rule keeps it).
BIG = "big-1"
BIG_PRICE = 2**53 + 1
STOCK = 100

PRODUCTS = {
    "1001": {"id": "1001", "name": "Espresso machine", "description": "Dual boiler, 2 l",
             "category": "machines", "price_cents": 89900, "instance": 1},
    "1002": {"id": "1002", "name": "Burr grinder", "description": "64 mm flat burrs",
             "category": "grinders", "price_cents": 34900, "instance": 1},
    "1003": {"id": "1003", "name": "Milk jug", "description": "600 ml, steel",
             "category": "accessories", "price_cents": 1900, "instance": 1},
    "1004": {"id": "1004", "name": "Tamper", "description": "58 mm, flat base",
             "category": "accessories", "price_cents": 2900, "instance": 1},
}


# --- the processes -----------------------------------------------------------------------------


def _json_server(answer):
    """A threading HTTP/1.1 server whose GETs are answered by `answer(path) -> (status, body)`;
    every request is recorded as (method, raw path, lower-cased headers)."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            seen.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
            status, body = answer(self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.seen = seen
    return server


def sidecar_answer(path):
    """`orders` asks `GET /stock/{id}` and `GET /prices/{id}` through its sidecar."""
    kind, _, product = path.lstrip("/").partition("/")
    if kind == "stock":
        return 200, {"product_id": product, "available": STOCK}
    return 200, {"product_id": product, "unit_price_cents": BIG_PRICE if product == BIG else 1250}


def catalog_answer(path):
    """The REST catalog: `GET /products/{id}` and `GET /products[?category=C]`. It sends more
    than catalog.proto declares (`price_cents`, `instance`)."""
    url = urlsplit(path)
    if url.path.startswith("/products/status-"):
        status = int(url.path.rsplit("-", 1)[1])
        return status, STATUS_BODIES.get(status, {})
    if url.path.startswith("/products/"):
        product_id = unquote(url.path[len("/products/"):])
        if product_id in PRODUCTS:
            return 200, PRODUCTS[product_id]
        return 404, {"title": "Not found", "detail": f"no product {product_id}"}
    if url.path == "/products":
        category = parse_qs(url.query).get("category", [None])[0]
        products = [p for p in PRODUCTS.values() if category in (None, p["category"])]
        return 200, {"instance": 1, "products": products}
    return 404, {"title": "Not found", "detail": f"no route {url.path}"}


# What the catalog answers to `GET /products/status-NNN`: status NNN with this body (the
# message of the gRPC status is its `detail`, `message` or `error`, else "the service answered"
# and the status).
STATUS_BODIES = {
    400: {"title": "Bad request", "detail": "bad product id"},
    401: {"message": "who are you?"},
    403: {"error": "not yours"},
}


class Stack:
    """The running gateway and what is behind it, with the clients' credentials."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("transcoding")
    certs = tmp / "certs"
    subprocess.run([binary("gatehouse-certs"), "init", "--dir", str(certs)], check=True,
                   capture_output=True, timeout=60)
    sidecar = _json_server(sidecar_answer)
    catalog = _json_server(catalog_answer)
    orders = subprocess.Popen(
        [binary("gatehouse-topology"), "service", "orders", "--listen", "127.0.0.1:0",
         "--admin", "127.0.0.1:0", "--upstream-proxy", "%s:%d" % sidecar.server_address],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    gw = None
    try:
        line = orders.stdout.readline()
        assert line, f"orders exited with {orders.poll()}"
        orders_addr = json.loads(line)["listen"]
        config = tmp / "internal.yaml"
        config.write_text(f"""
listeners:
  - name: plain
    address: 127.0.0.1:0
  - name: mesh
    address: 127.0.0.1:0
    tls:
      cert: {certs}/internal.pem
      key: {certs}/internal-key.pem
      client_ca: {certs}/ca.pem
      allow: ["{EDGE_ID}"]
    trusted_gateways: ["{EDGE_ID}"]
admin: {{ address: 127.0.0.1:0 }}
internal:
  descriptors:
    protos: ["{PROTO_DIR}/orders.proto", "{PROTO_DIR}/catalog.proto"]
routes:
  - name: orders-rest
    match: {{ path_prefix: /api/v1/orders }}
    handler:
      rest_to_grpc: {{ service: orders, grpc_services: [shop.orders.v1.Orders] }}
  - name: openapi
    match: {{ path: /api/v1/openapi.json }}
    handler:
      openapi: {{ grpc_services: [shop.orders.v1.Orders] }}
  - name: orders-grpc
    match: {{ path_prefix: /shop.orders.v1.Orders }}
    service: orders
  - name: catalog-grpc
    match: {{ path_prefix: /shop.catalog.v1.Catalog/ }}
    handler:
      grpc_to_rest: {{ service: catalog, grpc_services: [shop.catalog.v1.Catalog] }}
services:
  orders: {{ endpoints: ["{orders_addr}"], protocol: h2c }}
  # The status table test has the catalog answer 5xx on purpose: those must not eject its
  # only endpoint (outlier detection) for the tests after it.
  catalog:
    endpoints: ["{catalog.server_address[0]}:{catalog.server_address[1]}"]
    count_server_errors: false
""")
        gw = Gateway("gatehouse-internal", config)
        s = Stack()
        s.gw, s.certs, s.catalog = gw, certs, catalog
        s.plain = gw.listeners["plain"]
        s.mesh = gw.listeners["mesh"]
        yield s
    finally:
        if gw is not None:
            gw.stop()
        orders.terminate()
        orders.wait(timeout=15)
        sidecar.shutdown()
        catalog.shutdown()


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    """orders.proto and catalog.proto (and our google/api protos they import) compiled by
    grpc_tools' protoc into a temporary package directory: the generated modules."""
    from grpc_tools import protoc
    import grpc_tools

    out = tmp_path_factory.mktemp("pb")
    bundled = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTO_DIR}", f"-I{GOOGLE_API_DIR}", f"-I{bundled}",
            f"--python_out={out}", f"--grpc_python_out={out}",
            "orders.proto", "catalog.proto", "google/api/annotations.proto",
            "google/api/http.proto"]
    assert protoc.main(args) == 0, f"protoc failed: {args}"
    sys.path.insert(0, str(out))
    try:
        names = ["orders_pb2", "orders_pb2_grpc", "catalog_pb2", "catalog_pb2_grpc"]
        yield {n: importlib.import_module(n) for n in names}
    finally:
        sys.path.remove(str(out))


# --- clients -----------------------------------------------------------------------------------


def mesh_ssl(stack):
    """The client side of the mTLS listener: the CA, and the edge's certificate."""
    ctx = ssl.create_default_context(cafile=str(stack.certs / "ca.pem"))
    ctx.load_cert_chain(str(stack.certs / "edge.pem"), str(stack.certs / "edge-key.pem"))
    return ctx


def mesh_client(stack, http2, subject):
    """httpx on the mTLS listener as the edge, speaking for `subject`."""
    return httpx.Client(
        base_url=f"https://{stack.mesh}", verify=mesh_ssl(stack), http1=not http2, http2=http2,
        headers={"x-gatehouse-subject": subject}, timeout=10,
    )


def plain_client(stack, http2):
    """httpx on the plaintext listener: HTTP/1.1, or HTTP/2 with prior knowledge (h2c)."""
    return httpx.Client(base_url=f"http://{stack.plain}", http1=not http2, http2=http2,
                        timeout=10)


def grpc_mesh_channel(stack):
    certs = stack.certs
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs / "ca.pem").read_bytes(),
        private_key=(certs / "edge-key.pem").read_bytes(),
        certificate_chain=(certs / "edge.pem").read_bytes(),
    )
    return grpc.secure_channel(stack.mesh, creds, options=[("grpc.enable_http_proxy", 0)])


def grpc_plain_channel(stack):
    return grpc.insecure_channel(stack.plain, options=[("grpc.enable_http_proxy", 0)])


def problem(r, status, code):
    """Checks a transcoding refusal or relayed gRPC status: the HTTP status, a problem+json
    body carrying the google.rpc.Status members; the body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body = r.json()
    assert body["status"] == status, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert body["details"] == [], body
    return body


ORDER_ID = re.compile(r"^ord-\d{6}$")
ORDER_KEYS = ["orderId", "productId", "quantity", "customer", "unitPriceCents", "status"]


def expect_order(body, product, quantity, customer, price=1250):
    assert sorted(body) == sorted(ORDER_KEYS), body
    assert ORDER_ID.match(body["orderId"]), body
    assert body["productId"] == product
    assert body["quantity"] == quantity
    assert body["customer"] == customer
    assert body["unitPriceCents"] == str(price), "int64 is written as a JSON string"
    assert body["status"] == "CONFIRMED"


# --- 1. REST -> gRPC with httpx ----------------------------------------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_rest_create_get_and_refusals(stack, http2):
    subject = f"rest-{'h2' if http2 else 'h1'}"
    with mesh_client(stack, http2, subject) as c:
        r = c.post("/api/v1/orders", json={"productId": "1001", "quantity": 2})
        assert r.status_code == 200, r.text
        assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert r.headers["content-type"] == "application/json"
        created = r.json()
        expect_order(created, "1001", 2, subject)
        assert list(created) == ORDER_KEYS, "lowerCamelCase, in field order"

        # The proto's own spelling is accepted too; int64 beyond 2^53 survives as a string.
        r = c.post("/api/v1/orders", json={"product_id": BIG, "quantity": 1})
        assert r.status_code == 200, r.text
        expect_order(r.json(), BIG, 1, subject, price=BIG_PRICE)
        assert r.json()["unitPriceCents"] == "9007199254740993"

        # Integers may come as JSON strings; null is the field's default (0 here, which
        # `orders` itself refuses).
        r = c.post("/api/v1/orders", content=b'{"productId": "1002", "quantity": "2"}',
                   headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        expect_order(r.json(), "1002", 2, subject)
        r = c.post("/api/v1/orders", content=b'{"productId": "1002", "quantity": null}',
                   headers={"content-type": "application/json"})
        assert problem(r, 400, 3)["message"] == "quantity must be at least 1"

        # GET it back: the same order.
        r = c.get(f"/api/v1/orders/{created['orderId']}")
        assert r.status_code == 200, r.text
        assert r.json() == created

        # Unknown order: the service's NOT_FOUND as a 404 problem.
        r = c.get("/api/v1/orders/ord-999999")
        body = problem(r, 404, 5)
        assert body["message"] == "no order ord-999999"
        assert body["detail"] == "no order ord-999999"
        assert body["type"] == "urn:gatehouse:problem:grpc-not-found"
        assert body["instance"] == "/api/v1/orders/ord-999999"

        # The service's own INVALID_ARGUMENT and FAILED_PRECONDITION.
        r = c.post("/api/v1/orders", json={"productId": "1001", "quantity": 0})
        assert problem(r, 400, 3)["message"] == "quantity must be at least 1"
        r = c.post("/api/v1/orders", json={"productId": "1001", "quantity": STOCK + 1})
        assert problem(r, 400, 9)["message"] == \
            "product 1001 is out of stock: 100 available, 101 ordered"

        # The gateway's own refusals: bad JSON, an unknown field, a wrong type, an unknown
        # query parameter (body "*": every query parameter is unknown), a wrong method.
        check_refusals(c)

        # Someone else's order is as absent as an unknown one.
        with mesh_client(stack, http2, f"{subject}-other") as other:
            r = other.get(f"/api/v1/orders/{created['orderId']}")
            assert problem(r, 404, 5)["message"] == f"no order {created['orderId']}"

        # None of the refused requests created anything.
        r = c.get("/api/v1/orders", headers={"accept": "application/json"})
        assert [o["productId"] for o in r.json()] == ["1001", BIG, "1002"]


def check_refusals(c):
    """The transcoder's own refusals, each before any call to `orders`."""
    def post(raw, path="/api/v1/orders"):
        return c.post(path, content=raw, headers={"content-type": "application/json"})

    r = post(b'{"productId": "1001", "quantity": ')
    assert problem(r, 400, 3)["message"] == \
        "invalid JSON body: EOF while parsing a value at line 1 column 34"
    r = post(b'{"productId": "1001", "quantity": 1, "colour": "red"}')
    assert problem(r, 400, 3)["message"] == \
        "invalid JSON body: unrecognized field name 'colour' at line 1 column 45"
    r = post(b'{"productId": "1001", "quantity": "many"}')
    assert problem(r, 400, 3)["message"] == \
        "invalid JSON body: invalid digit found in string at line 1 column 40"
    r = post(b'{"productId": "1001", "quantity": -1}')
    assert problem(r, 400, 3)["message"] == \
        "invalid JSON body: out of range integral type conversion attempted at line 1 column 36"
    # body "*": every field comes from the body, so any query parameter is unknown.
    r = post(b'{"productId": "1001", "quantity": 1}', "/api/v1/orders?colour=red")
    assert problem(r, 400, 3)["message"] == \
        "`/api/v1/orders` takes its fields from the body, not the query"
    r = c.get("/api/v1/orders?colour=red")
    body = problem(r, 400, 3)
    assert body["message"] == "unknown query parameter `colour`"
    assert body["type"] == "urn:gatehouse:problem:grpc-invalid-argument"
    r = c.get("/api/v1/orders?page_size=ten")
    assert problem(r, 400, 3)["message"] == \
        "invalid value `ten` for `page_size` (uint32): not an integer"
    r = c.delete("/api/v1/orders/ord-000001")
    body = problem(r, 405, 12)
    assert body["message"] == "/api/v1/orders/ord-000001 is not bound to DELETE; allowed: GET"
    r = c.put("/api/v1/orders")
    assert problem(r, 405, 12)["message"] == \
        "/api/v1/orders is not bound to PUT; allowed: GET, POST"
    r = c.get("/api/v1/orders/ord-000001/items")
    assert problem(r, 404, 5)["message"] == \
        "no method is bound to GET /api/v1/orders/ord-000001/items"


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
def test_rest_on_the_plain_listener(stack, http2):
    """Plain HTTP/1.1 and h2c prior knowledge: the gateway's refusals do not need `orders`;
    a calling client's own x-gatehouse-subject is removed (no trusted peer), so `orders` says
    UNAUTHENTICATED, relayed as 401 with code 16."""
    with plain_client(stack, http2) as c:
        r = c.post("/api/v1/orders", json={"productId": "1001", "quantity": 2},
                   headers={"x-gatehouse-subject": "mallory"})
        assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        body = problem(r, 401, 16)
        assert body["message"] == "no x-gatehouse-subject: call through the gateways with a token"
        # A stream that fails before its first message is answered like a unary call, in
        # every format.
        for accept in ("application/json", "application/x-ndjson", "text/event-stream"):
            r = c.get("/api/v1/orders", headers={"accept": accept, "x-gatehouse-subject": "eve"})
            assert problem(r, 401, 16)["message"] == body["message"], accept
        check_refusals(c)
        r = c.get("/api/v1/orders", headers={"accept": "text/html"})
        assert r.status_code == 406, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:gatehouse:problem:not-acceptable"


# --- 2. what REST created is what gRPC reads -------------------------------------------------


def test_rest_and_grpc_see_the_same_orders(stack, pb):
    orders_pb2, orders_grpc = pb["orders_pb2"], pb["orders_pb2_grpc"]
    subject = "grpc-reader"
    meta = (("x-gatehouse-subject", subject),)
    with mesh_client(stack, True, subject) as c, grpc_mesh_channel(stack) as channel:
        stub = orders_grpc.OrdersStub(channel)
        r = c.post("/api/v1/orders", json={"productId": "1002", "quantity": 3},
                   headers={"x-request-id": "rest-create-1"})
        assert r.headers["x-request-id"] == "rest-create-1"
        rest = r.json()
        expect_order(rest, "1002", 3, subject)
        # The gRPC call the transcoder made is a child request of the REST one.
        line = child_log_line(stack.gw, "rest-create-1")
        assert (line["child"], line["route"], line["service"], line["method"], line["path"],
                line["status"]) == ("rest_to_grpc", "orders-rest", "orders", "POST",
                                    "/shop.orders.v1.Orders/CreateOrder", 200), line

        order = stub.GetOrder(orders_pb2.GetOrderRequest(order_id=rest["orderId"]),
                              metadata=meta, timeout=10)
        assert order.order_id == rest["orderId"]
        assert order.product_id == rest["productId"] == "1002"
        assert order.quantity == rest["quantity"] == 3
        assert order.customer == rest["customer"] == subject
        assert order.unit_price_cents == int(rest["unitPriceCents"]) == 1250
        assert order.status == rest["status"] == "CONFIRMED"
        # protobuf's own proto3 JSON mapping of the message gives the very same JSON.
        assert json_format.MessageToDict(
            order, always_print_fields_with_no_presence=True) == rest

        # The other way: created over gRPC (int64 past 2^53), read over REST.
        grpc_order = stub.CreateOrder(orders_pb2.CreateOrderRequest(product_id=BIG, quantity=4),
                                      metadata=meta, timeout=10)
        assert grpc_order.unit_price_cents == BIG_PRICE
        r = c.get(f"/api/v1/orders/{grpc_order.order_id}")
        assert r.status_code == 200, r.text
        assert r.json() == json_format.MessageToDict(
            grpc_order, always_print_fields_with_no_presence=True)
        assert r.json()["unitPriceCents"] == str(BIG_PRICE)

        # The streamed list is the same on both sides.
        listed = list(stub.ListOrders(orders_pb2.ListOrdersRequest(page_size=10), metadata=meta,
                                      timeout=10))
        assert [o.order_id for o in listed] == [rest["orderId"], grpc_order.order_id]
        r = c.get("/api/v1/orders?page_size=10", headers={"accept": "application/json"})
        assert r.json() == [json_format.MessageToDict(o, always_print_fields_with_no_presence=True)
                            for o in listed]

        with pytest.raises(grpc.RpcError) as err:
            stub.GetOrder(orders_pb2.GetOrderRequest(order_id="ord-999999"), metadata=meta,
                          timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert err.value.details() == "no order ord-999999"

    # The plaintext listener trusts no caller's identity: the subject is removed.
    with grpc_plain_channel(stack) as channel:
        stub = orders_grpc.OrdersStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetOrder(orders_pb2.GetOrderRequest(order_id=rest["orderId"]), metadata=meta,
                          timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert err.value.details() == \
            "no x-gatehouse-subject: call through the gateways with a token"


# --- 3. server streaming by Accept ------------------------------------------------------------


def sse_events(text):
    """Server-sent events: a list of (event name or None, [data lines])."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        events.append((name, data))
    return events


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_list_orders_streamed_by_accept(stack, http2):
    subject = f"lister-{'h2' if http2 else 'h1'}"
    with mesh_client(stack, http2, subject) as c:
        # Nothing yet: empty in every format.
        assert c.get("/api/v1/orders", headers={"accept": "application/json"}).json() == []
        r = c.get("/api/v1/orders", headers={"accept": "application/x-ndjson"})
        assert (r.status_code, r.text) == (200, "")
        r = c.get("/api/v1/orders", headers={"accept": "text/event-stream"})
        assert (r.status_code, r.text) == (200, "")

        created = []
        for product, quantity in (("1001", 1), ("1002", 2), ("1003", 3)):
            r = c.post("/api/v1/orders", json={"productId": product, "quantity": quantity})
            assert r.status_code == 200, r.text
            created.append(r.json())

        r = c.get("/api/v1/orders?page_size=10", headers={"accept": "application/json"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert "content-length" not in r.headers, "streamed, not buffered whole"
        assert r.json() == created

        with c.stream("GET", "/api/v1/orders?page_size=10",
                      headers={"accept": "application/x-ndjson"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/x-ndjson"
            assert "content-length" not in r.headers
            lines = [line for line in r.iter_lines()]
        assert [json.loads(line) for line in lines] == created
        assert all(line.startswith("{") and line.endswith("}") for line in lines), lines

        with c.stream("GET", "/api/v1/orders?page_size=10",
                      headers={"accept": "text/event-stream"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/event-stream"
            assert r.headers["cache-control"] == "no-cache"
            assert "content-length" not in r.headers
            text = r.read().decode()
        events = sse_events(text)
        assert [name for name, _ in events] == [None] * 3, text
        assert [json.loads("\n".join(data)) for _, data in events] == created

        # page_size limits, in either spelling; no Accept at all (httpx sends */*) is JSON.
        assert c.get("/api/v1/orders?page_size=2").json() == created[:2]
        assert c.get("/api/v1/orders?pageSize=1").json() == created[:1]

        r = c.get("/api/v1/orders?page_size=10", headers={"accept": "text/html"})
        assert r.status_code == 406, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:gatehouse:problem:not-acceptable"
        assert r.json()["status"] == 406


# --- 4. gRPC -> REST with grpcio ---------------------------------------------------------------


def test_grpc_clients_reach_the_rest_catalog(stack, pb):
    catalog_pb2, catalog_grpc = pb["catalog_pb2"], pb["catalog_pb2_grpc"]
    stack.catalog.seen.clear()
    with grpc_plain_channel(stack) as channel:
        stub = catalog_grpc.CatalogStub(channel)
        product = stub.GetProduct(catalog_pb2.GetProductRequest(product_id="1001"), timeout=10,
                                  metadata=(("x-request-id", "grpc-catalog-1"),))
        line = child_log_line(stack.gw, "grpc-catalog-1")
        assert (line["child"], line["route"], line["service"], line["method"], line["path"],
                line["status"]) == ("grpc_to_rest", "catalog-grpc", "catalog", "GET",
                                    "/products/1001", 200), line
        expected = catalog_pb2.Product(id="1001", name="Espresso machine",
                                       description="Dual boiler, 2 l", category="machines")
        assert product == expected
        # Nothing beyond the declared fields came back (price_cents, instance were dropped).
        assert product.SerializeToString() == expected.SerializeToString()

        with pytest.raises(grpc.RpcError) as err:
            stub.GetProduct(catalog_pb2.GetProductRequest(product_id="9999"), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert err.value.details() == "no product 9999"

        listed = stub.ListProducts(catalog_pb2.ListProductsRequest(category="accessories"),
                                   timeout=10)
        assert [(p.id, p.name, p.category) for p in listed.products] == [
            ("1003", "Milk jug", "accessories"), ("1004", "Tamper", "accessories")]

        everything = stub.ListProducts(catalog_pb2.ListProductsRequest(), timeout=10)
        assert [p.id for p in everything.products] == ["1001", "1002", "1003", "1004"]

        # A path value is percent-encoded into its one segment.
        with pytest.raises(grpc.RpcError) as err:
            stub.GetProduct(catalog_pb2.GetProductRequest(product_id="a b/c"), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert err.value.details() == "no product a b/c"

    seen = stack.catalog.seen
    assert [(m, p) for m, p, _ in seen] == [
        ("GET", "/products/1001"),
        ("GET", "/products/9999"),
        ("GET", "/products?category=accessories"),
        ("GET", "/products"),
        ("GET", "/products/a%20b%2Fc"),
    ]
    for _, _, headers in seen:
        assert headers["accept"] == "application/json"
    assert seen[0][2]["x-request-id"] == "grpc-catalog-1"


# HTTP status of the REST answer -> gRPC status (docs/transcoding.md, the reverse table), and the
# message: the body's `detail`, `message` or `error`, else "the service answered" and the status.
REVERSE = [
    (400, "INVALID_ARGUMENT", "bad product id"),
    (401, "UNAUTHENTICATED", "who are you?"),
    (403, "PERMISSION_DENIED", "not yours"),
    (404, "NOT_FOUND", "404 Not Found"),
    (405, "UNIMPLEMENTED", "405 Method Not Allowed"),
    (408, "DEADLINE_EXCEEDED", "408 Request Timeout"),
    (409, "ALREADY_EXISTS", "409 Conflict"),
    (410, "NOT_FOUND", "410 Gone"),
    (412, "FAILED_PRECONDITION", "412 Precondition Failed"),
    (413, "RESOURCE_EXHAUSTED", "413 Payload Too Large"),
    (416, "OUT_OF_RANGE", "416 Range Not Satisfiable"),
    (418, "FAILED_PRECONDITION", "418 I'm a teapot"),
    (422, "INVALID_ARGUMENT", "422 Unprocessable Entity"),
    (429, "RESOURCE_EXHAUSTED", "429 Too Many Requests"),
    (499, "CANCELLED", "499"),
    (500, "INTERNAL", "500 Internal Server Error"),
    (501, "UNIMPLEMENTED", "501 Not Implemented"),
    (502, "UNAVAILABLE", "502 Bad Gateway"),
    (503, "UNAVAILABLE", "503 Service Unavailable"),
    (504, "DEADLINE_EXCEEDED", "504 Gateway Timeout"),
    (507, "INTERNAL", "507 Insufficient Storage"),
]


def test_rest_statuses_become_grpc_statuses(stack, pb):
    """Every row of the reverse table, from the fake catalog's `GET /products/status-NNN`."""
    catalog_pb2, catalog_grpc = pb["catalog_pb2"], pb["catalog_pb2_grpc"]
    got = []
    with grpc_plain_channel(stack) as channel:
        stub = catalog_grpc.CatalogStub(channel)
        for status, _, _ in REVERSE:
            with pytest.raises(grpc.RpcError) as err:
                stub.GetProduct(catalog_pb2.GetProductRequest(product_id=f"status-{status}"),
                                timeout=10)
            got.append((status, err.value.code().name, err.value.details()))
    expected = [(status, code, message if status in STATUS_BODIES
                 else f"the service answered {message}") for status, code, message in REVERSE]
    assert got == expected


# --- 5. OpenAPI ----------------------------------------------------------------------------------


def test_openapi_document_is_valid_and_describes_the_api(stack):
    with plain_client(stack, True) as c:
        r = c.get("/api/v1/openapi.json")
    assert r.status_code == 200, r.text
    assert r.http_version == "HTTP/2"
    assert r.headers["content-type"] == "application/json"
    spec = r.json()
    validate(spec)  # the version is detected from `openapi`
    validate(spec, cls=OpenAPIV31SpecValidator)
    assert spec["openapi"] == "3.1.0"
    assert (spec["info"]["title"], spec["info"]["version"]) == ("Transcoded gRPC services", "1")

    paths = spec["paths"]
    assert sorted(paths) == ["/api/v1/orders", "/api/v1/orders/{order_id}"]
    assert sorted(paths["/api/v1/orders"]) == ["get", "post"]
    assert sorted(paths["/api/v1/orders/{order_id}"]) == ["get"]
    create = paths["/api/v1/orders"]["post"]
    get = paths["/api/v1/orders/{order_id}"]["get"]
    list_ = paths["/api/v1/orders"]["get"]
    assert (create["operationId"], get["operationId"], list_["operationId"]) == (
        "shop.orders.v1.Orders.CreateOrder", "shop.orders.v1.Orders.GetOrder",
        "shop.orders.v1.Orders.ListOrders")

    # Parameters: the path's order_id (required), ListOrders' page_size from the query,
    # nothing for CreateOrder (body "*").
    assert get["parameters"] == [
        {"in": "path", "name": "order_id", "required": True, "schema": {"type": "string"}}]
    assert [(p["name"], p["in"], p["schema"]["type"]) for p in list_["parameters"]] == \
        [("page_size", "query", "integer")]
    assert list_["parameters"][0].get("required", False) is False
    assert create.get("parameters", []) == []

    order_ref = {"$ref": "#/components/schemas/shop.orders.v1.Order"}
    assert create["requestBody"]["required"] is True
    assert create["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/shop.orders.v1.CreateOrderRequest"}
    assert create["responses"]["200"]["content"]["application/json"]["schema"] == order_ref
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == order_ref
    # The stream in its three formats.
    streamed = list_["responses"]["200"]["content"]
    assert sorted(streamed) == ["application/json", "application/x-ndjson", "text/event-stream"]
    assert streamed["application/json"]["schema"] == {"type": "array", "items": order_ref}
    assert streamed["application/x-ndjson"]["schema"] == order_ref

    # Every operation's errors are the Problem schema.
    schemas = spec["components"]["schemas"]
    for op in (create, get, list_):
        assert op["responses"]["default"]["content"]["application/problem+json"]["schema"] == \
            {"$ref": "#/components/schemas/Problem"}, op["responses"]["default"]
    problem_schema = schemas["Problem"]
    assert problem_schema["type"] == "object"
    assert {"type", "title", "status", "detail", "instance", "code", "message", "details"} <= \
        set(problem_schema["properties"])
    assert sorted(schemas) == ["Problem", "shop.orders.v1.CreateOrderRequest",
                               "shop.orders.v1.Order"]
    assert sorted(schemas["shop.orders.v1.CreateOrderRequest"]["properties"]) == \
        ["productId", "quantity"]


def test_rest_answers_match_the_published_schemas(stack):
    """The JSON the REST side answers validates against the document's own schemas
    (openapi-schema-validator, OpenAPI 3.1 dialect); a wrong shape does not."""
    with plain_client(stack, False) as c:
        spec = c.get("/api/v1/openapi.json").json()
    components = {"components": spec["components"]}

    def schema_of(path, method, status, media):
        op = spec["paths"][path][method]
        return op["responses"][status]["content"][media]["schema"]

    def check(instance, schema):
        OAS31Validator({**schema, **components}).validate(instance)

    order_schema = schema_of("/api/v1/orders", "post", "200", "application/json")
    subject = "schema-check"
    with mesh_client(stack, False, subject) as c:
        created = c.post("/api/v1/orders", json={"productId": BIG, "quantity": 1}).json()
        check(created, order_schema)
        got = c.get(f"/api/v1/orders/{created['orderId']}").json()
        check(got, schema_of("/api/v1/orders/{order_id}", "get", "200", "application/json"))
        listed = c.get("/api/v1/orders", headers={"accept": "application/json"}).json()
        assert len(listed) == 1
        check(listed, schema_of("/api/v1/orders", "get", "200", "application/json"))
        with c.stream("GET", "/api/v1/orders", headers={"accept": "application/x-ndjson"}) as r:
            for line in r.iter_lines():
                check(json.loads(line),
                      schema_of("/api/v1/orders", "get", "200", "application/x-ndjson"))
        missing = c.get("/api/v1/orders/ord-999999")
        check(missing.json(), schema_of("/api/v1/orders/{order_id}", "get", "default",
                                        "application/problem+json"))
        bad = c.post("/api/v1/orders", content=b"{", headers={"content-type": "application/json"})
        check(bad.json(), schema_of("/api/v1/orders", "post", "default",
                                    "application/problem+json"))

    # The validator does look: int64 as a JSON number is not what the document promises.
    def valid(instance, schema):
        return OAS31Validator({**schema, **components}).is_valid(instance)

    assert valid(created, order_schema)
    assert not valid({**created, "unitPriceCents": BIG_PRICE}, order_schema)
    assert not valid({**created, "quantity": -1}, order_schema)

    properties = spec["components"]["schemas"]["shop.orders.v1.Order"]["properties"]
    assert sorted(properties) == sorted(ORDER_KEYS), "the document names what the API sends"
    assert properties["unitPriceCents"] == {"type": "string", "format": "int64"}


# --- gateway bugs found here, fixed since (1df6eac): 405 without Allow, HEAD over HTTP/2, an
# HTTP/1.1 connection closed unannounced after an answer given before the body -----------------


def test_405_names_the_allowed_methods_in_allow(stack):
    with plain_client(stack, False) as c:
        r = c.delete("/api/v1/orders/ord-000001")
    assert r.status_code == 405
    assert r.headers.get("allow") == "GET"


def test_head_over_h2c(stack):
    with plain_client(stack, False) as c:
        h1 = c.head("/api/v1/openapi.json")
    assert (h1.status_code, h1.content) == (200, b"")
    with plain_client(stack, True) as c:
        r = c.head("/api/v1/openapi.json")
    assert (r.status_code, r.content) == (200, b"")
    assert r.headers["content-length"] == h1.headers["content-length"]


def _read_response(sock):
    """One HTTP/1.1 response with a Content-Length body: (status line, headers), or an
    AssertionError when the connection ends first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection ended before a response: {data!r}"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", 0))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection ended inside a response body"
        rest += chunk
    return lines[0], headers


def test_answer_before_the_body_keeps_or_closes_the_connection_openly(stack):
    """PUT /api/v1/orders (405) with its body sent only after the answer came: the gateway
    must either read (discard) the body and serve the next request on the connection, or
    say `Connection: close`."""
    host, port = stack.plain.rsplit(":", 1)
    body = b'{"productId": "1001", "quantity": 1}'
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"PUT /api/v1/orders HTTP/1.1\r\nhost: gatehouse\r\n"
                     b"content-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n" % len(body))
        sock.settimeout(1)
        try:
            status, headers = _read_response(sock)
        except socket.timeout:  # waits for the body: fine too
            status = None
        sock.settimeout(5)
        try:
            sock.sendall(body)
            if status is None:
                status, headers = _read_response(sock)
            assert status == "HTTP/1.1 405 Method Not Allowed", status
            if headers.get("connection") == "close":
                return
            sock.sendall(b"GET /api/v1/openapi.json HTTP/1.1\r\nhost: gatehouse\r\n\r\n")
            status, _ = _read_response(sock)
        except OSError as e:
            raise AssertionError(f"the connection was closed unannounced: {e!r}") from e
        assert status == "HTTP/1.1 200 OK", status
