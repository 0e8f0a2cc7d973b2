"""End-to-end checks of the docker-compose topology (topology/docker-compose.yml), through the
edge's published ports, with clients we did not write (httpx, PyJWT) and `docker-compose` for
the faults.

Skipped unless GATEHOUSE_COMPOSE_EDGE is set: run by `topology/compose.sh test`, which starts
the topology, sets the variables below and removes everything afterwards. By hand, against a
topology started with `topology/compose.sh up`:

    bash scripts/test.sh --prepare    # once: the Python clients in .gatehouse/venv
    GATEHOUSE_COMPOSE_EDGE=127.0.0.1:8443 GATEHOUSE_COMPOSE_CA=.gatehouse/compose/ca.pem \
        .gatehouse/venv/bin/python -m pytest -q -s tests/python/test_compose.py

Variables:
    GATEHOUSE_COMPOSE_EDGE            the edge's HTTPS address on the host (required)
    GATEHOUSE_COMPOSE_CA              the CA of the compose PKI, copied out of the volume (required)
    GATEHOUSE_COMPOSE_HTTP            the edge's plain HTTP address (default: edge host, port 8080)
    GATEHOUSE_COMPOSE_INTERNAL_ADMIN  the internal gateway's admin (default 127.0.0.1:19001)
    GATEHOUSE_COMPOSE_EDGE_ADMINS     the edge replicas' admins, comma-separated (default
                                      127.0.0.1:19000,127.0.0.1:19002: edge-1, edge-2)
    GATEHOUSE_COMPOSE_CMD             the compose command (default
                                      `docker-compose -p gatehouse -f topology/docker-compose.yml`)
    GATEHOUSE_COMPOSE_PROJECT         the compose project (default gatehouse)

The fault checks change the topology: the catalog one leaves catalog-2 running again (recreated,
new IP), and the edge one starts edge-2 again, so the file can run twice against the same `up`.
"""

import asyncio
import concurrent.futures
import json
import os
import ssl
import pathlib
import shlex
import statistics
import subprocess
import threading
import time

import httpx
import jwt
import pytest

from test_edge_clients import h3_get

ROOT = pathlib.Path(__file__).resolve().parents[2]
EDGE = os.environ.get("GATEHOUSE_COMPOSE_EDGE", "")
CA = os.environ.get("GATEHOUSE_COMPOSE_CA", "")
EDGE_HOST = EDGE.rsplit(":", 1)[0] if EDGE else ""
HTTP = os.environ.get("GATEHOUSE_COMPOSE_HTTP", f"{EDGE_HOST}:8080")
INTERNAL_ADMIN = os.environ.get("GATEHOUSE_COMPOSE_INTERNAL_ADMIN", "127.0.0.1:19001")
EDGE_ADMINS = dict(
    zip(
        ("edge-1", "edge-2"),
        os.environ.get("GATEHOUSE_COMPOSE_EDGE_ADMINS", "127.0.0.1:19000,127.0.0.1:19002").split(","),
    )
)
PROJECT = os.environ.get("GATEHOUSE_COMPOSE_PROJECT", "gatehouse")
COMPOSE = shlex.split(
    os.environ.get(
        "GATEHOUSE_COMPOSE_CMD",
        f"docker-compose -p {PROJECT} -f topology/docker-compose.yml",
    )
)
# The throwaway containers of the new-IP check: names IPHOLDER-N, and this label (which
# `compose.sh down` also removes).
IPHOLDER = "gatehouse-ipholder"
IPHOLDER_LABEL = "org.gatehouse.compose-test=ipholder"
SIDECAR_PORT = 15006

pytestmark = pytest.mark.skipif(
    not EDGE,
    reason="docker-compose checks: set GATEHOUSE_COMPOSE_EDGE and GATEHOUSE_COMPOSE_CA "
    "(topology/compose.sh test does)",
)

BASE = f"https://{EDGE}"


# --- helpers -----------------------------------------------------------------------------------


