"""Rate limits shared by two gatehouse-edge processes through a real `redis-server`, seen by a
client we did not write (httpx): one bucket for both, the IETF RateLimit headers and
Retry-After as a client reads them, the fallback when Redis dies, and 503 problem+json with
`on_store_failure: deny`.

Without `redis-server` the tests skip, except under CI=true, where they fail."""

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import time

import httpx
import pytest

EDGE = """
listeners:
  - name: public
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
routes:
  - name: all
    service: backend
services:
  backend:
    endpoints: ["{host}:{port}"]
edge:
  redis:
    url: redis://127.0.0.1:{redis}
    replicas: 2
    timeout: 300ms
  rate_limits:
    per-tenant:
      quota: 10
      window: 1s
      burst: 10
      key: "header:x-tenant"
      shared: redis
      on_store_failure: {on_failure}
  policies:
    - name: api
      path_prefix: /api
      auth: none
      rate_limit: per-tenant
"""


def redis_binary():
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if not found:
        message = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; it is required under CI=true")
        pytest.skip(message)
    return found


@pytest.fixture
def redis(tmp_path):
    binary = redis_binary()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "redis.log", "w")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 5
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.time() > deadline:
                pytest.fail(f"redis-server did not listen on {port}")
            time.sleep(0.05)
    yield (proc, port)
    proc.kill()
    proc.wait()


def edges(gateway, backend, redis, on_failure="local", n=2):
    host, port = backend
    yaml = EDGE.format(host=host, port=port, redis=redis[1], on_failure=on_failure)
    return [gateway("gatehouse-edge", yaml).listeners["public"] for _ in range(n)]


def store_up(client):
    """Waits until the edge's store answered a check (its warm-up connects at start)."""
    for _ in range(100):
        r = client.get("/api/probe", headers={"x-tenant": "probe"})
        if r.status_code == 200 and "ratelimit" in r.headers:
            return
        time.sleep(0.05)


def test_two_edges_draw_from_one_bucket(gateway, backend, redis):
    a, b = edges(gateway, backend, redis)
    clients = [httpx.Client(base_url=f"http://{addr}") for addr in (a, b)]
    for c in clients:
        store_up(c)

    def one(i):
        r = clients[i % 2].get("/api/x", headers={"x-tenant": "acme"})
        return r.status_code, r.headers

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(40)))
    took = time.monotonic() - started
    passed = [h for s, h in results if s == 200]
    limited = [h for s, h in results if s == 429]
    # One bucket of 10 for both edges (plus what refilled at 10/s while the burst ran).
    assert 10 <= len(passed) <= 11 + int(took * 10), (len(passed), took)
    assert len(passed) + len(limited) == 40
    for h in passed + limited:
        assert h["ratelimit-policy"] == '"per-tenant";q=10;w=1'
        name, r, t = h["ratelimit"].split(";")
        assert name == '"per-tenant"'
        assert 0 <= int(r.removeprefix("r=")) <= 9
        assert int(t.removeprefix("t=")) >= 0
    for h in limited:
        assert int(h["retry-after"]) >= 1
        assert h["content-type"] == "application/problem+json"
    for c in clients:
        c.close()


def test_redis_killed_each_edge_keeps_its_share(gateway, backend, redis):
    (a,) = edges(gateway, backend, redis, n=1)
    with httpx.Client(base_url=f"http://{a}") as c:
        store_up(c)
        redis[0].kill()
        redis[0].wait()
        statuses = [c.get("/api/x", headers={"x-tenant": "t"}).status_code for _ in range(12)]
    # replicas: 2, so this edge alone allows 5 (burst 10 / 2), never a 5xx.
    assert 5 <= statuses.count(200) <= 7, statuses
    assert set(statuses) <= {200, 429}, statuses


def test_deny_mode_answers_503_problem_json(gateway, backend, redis):
    (a,) = edges(gateway, backend, redis, on_failure="deny", n=1)
    with httpx.Client(base_url=f"http://{a}") as c:
        store_up(c)
        redis[0].kill()
        redis[0].wait()
        r = c.get("/api/x", headers={"x-tenant": "t"})
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "1"
    problem = r.json()
    assert problem["status"] == 503
    assert problem["type"].endswith("rate-limit-unavailable")
    assert "127.0.0.1" not in r.text


def test_the_password_is_never_shown_and_a_failure_is_logged_once(gateway, backend, redis, monkeypatch):
    """A Redis that refuses the login: every check falls back, the warning is written once (not
    per request, not per retry), and the password appears neither in the log nor in /config."""
    password = "pw-that-must-never-show"
    monkeypatch.setenv("GH_TEST_REDIS_PASSWORD", password)
    host, port = backend
    yaml = EDGE.format(host=host, port=port, redis=redis[1], on_failure="local").replace(
        "    timeout: 300ms\n",
        "    timeout: 300ms\n    username: edge\n    password: ${GH_TEST_REDIS_PASSWORD}\n",
    )
    gw = gateway("gatehouse-edge", yaml)
    addr = gw.listeners["public"]
    statuses = []
    with httpx.Client(base_url=f"http://{addr}") as c:
        # Over 1.5 s: the store is tried again (every 500 ms) and refuses each time.
        for _ in range(15):
            statuses.append(c.get("/api/x", headers={"x-tenant": f"t{len(statuses)}"}).status_code)
            time.sleep(0.1)
        config = httpx.get(f"http://{gw.admin}/config").text
    assert statuses == [200] * 15, statuses
    records = list(gw.records)
    warnings = [r for r in records if r.get("message", "").startswith("rate-limit store unavailable")]
    assert len(warnings) == 1, [r.get("message") for r in records]
    assert "WRONGPASS" in warnings[0].get("error", "") or "auth" in warnings[0].get("error", "").lower(), warnings
    assert password not in json.dumps(records)
    assert password not in config
    assert '"redis"' in config