def run(cmd, timeout=120):
    """Runs a command from the repository root; its stdout, or a test failure with its output."""
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip()


def compose(*args, timeout=120):
    return run([*COMPOSE, *args], timeout=timeout)


def container(service):
    """The id of the project's container of `service` (running or not), or None."""
    ids = run(
        [
            "docker", "ps", "-a", "-q",
            "--filter", f"label=com.docker.compose.project={PROJECT}",
            "--filter", f"label=com.docker.compose.service={service}",
        ]
    ).split()
    return ids[0] if ids else None


def inspect(cid, fmt):
    return run(["docker", "inspect", "--format", fmt, cid])


def mesh_ip(cid):
    """The container's address on its (only) network, and that network's name."""
    out = inspect(cid, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}\n{{end}}")
    name, ip = out.splitlines()[0].split()
    return ip, name


def upstream_addresses(service):
    res = httpx.get(f"http://{INTERNAL_ADMIN}/upstreams", timeout=5)
    res.raise_for_status()
    return [e["address"] for e in res.json()[service]["endpoints"]]


def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def client(**kw):
    return httpx.Client(
        base_url=BASE, verify=ssl.create_default_context(cafile=CA), timeout=40, **kw
    )


def token(client_id, secret):
    with client() as c:
        res = c.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
    assert res.status_code == 200, res.text
    return res.json()["access_token"]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def topology():
    """Checks the variables, and remembers catalog-2's address before any fault."""
    if not CA or not pathlib.Path(CA).is_file():
        pytest.fail(f"GATEHOUSE_COMPOSE_CA must name the compose CA file (got {CA!r})")
    cid = container("catalog-2")
    assert cid, "no catalog-2 container: is the compose topology up?"
    return {"catalog2_ip": mesh_ip(cid)[0]}


@pytest.fixture(scope="module")
def web_app_token():
    return token("web-app", "web-app-dev-secret")


# --- the public API through the edge ----------------------------------------------------------


def test_public_get_http1():
    with client(http1=True, http2=False) as c:
        res = c.get("/api/catalog/products")
    assert res.status_code == 200, res.text
    assert res.http_version == "HTTP/1.1"
    body = res.json()
    assert [p["id"] for p in body["products"]] == ["1001", "1002", "1003", "1004", "1005"]
    assert body["instance"] in (1, 2)
    assert res.headers["x-service"] == "catalog"


def test_public_get_http2():
    with client(http1=False, http2=True) as c:
        res = c.get("/api/catalog/products/1002")
    assert res.status_code == 200, res.text
    assert res.http_version == "HTTP/2"
    assert res.json()["id"] == "1002"


def test_orchestrated_pages_over_http2():
    """The internal gateway's aggregation, shaping, XML and cache (docs/orchestration.md),
    through the edge over HTTP/2 with httpx, no token."""
    with client(http1=False, http2=True) as c:
        web = c.get("/api/web/products/1001")
        mobile = c.get("/api/mobile/products/1001")
        v1 = c.get("/api/v1/products/1001")
        missing = c.get("/api/web/products/9999")
        xml = c.get("/api/web/products/1001", headers={"accept": "application/xml"})
        echo = c.post(
            "/api/xml/echo",
            content=b"<order><productId>1001</productId></order>",
            headers={"content-type": "application/xml", "accept": "application/xml"},
        )
        first = c.get("/api/catalog/products/1004")
        second = c.get("/api/catalog/products/1004")
    assert web.status_code == 200 and web.http_version == "HTTP/2", web.text
    page = web.json()
    assert sorted(page) == ["price", "product", "related", "reviews", "stock"], page
    assert page["product"]["id"] == "1001" and page["price"]["currency"] == "EUR"
    assert set(page["reviews"]) == {"average_rating", "count", "items"}
    assert mobile.json()["price_cents"] == 89900 and mobile.json()["in_stock"] is True
    assert v1.json() == {"id": "1001", "title": "Espresso machine", "category": "machines"}
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert xml.headers["content-type"] == "application/xml; charset=utf-8"
    assert xml.text.startswith('<?xml version="1.0" encoding="UTF-8"?>'), xml.text
    assert echo.status_code == 200 and "<method>POST</method>" in echo.text, echo.text
    assert (first.headers["x-cache"], second.headers["x-cache"]) in (("MISS", "HIT"), ("HIT", "HIT"))


def test_http3_on_the_published_udp_port():
    with client() as c:
        res = c.get("/api/reviews/1001")
    assert res.status_code == 200, res.text
    assert 'h3=":8443"' in res.headers.get("alt-svc", "")
    # UDP is not balanced (the balancer is TCP only): edge-1 publishes it.
    edge = container("edge-1")
    assert run(["docker", "port", edge, "8443/udp"]), "8443/udp is not published"
    # The same request over HTTP/3 (aioquic) through the published UDP port.
    status, headers, body = asyncio.run(asyncio.wait_for(h3_get(EDGE, CA, "/api/reviews/1001"), 10))
    assert status == 200, body
    assert json.loads(body) == res.json()


def test_http_redirects_to_https():
    res = httpx.get(f"http://{HTTP}/api/catalog/products?page=2", follow_redirects=False, timeout=10)
    assert res.status_code == 308, res.text
    assert res.headers["location"] == f"https://{EDGE_HOST}:8443/api/catalog/products?page=2"


def test_hsts_on_https():
    with client() as c:
        res = c.get("/api/catalog/products")
    assert res.status_code == 200
    assert "max-age=86400" in res.headers.get("strict-transport-security", "")


def test_token_then_users_me(web_app_token):
    with client() as c:
        jwks = c.get("/.well-known/jwks.json").json()
        discovery = c.get("/.well-known/openid-configuration").json()
        res = c.get("/api/users/me", headers={"authorization": f"Bearer {web_app_token}"})
    assert discovery["token_endpoint"] == f"{BASE}/oauth/token"
    header = jwt.get_unverified_header(web_app_token)
    key = next(k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == header.get("kid"))
    claims = jwt.decode(
        web_app_token,
        key.key,
        algorithms=[header["alg"]],
        audience="gatehouse",
        issuer="gatehouse-dev-idp",
    )
    assert claims["sub"] == "web-app"
    assert res.status_code == 200, res.text
    me = res.json()
    assert me["subject"] == "web-app"
    assert me["issuer"] == "gatehouse-dev-idp"
    assert set(me["scopes"]) == {"users:read", "orders:read", "orders:write"}


def test_no_token_is_401():
    with client() as c:
        res = c.get("/api/users/me")
    assert res.status_code == 401, res.text
    assert res.headers["www-authenticate"].startswith("Bearer")
    assert res.headers["content-type"].startswith("application/problem+json")


def test_wrong_scope_is_403():
    partner = token("partner", "partner-dev-secret")
    with client() as c:
        res = c.get("/api/users/1", headers={"authorization": f"Bearer {partner}"})
    assert res.status_code == 403, res.text
    assert "insufficient_scope" in res.headers["www-authenticate"]


def test_spoofed_identity_headers_never_reach_echo(web_app_token):
    spoofed = {
        "x-gatehouse-subject": "admin",
        "x-gatehouse-scopes": "admin users:write",
        "x-gatehouse-issuer": "evil",
        "x-gatehouse-claim-role": "root",
    }
    with client() as c:
        res = c.get(
            "/api/echo/whoami",
            headers={"authorization": f"Bearer {web_app_token}", **spoofed},
        )
        anonymous = c.get("/api/echo/whoami", headers=spoofed)
    assert anonymous.status_code == 401
    assert res.status_code == 200, res.text
    seen = res.json()["headers"]
    assert seen["x-gatehouse-subject"] == ["web-app"]
    assert seen["x-gatehouse-issuer"] == ["gatehouse-dev-idp"]
    assert "x-gatehouse-claim-role" not in seen
    for name, values in seen.items():
        if name.startswith("x-gatehouse-"):
            assert not any(v in ("admin", "evil", "root") or "users:write" in v for v in values), (
                name,
                values,
            )


def _varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf, i):
    """A protobuf varint at `buf[i]`: (value, index after it)."""
    value, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf):
    """Decodes a protobuf message: {field number: value} (varints and length-delimited only)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 2:
            length, i = _read_varint(buf, i)
            value = buf[i : i + length].decode()
            i += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out[field] = value
    return out


def test_grpc_create_order_through_the_mesh(web_app_token):
    """edge -> internal -> orders' sidecar -> orders, which asks inventory and pricing through
    its own sidecar (found by Docker DNS)."""
    product = b"1002"
    msg = b"\x0a" + _varint(len(product)) + product + b"\x10" + _varint(2)
    frame = b"\x00" + len(msg).to_bytes(4, "big") + msg
    with client(http1=False, http2=True) as c:
        res = c.post(
            "/shop.orders.v1.Orders/CreateOrder",
            content=frame,
            headers={
                "authorization": f"Bearer {web_app_token}",
                "content-type": "application/grpc",
                "te": "trailers",
            },
        )
    assert res.status_code == 200
    assert res.headers.get("grpc-status", "0") == "0", res.headers.get("grpc-message")
    body = res.content
    assert body[0] == 0 and len(body) == 5 + int.from_bytes(body[1:5], "big"), body
    order = _fields(body[5:])
    assert order[2] == "1002" and order[3] == 2, order
    assert order[4] == "web-app", order
    assert order[5] > 0, order  # unit_price_cents, from pricing
    assert order[6] == "CONFIRMED", order


def test_rest_orders_and_openapi_through_the_edge(web_app_token):
    """REST -> gRPC at the internal gateway (docs/transcoding.md), through the edge: an order
    created with `POST /api/v1/orders` is read back with `GET /api/v1/orders/{id}`; the OpenAPI
    document needs no token."""
    auth = {"authorization": f"Bearer {web_app_token}"}
    with client(http1=False, http2=True) as c:
        created = c.post("/api/v1/orders", json={"productId": "1004", "quantity": 1}, headers=auth)
        assert created.status_code == 200, created.text
        order = created.json()
        got = c.get(f"/api/v1/orders/{order['orderId']}", headers=auth)
        spec = c.get("/api/v1/openapi.json")
    assert created.headers["content-type"] == "application/json"
    assert order["productId"] == "1004" and order["quantity"] == 1, order
    assert order["customer"] == "web-app" and order["status"] == "CONFIRMED", order
    assert order["unitPriceCents"] == "5900", order  # int64 as a JSON string
    assert got.status_code == 200, got.text
    assert got.json() == order
    assert spec.status_code == 200, spec.text
    assert spec.json()["openapi"] == "3.1.0"


def test_async_order_through_the_broker(web_app_token):
    """Event-driven (docs/events.md) on the `nats` container: 202 once stored, the job completes
    with a price, the event stream (read with httpx's streaming API) shows `order.completed`,
    and the same Idempotency-Key answers the same job."""
    import uuid

    auth = {"authorization": f"Bearer {web_app_token}"}
    key = f"compose-{uuid.uuid4()}"
    with client(http1=False, http2=True) as c:
        with c.stream("GET", "/api/events/orders", headers=auth, timeout=30) as events:
            assert events.status_code == 200, events.read()
            assert events.headers["content-type"] == "text/event-stream"
            lines = events.iter_lines()
            assert next(lines) == "retry: 2000"  # the stream is open
            accepted = c.post(
                "/api/async/orders",
                json={"productId": "1001", "quantity": 1},
                headers={**auth, "idempotency-key": key},
            )
            assert accepted.status_code == 202, accepted.text
            job = accepted.json()["job_id"]
            assert accepted.headers["location"] == f"/api/jobs/{job}"
            seen = None
            event = None
            for line in lines:
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: ") and job in line:
                    seen = (event, json.loads(line[len("data: "):]))
                    break
        assert seen is not None and seen[0] == "order.completed", seen
        state = c.get(f"/api/jobs/{job}", headers=auth).json()
        again = c.post(
            "/api/async/orders",
            json={"productId": "1001", "quantity": 1},
            headers={**auth, "idempotency-key": key},
        )
    assert state["status"] == "completed", state
    assert int(state["result"]["unitPriceCents"]) > 0, state
    assert state["result"]["orderId"] == seen[1]["order"]["orderId"]
    assert again.status_code == 202 and again.json() == {"job_id": job, "status": "completed"}


# --- faults ------------------------------------------------------------------------------------


# The internal gateway caches catalog reads (max-age=5): failover tests ask past the cache.
NO_CACHE = {"cache-control": "no-cache"}


def _instances_seen(c, n):
    seen = set()
    for _ in range(n):
        res = c.get("/api/catalog/products", headers=NO_CACHE)
        assert res.status_code == 200, res.text
        seen.add(res.json()["instance"])
    return seen


def _instances_seen_concurrently(clients=4, each=10):
    """The catalog instances that answer `clients` clients sending `each` GETs at once. A new
    endpoint starts with a pessimistic latency estimate, so the balancer gives it traffic only
    when the other one has requests in flight (or once the estimate has decayed)."""
    def one(_):
        with client() as c:
            return _instances_seen(c, each)

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return set().union(*pool.map(one, range(clients)))


def test_kill_one_catalog_instance_during_1000_requests():
    """SIGKILL to catalog-2 (`docker kill` of the container owning that instance's network
    namespace, as `docker-compose kill catalog-2` does) while 4 clients send 1,000 GETs in all,
    the kill after the 200th: no request fails. The loop goes on past 1,000 if needed until 200
    answers came after the kill. Four clients at once, because the balancer (peak-EWMA, power of
    two choices) sends a lone sequential client to the faster instance only; with requests in
    flight both instances get traffic."""
    total, kill_at, workers, after_kill, cap = 1000, 200, 4, 200, 5000
    with client() as c:
        wait_for("both catalog instances to answer", lambda: _instances_seen(c, 10) == {1, 2}, 30)
    lock = threading.Lock()
    killed = threading.Event()
    state = {"next": 0, "done": 0}
    failures, latencies = [], []
    before, after = {}, {}
    killer = {}

    victim = container("catalog-2")

    def kill():
        t = time.monotonic()
        try:
            run(["docker", "kill", "--signal", "KILL", victim])
        except BaseException as e:  # pytest.fail inside a thread: reported below
            killer["error"] = e
        killer["took"] = time.monotonic() - t
        killed.set()

    def worker():
        with client(http1=True, http2=False) as c:
            while True:
                with lock:
                    i = state["next"]
                    enough_after = killed.is_set() and sum(after.values()) >= after_kill
                    if (i >= total and enough_after) or i >= cap:
                        return
                    state["next"] += 1
                if i == kill_at:
                    threading.Thread(target=kill, daemon=True).start()
                t = time.monotonic()
                try:
                    res = c.get("/api/catalog/products", headers=NO_CACHE)
                    if res.status_code == 200:
                        counts = after if killed.is_set() else before
                        inst = res.json()["instance"]
                        with lock:
                            counts[inst] = counts.get(inst, 0) + 1
                    else:
                        with lock:
                            failures.append((i, res.status_code, res.text[:200]))
                except httpx.HTTPError as e:
                    with lock:
                        failures.append((i, type(e).__name__, str(e)))
                with lock:
                    latencies.append(time.monotonic() - t)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    elapsed = time.monotonic() - started
    killed.wait(60)
    assert "error" not in killer, killer.get("error")
    status = inspect(container("catalog-2"), "{{.State.Status}}")
    lat = sorted(latencies)
    print(
        f"\n[compose] kill catalog-2 after {kill_at} of {len(lat)} GETs ({workers} clients): "
        f"failures {len(failures)}; answers by instance until the kill returned {before}, "
        f"after {after}; {elapsed:.1f}s in all, latency p50 {statistics.median(lat) * 1000:.1f}ms "
        f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f}ms max {lat[-1] * 1000:.0f}ms; "
        f"`docker kill` took {killer.get('took', 0):.1f}s; catalog-2 is {status}"
    )
    assert failures == [], failures[:10]
    assert len(lat) >= total and sum(after.values()) >= after_kill
    assert status == "exited"
    assert before.get(2, 0) > 0, "catalog-2 got no traffic before the kill: nothing was tested"
    assert set(after) <= {1}, f"answers after the kill came from {after}"


def test_instance_back_with_a_new_ip_is_found_without_restarting_gateways(topology):
    """catalog-2 (app and sidecar) removed, its old address taken by another container, then
    recreated: the internal gateway drops the old address and finds the new one by DNS, while
    neither gateway restarts."""
    gateways = {s: container(s) for s in ("edge-1", "edge-2", "internal")}
    started = {s: inspect(cid, "{{.State.StartedAt}}") for s, cid in gateways.items()}
    cid = container("catalog-2")
    old_ip = topology["catalog2_ip"]
    if inspect(cid, "{{.State.Status}}") == "running":
        old_ip = mesh_ip(cid)[0]
    network = mesh_ip(container("catalog-1"))[1]
    image = inspect(container("catalog-1"), "{{.Config.Image}}")
    old = f"{old_ip}:{SIDECAR_PORT}"

    compose("rm", "-f", "-s", "catalog-2-sidecar", "catalog-2")
    t0 = time.monotonic()
    wait_for(f"{old} to leave /upstreams", lambda: old not in upstream_addresses("catalog"), 15)
    gone_after = time.monotonic() - t0
    remove_ipholders()
    try:
        holder = take_address(old_ip, network, image)
        compose("up", "-d", "--no-deps", "catalog-2", "catalog-2-sidecar", timeout=180)
        t1 = time.monotonic()
        new_ip = mesh_ip(container("catalog-2"))[0]
        assert new_ip != old_ip, f"catalog-2 came back on its old address {old_ip}"
        new = f"{new_ip}:{SIDECAR_PORT}"
        wait_for(f"{new} in /upstreams", lambda: new in upstream_addresses("catalog"), 30)
        listed_after = time.monotonic() - t1
        wait_for("instance 2 to answer again", lambda: 2 in _instances_seen_concurrently(), 30)
        served_after = time.monotonic() - t1
        addresses = upstream_addresses("catalog")
    finally:
        remove_ipholders()
    print(
        f"\n[compose] catalog-2 {old_ip} -> {new_ip} (old address taken by {holder}): "
        f"old address left /upstreams {gone_after:.1f}s after removal; new one listed "
        f"{listed_after:.1f}s and serving {served_after:.1f}s after `up`; endpoints {addresses}"
    )
    assert old not in addresses
    for s, cid in gateways.items():
        assert container(s) == cid, f"{s} was recreated"
        assert inspect(cid, "{{.State.StartedAt}}") == started[s], f"{s} was restarted"


def take_address(ip, network, image, most=16):
    """Starts throwaway containers on `network` until one holds `ip` (Docker hands out the
    lowest free address, so the gaps below it fill first); its name, or a failure."""
    for i in range(most):
        name = f"{IPHOLDER}-{i}"
        cid = run(
            [
                "docker", "run", "-d", "--name", name, "--label", IPHOLDER_LABEL,
                "--network", network, image,
                "gatehouse-topology", "service", "echo",
                "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            ]
        )
        if mesh_ip(cid)[0] == ip:
            return name
    pytest.fail(f"{most} throwaway containers did not get {ip}")


def remove_ipholders():
    ids = run(["docker", "ps", "-a", "-q", "--filter", f"label={IPHOLDER_LABEL}"]).split()
    if ids:
        run(["docker", "rm", "-f", *ids])


# --- two edge replicas behind the balancer ----------------------------------------------------


def metric_sum(admin, name, **labels):
    """The sum of the samples of `name` (with those label values) on an admin's /metrics."""
    res = httpx.get(f"http://{admin}/metrics", timeout=5)
    res.raise_for_status()
    total = 0.0
    for line in res.text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series != name and not series.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def requests_by_edge():
    return {n: metric_sum(a, "gatehouse_requests_total") for n, a in EDGE_ADMINS.items()}


def fresh_connection_get(path, headers=None):
    """One GET on a connection of its own: the balancer picks an edge per connection."""
    with client(limits=httpx.Limits(max_keepalive_connections=0)) as c:
        return c.get(path, headers=headers or {})


def test_two_edge_replicas_share_one_echo_limit():
    """The `echo` limit (5/s, burst 10, per subject) is one bucket in Redis for both replicas:
    40 GETs at once, each on its own connection (so the balancer spreads them over both), let
    10 through plus what refilled while they ran, where two separate buckets would let 20. Both
    replicas answered some; neither fell back to its local share."""
    for name, admin in EDGE_ADMINS.items():
        wait_for(
            f"{name} to reach Redis",
            lambda admin=admin: metric_sum(admin, "gatehouse_rate_limit_store_up") == 1,
            30,
        )
    # mobile-app: no other check spends its bucket.
    auth = {"authorization": f"Bearer {token('mobile-app', 'mobile-app-dev-secret')}"}
    fallbacks = lambda: sum(  # noqa: E731
        metric_sum(a, "gatehouse_rate_limit_store_fallbacks_total") for a in EDGE_ADMINS.values()
    )
    fallbacks_before, served_before = fallbacks(), requests_by_edge()

    def one(_):
        t = time.monotonic()
        return t, fresh_connection_get("/api/echo/shared-limit", auth)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(40)))
    starts = [t for t, _ in results]
    span = max(starts) - min(starts)
    codes = [r.status_code for _, r in results]
    passed = codes.count(200)
    served = {n: v - served_before[n] for n, v in requests_by_edge().items()}
    print(
        f"\n[compose] shared echo limit over two edges: {passed} of 40 passed "
        f"(others {sorted(set(codes) - {200})}), sent over {span:.2f}s; answered by {served}"
    )
    assert set(codes) <= {200, 429}, codes
    # 10 from the full bucket, plus 5/s while the requests were being sent (and one for timing).
    assert 10 <= passed <= 10 + int(5 * span) + 1, (passed, span)
    assert passed < 20
    assert all(v >= 5 for v in served.values()), f"the balancer did not spread: {served}"
    assert fallbacks() == fallbacks_before
    limited = next(r for _, r in results if r.status_code == 429)
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-policy"].startswith('"echo"'), limited.headers
    assert "ratelimit" in limited.headers


def test_the_edges_see_the_client_not_the_balancer(web_app_token):
    """The balancer starts each connection with a PROXY protocol v2 header, so the address the
    edge forwards (X-Forwarded-For, as `echo` receives it) is the client's as the balancer saw
    it (Docker's gateway on the host side), not the balancer's own."""
    lb_ip, network = mesh_ip(container("lb"))
    gateway = run(
        ["docker", "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}", network]
    ).split()
    seen = {}
    for name in EDGE_ADMINS:
        # Round robin per connection: two connections reach both edges.
        with client() as c:
            res = c.get("/api/echo/whoami", headers={"authorization": f"Bearer {web_app_token}"})
        assert res.status_code == 200, res.text
        seen[name] = res.json()["headers"]["x-forwarded-for"][0].split(",")[0].strip()
    print(f"\n[compose] client address at the edges: {seen}; balancer {lb_ip}, gateway {gateway}")
    for addr in seen.values():
        assert addr != lb_ip, "the edge forwarded the balancer's address"
        assert addr in gateway or addr.startswith("127."), (addr, gateway)


def _requests_during(fault, total=500, fault_at=150, workers=8, after=150, cap=20000):
    """`workers` clients send `total` GETs through the balancer, each on its own connection;
    `fault()` runs in a thread when the `fault_at`-th starts. The GETs go on past `total` until
    the fault has returned and `after` more have started since (a `docker stop` outlasts 500
    GETs). Returns the failures as (start, error), the fault's (start, end) and what each edge
    answered before the fault began."""
    lock = threading.Lock()
    state = {"next": 0, "after": 0}
    failures = []
    window = {}
    done = threading.Event()

    def run_fault():
        window["served_before"] = requests_by_edge()
        window["start"] = time.monotonic()
        try:
            fault()
        except BaseException as e:  # reported below
            window["error"] = e
        window["end"] = time.monotonic()
        done.set()

    def worker():
        while True:
            with lock:
                i = state["next"]
                if (i >= total and state["after"] >= after) or i >= cap:
                    return
                state["next"] += 1
                if done.is_set():
                    state["after"] += 1
            if i == fault_at:
                threading.Thread(target=run_fault, daemon=True).start()
            t = time.monotonic()
            try:
                res = fresh_connection_get("/api/catalog/products")
                if res.status_code != 200:
                    with lock:
                        failures.append((t, f"{res.status_code} {res.text[:200]}"))
            except httpx.HTTPError as e:
                with lock:
                    failures.append((t, f"{type(e).__name__}: {e}"))

    served_at_start = requests_by_edge()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert "error" not in window, window.get("error")
    assert done.is_set(), f"the fault did not finish within {cap} GETs"
    before = {n: window["served_before"][n] - served_at_start[n] for n in EDGE_ADMINS}
    return failures, window, before


def _edge_2_back():
    """edge-2 started again and taking connections from the balancer."""
    run(["docker", "start", container("edge-2")])
    admin = EDGE_ADMINS["edge-2"]

    def ready():
        try:
            return httpx.get(f"http://{admin}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("edge-2 to be ready", ready, 60)

    def serving():
        before = metric_sum(admin, "gatehouse_requests_total")
        for _ in range(6):
            fresh_connection_get("/api/catalog/products")
        return metric_sum(admin, "gatehouse_requests_total") > before

    wait_for("the balancer to send to edge-2 again", serving, 30)


def test_edge_replica_stopped_then_killed_during_500_requests():
    """Two faults on edge-2 while 8 clients send 500 GETs each time, each on its own connection
    through the balancer. `docker stop` (SIGTERM: the edge drains) fails no request. `docker kill`
    (SIGKILL) fails at most the requests in flight on edge-2 when it died: each failure started
    before the kill returned, and no more of them than there are clients. Every later connection
    goes to edge-1. edge-2 is started again after each fault."""
    victim = container("edge-2")
    try:
        stop_failures, stop, before = _requests_during(
            lambda: run(["docker", "stop", "-t", "10", victim])
        )
        print(
            f"\n[compose] docker stop edge-2 during 500 GETs: {len(stop_failures)} failed; "
            f"answered before the stop {before}; stop took {stop['end'] - stop['start']:.1f}s"
        )
        assert before["edge-2"] > 0, "edge-2 got no traffic before the stop: nothing was tested"
        assert stop_failures == [], stop_failures[:10]
        _edge_2_back()

        kill_failures, kill, before = _requests_during(
            lambda: run(["docker", "kill", "--signal", "KILL", victim])
        )
        late = [f for f in kill_failures if f[0] > kill["end"]]
        print(
            f"[compose] docker kill edge-2 during 500 GETs: {len(kill_failures)} failed "
            f"({len(late)} started after the kill returned); answered before the kill {before}; "
            f"failures {[e for _, e in kill_failures][:3]}"
        )
        assert before["edge-2"] > 0, "edge-2 got no traffic before the kill: nothing was tested"
        assert late == [], late[:10]
        assert len(kill_failures) <= 8, kill_failures
    finally:
        if inspect(victim, "{{.State.Status}}") != "running":
            _edge_2_back()
