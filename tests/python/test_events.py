"""The event-driven handlers of the built gatehouse-internal binary (docs/events.md) against a real
`nats-server`, seen by clients we did not write: httpx (HTTP/2 and HTTP/1.1, its streaming API
for the server-sent events) as the edge, and nats-py, the official NATS Python client, as the
worker. internal/tests/events.rs checks the same handlers with async-nats, the client the gateway
itself uses; a second client reading and writing the broker shows that what the gateway stores
(headers, de-duplication, the key-value layout of job states, stream sequences as event ids) is
what any NATS client sees, not only one that shares its library.

Each stack is its own `nats-server` (JetStream, TLS with a certificate from `gatehouse-certs init
--service nats`, users `gateway` and `worker` with the permissions of docs/events.md) on a free
port of 127.0.0.1, and a gateway whose `internal.events` points at it. The gateway has one
listener, `mesh` (mTLS): the clients present the edge's certificate and send
`x-gatehouse-subject` as the edge would, so `alice` and `bob` are two callers.

1. `publish`: 202 once stored; the message nats-py reads from the stream; a repeated key is the
   same job and no second message; refusals.
2. `job_status`: the state the worker writes with nats-py's key-value API, shown to its owner
   only.
3. `event_stream`: server-sent events read with httpx's streaming API, the caller's own only,
   ids that are the stream's sequences, keep-alive comments, resuming with `Last-Event-ID`.
4. The broker away: 503 with `Retry-After`, readiness waiting for the broker at start only,
   and 202 again once the broker is back on the same port and store.

Without `nats-server` the tests skip, except under CI=true, where they fail.
"""

import asyncio
import json
import os
import queue
import re
import shutil
import socket
import ssl
import subprocess
import time

import httpx
import nats
import pytest

from conftest import Gateway, binary

EDGE_ID = "spiffe://gatehouse.local/gateway/edge"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
JOB_ID = re.compile(r"[0-9a-f]{32}")

# The users of docs/events.md ("NATS permissions"), as internal/tests/events.rs runs them.
GATEWAY_PERMISSIONS = ('publish: { allow: ["orders.requests", "$JS.API.>", "$KV.JOBS.>", '
                       '"$JS.FC.>"] }, subscribe: { allow: ["_INBOX.>"] }')
WORKER_PERMISSIONS = ('publish: { allow: ["$JS.API.>", "$JS.ACK.>", "$KV.JOBS.>", '
                      '"orders.events.>"], deny: ["orders.requests"] }, '
                      'subscribe: { allow: ["_INBOX.>"] }')
USERS = {"gateway": ("gw-secret", GATEWAY_PERMISSIONS), "worker": ("wk-secret", WORKER_PERMISSIONS)}


# --- the broker --------------------------------------------------------------------------------


def nats_binary():
    """`nats-server` on the PATH or where Debian installs it; skip (fail under CI) without it."""
    found = shutil.which("nats-server")
    for path in ("/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if found is None and os.access(path, os.X_OK):
            found = path
    if found is None:
        message = "nats-server is not installed (Debian: apt-get install nats-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; it is required under CI=true")
        pytest.skip(f"{message}: the event tests need a real broker")
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """One `nats-server` process: its port and JetStream store stay the same across restarts."""

    def __init__(self, directory, certs):
        self.binary = nats_binary()
        self.port = free_port()
        self.url = f"tls://127.0.0.1:{self.port}"
        self.log = directory / "nats.log"
        self.conf = directory / "nats.conf"
        users = "\n".join(
            f'  {{ user: "{user}", password: "{password}", permissions: {{ {permissions} }} }}'
            for user, (password, permissions) in USERS.items())
        self.conf.write_text(f"""
listen: "127.0.0.1:{self.port}"
server_name: gatehouse-events-test
jetstream {{ store_dir: "{directory / 'js'}" }}
tls {{
  cert_file: "{certs / 'nats.pem'}"
  key_file: "{certs / 'nats-key.pem'}"
  ca_file: "{certs / 'ca.pem'}"
  timeout: 2
}}
authorization {{ users: [
{users}
] }}
""")
        self.proc = None

    def start(self):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.025)
        self.kill()
        pytest.fail(f"nats-server did not listen on {self.port}:\n{self.log.read_text()[-2000:]}")

    def stop(self):
        """SIGTERM, as a service manager stops it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def worker(stack, work):
    """Runs `await work(js)` as the worker: nats-py connected with TLS (the dev CA) as `worker`,
    its JetStream context. One connection per call: the tests are synchronous."""

    async def run():
        tls = ssl.create_default_context(cafile=str(stack.certs / "ca.pem"))
        nc = await nats.connect(stack.nats.url, tls=tls, user="worker", password="wk-secret",
                                connect_timeout=2, allow_reconnect=False)
        try:
            return await work(nc.jetstream(timeout=3))
        finally:
            await nc.close()

    return asyncio.run(run())


def stream_state(stack, name):
    async def work(js):
        return (await js.stream_info(name)).state

    return worker(stack, work)


# --- the gateway -------------------------------------------------------------------------------


def gateway_yaml(certs, nats_url):
    return f"""
listeners:
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
  events:
    url: "{nats_url}"
    tls: {{ ca: "{certs}/ca.pem" }}
    user: gateway
    password: gw-secret
    streams:
      - {{ name: ORDER_REQUESTS, subjects: [orders.requests] }}
      - {{ name: ORDER_EVENTS, subjects: ["orders.events.>"] }}
    buckets:
      - {{ name: JOBS }}
routes:
  - name: async
    match: {{ path: /async/orders, methods: [POST] }}
    handler:
      publish: {{ subject: orders.requests, location: "/jobs/{{job_id}}", bucket: JOBS }}
  - name: jobs
    match: {{ path_template: "/jobs/{{job_id}}", methods: [GET] }}
    handler:
      job_status: {{ bucket: JOBS }}
  - name: events
    match: {{ path: /events, methods: [GET] }}
    handler:
      event_stream: {{ stream: ORDER_EVENTS, subject: "orders.events.>", keep_alive: 300ms }}
services: {{}}
"""


def readyz(gw):
    return httpx.get(f"http://{gw.admin}/readyz", timeout=2).status_code


def wait_ready(gw, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if readyz(gw) == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"/readyz did not answer 200 within {seconds}s")


class Stack:
    """A broker, a gateway pointed at it, and the certificates of both."""


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    out = tmp_path_factory.mktemp("events-certs")
    subprocess.run([binary("gatehouse-certs"), "init", "--dir", str(out), "--service", "nats"],
                   check=True, capture_output=True, timeout=60)
    return out


@pytest.fixture
def make_stack(tmp_path_factory, certs, request):
    """Builds a Stack: `nats-server` started first unless `broker_first=False` (then the test
    starts `stack.nats` itself); both stopped after the test, the broker killed if need be."""

    def make(broker_first=True):
        s = Stack()
        tmp = tmp_path_factory.mktemp("events")
        s.certs = certs
        s.nats = NatsServer(tmp, certs)
        request.addfinalizer(s.nats.stop)
        if broker_first:
            s.nats.start()
        config = tmp / "internal.yaml"
        config.write_text(gateway_yaml(certs, s.nats.url))
        s.gw = Gateway("gatehouse-internal", config)
        request.addfinalizer(s.gw.stop)
        s.mesh = s.gw.listeners["mesh"]
        if broker_first:
            wait_ready(s.gw)
        return s

    return make


@pytest.fixture(scope="module")
def stack(tmp_path_factory, certs):
    """The stack shared by the tests that leave the broker running."""
    tmp = tmp_path_factory.mktemp("events-shared")
    s = Stack()
    s.certs = certs
    s.nats = NatsServer(tmp, certs)
    s.gw = None
    try:
        s.nats.start()
        config = tmp / "internal.yaml"
        config.write_text(gateway_yaml(certs, s.nats.url))
        s.gw = Gateway("gatehouse-internal", config)
        s.mesh = s.gw.listeners["mesh"]
        wait_ready(s.gw)
        yield s
    finally:
        if s.gw is not None:
            s.gw.stop()
        s.nats.stop()
        s.nats.kill()


# --- clients -----------------------------------------------------------------------------------


def mesh_client(stack, subject, http2=True):
    """httpx on the mTLS listener as the edge, speaking for `subject`."""
    ctx = ssl.create_default_context(cafile=str(stack.certs / "ca.pem"))
    ctx.load_cert_chain(str(stack.certs / "edge.pem"), str(stack.certs / "edge-key.pem"))
    return httpx.Client(base_url=f"https://{stack.mesh}", verify=ctx, http1=not http2,
                        http2=http2, headers={"x-gatehouse-subject": subject},
                        timeout=httpx.Timeout(10, read=5))


def post_order(c, key, body=b'{"productId":"1001","quantity":1}', **headers):
    if key is not None:
        headers["idempotency-key"] = key
    return c.post("/async/orders", content=body,
                  headers={"content-type": "application/json", **headers})


def problem(r, status, kind):
    """A problem+json answer of `status` and type urn:gatehouse:problem:<kind>; its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body = r.json()
    assert body["status"] == status, body
    assert body["type"] == f"urn:gatehouse:problem:{kind}", body
    return body


def log_line(gw, message, **fields):
    """The next JSON log line with this message and these fields (5s at most)."""
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            line = gw.lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line.get("message") == message and all(line.get(k) == v for k, v in fields.items()):
            return line
    raise AssertionError(f"no log line {message!r} with {fields}")


class Sse:
    """Server-sent events read from an httpx streamed response: frames are the blocks between
    blank lines; an event is (id, event, data) with the data lines joined by "\\n"."""

    def __init__(self, response):
        self.chunks = response.iter_text()
        self.buf = ""

    def frame(self):
        while "\n\n" not in self.buf:
            self.buf += next(self.chunks)  # httpx.ReadTimeout after 5s of silence
        frame, self.buf = self.buf.split("\n\n", 1)
        return frame

    def events(self, want, seconds=5):
        """The next `want` events, skipping comments; fewer when `seconds` pass first."""
        found = []
        deadline = time.time() + seconds
        while len(found) < want and time.time() < deadline:
            frame = self.frame()
            if not frame.startswith(":"):
                found.append(parse_event(frame))
        return found


def parse_event(frame):
    fields = {"id": None, "event": None, "data": []}
    for line in frame.split("\n"):
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            fields["data"].append(value)
        elif name in fields:
            fields[name] = value
    return fields["id"], fields["event"], "\n".join(fields["data"])


# --- 1. publish --------------------------------------------------------------------------------


def test_publish_answers_202_once_stored_and_a_repeat_is_the_same_job(stack):
    # Spaces and a line break: the worker must get the body as sent, not re-serialized.
    order = b'{ "productId": "1001",\n  "quantity": 2 }'
    before = stream_state(stack, "ORDER_REQUESTS")
    with mesh_client(stack, "alice") as c:
        r = post_order(c, "order-1", order, traceparent=f"00-{TRACE}-{CALLER_SPAN}-01",
                       **{"x-request-id": "py-events-publish"})
        assert r.http_version == "HTTP/2"
        assert r.status_code == 202, r.text
        job = r.json()["job_id"]
        assert JOB_ID.fullmatch(job), job
        assert r.json() == {"job_id": job, "status": "accepted"}
        assert r.headers["location"] == f"/jobs/{job}"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-request-id"] == "py-events-publish"
        seq = before.last_seq + 1
        line = log_line(stack.gw, "request published", job_id=job)
        assert (line["stream"], line["sequence"], line["duplicate"]) == \
            ("ORDER_REQUESTS", seq, False), line

    # What the broker stored, read by nats-py through the JetStream API.
    async def read(js):
        return await js.get_msg("ORDER_REQUESTS", seq)

    msg = worker(stack, read)
    assert msg.subject == "orders.requests"
    assert msg.data == order
    h = msg.headers
    assert h["Nats-Msg-Id"] == job
    assert h["Gatehouse-Job-Id"] == job
    assert h["Gatehouse-Route"] == "async"
    assert h["x-gatehouse-subject"] == "alice"
    assert h["x-request-id"] == "py-events-publish"
    assert h["content-type"] == "application/json"
    version, trace, span, flags = h["traceparent"].split("-")
    assert (version, trace, flags) == ("00", TRACE, "01"), h["traceparent"]
    assert re.fullmatch(r"[0-9a-f]{16}", span) and span not in (CALLER_SPAN, "0" * 16), \
        "the message is a new span in the caller's trace"
    assert not any(k.lower() == "x-gatehouse-deadline-ms" for k in h), h

    # The same key again (over HTTP/1.1 this time): the same job; the broker dropped the copy.
    with mesh_client(stack, "alice", http2=False) as c:
        again = post_order(c, "order-1", order)
        assert again.http_version == "HTTP/1.1"
        assert again.status_code == 202, again.text
        assert again.json() == {"job_id": job, "status": "accepted"}
        assert again.headers["location"] == r.headers["location"]
        assert log_line(stack.gw, "request published", job_id=job)["duplicate"] is True
    after = stream_state(stack, "ORDER_REQUESTS")
    assert (after.messages, after.last_seq) == (before.messages + 1, seq), "one message"

    # Another caller's same key is another job.
    with mesh_client(stack, "bob") as c:
        theirs = post_order(c, "order-1", order)
        assert theirs.status_code == 202, theirs.text
        assert theirs.json()["job_id"] != job

    # Refusals before anything is published: no key, two keys, a body that is not JSON.
    with mesh_client(stack, "alice") as c:
        body = problem(post_order(c, None, order), 400, "bad-request")
        assert "Idempotency-Key" in body["detail"], body
        two = c.post("/async/orders", content=order,
                     headers=[("idempotency-key", "a"), ("idempotency-key", "b")])
        problem(two, 400, "bad-request")
        problem(post_order(c, "order-not-json", b"{not json"), 400, "bad-request")
    assert stream_state(stack, "ORDER_REQUESTS").messages == before.messages + 2


# --- 2. job_status -----------------------------------------------------------------------------


def test_job_status_shows_the_workers_outcome_to_its_owner_only(stack):
    with mesh_client(stack, "alice") as alice, mesh_client(stack, "bob") as bob:
        job = post_order(alice, "order-2").json()["job_id"]
        path = f"/jobs/{job}"
        r = alice.get(path)
        assert r.status_code == 200, r.text
        assert r.json() == {"job_id": job, "status": "accepted", "result": None, "error": None}
        assert r.headers["cache-control"] == "no-store"

        # The worker reads the state the gateway wrote (owner included), then completes the
        # job with a plain put, as docs/events.md's worker contract says.
        result = {"orderId": "o-1042", "totalCents": 15800}

        async def complete(js):
            kv = await js.key_value("JOBS")
            accepted = json.loads((await kv.get(job)).value)
            done = {"job_id": job, "status": "completed", "owner": "alice", "result": result,
                    "error": None}
            await kv.put(job, json.dumps(done).encode())
            return accepted

        accepted = worker(stack, complete)
        assert (accepted["job_id"], accepted["status"], accepted["owner"]) == \
            (job, "accepted", "alice"), accepted

        r = alice.get(path)
        assert r.status_code == 200, r.text
        assert r.json() == {"job_id": job, "status": "completed", "result": result,
                            "error": None}, "no owner in the answer"
        # A repeat of the request now answers the job's current state.
        assert post_order(alice, "order-2").json() == {"job_id": job, "status": "completed"}

        # Anyone else gets the same 404 as for a job that does not exist.
        theirs = problem(bob.get(path), 404, "not-found")
        assert theirs["detail"] == f"job {job} not found", theirs
        unknown = "0123456789abcdef0123456789abcdef"
        none = problem(alice.get(f"/jobs/{unknown}"), 404, "not-found")
        assert none["detail"] == f"job {unknown} not found", none
        per_request = ("detail", "instance", "request_id")
        assert {k: v for k, v in theirs.items() if k not in per_request} == \
            {k: v for k, v in none.items() if k not in per_request}
        problem(alice.get("/jobs/NOT-A-JOB"), 404, "not-found")

        # A worker that writes something that is not a job state: 502, not a made-up state.
        junk = "fedcba9876543210fedcba9876543210"

        async def write_junk(js):
            await (await js.key_value("JOBS")).put(junk, b'{"hello": "world"}')

        worker(stack, write_junk)
        problem(alice.get(f"/jobs/{junk}"), 502, "bad-upstream-response")


# --- 3. event_stream ---------------------------------------------------------------------------


def publish_events(stack, events):
    """nats-py publishes `(owner, payload)` events as the worker does; their stream sequences."""

    async def work(js):
        seqs = []
        for owner, payload in events:
            ack = await js.publish("orders.events.completed", payload.encode(),
                                   headers={"Gatehouse-Event": "order.completed",
                                            "x-gatehouse-subject": owner})
            assert ack.stream == "ORDER_EVENTS"
            seqs.append(ack.seq)
        return seqs

    return worker(stack, work)


def test_events_stream_to_their_owner_as_sse_and_resume_after_the_last_id(stack):
    first = json.dumps({"job_id": "a" * 32, "orderId": "o-1"})
    bobs = json.dumps({"job_id": "b" * 32, "orderId": "o-2"})
    # Pretty-printed: one `data:` line per payload line, joined again by the client.
    second = json.dumps({"job_id": "c" * 32, "orderId": "o-3"}, indent=2)
    with mesh_client(stack, "alice") as c:
        with c.stream("GET", "/events") as r:
            assert r.status_code == 200
            assert r.http_version == "HTTP/2"
            assert r.headers["content-type"] == "text/event-stream"
            assert r.headers["cache-control"] == "no-store"
            assert r.headers["x-accel-buffering"] == "no"
            sse = Sse(r)
            # The consumer exists once the retry hint arrived: events from now on are shown.
            assert sse.frame() == "retry: 2000"
            s1, s2, s3 = publish_events(stack, [("alice", first), ("bob", bobs),
                                                ("alice", second)])
            assert s1 < s2 < s3
            events = sse.events(2)
            assert events == [(str(s1), "order.completed", first),
                              (str(s3), "order.completed", second)], "bob's is not alice's"
            # Quiet now: keep-alive comments, about every 300ms.
            start = time.time()
            assert sse.frame() == ": keep-alive"
            assert sse.frame() == ": keep-alive"
            assert 0.2 < time.time() - start < 2, time.time() - start

    # Reconnecting with the first id (HTTP/1.1 this time): only what came after it.
    with mesh_client(stack, "alice", http2=False) as c:
        with c.stream("GET", "/events", headers={"last-event-id": str(s1)}) as r:
            assert r.status_code == 200
            assert r.http_version == "HTTP/1.1"
            sse = Sse(r)
            assert sse.frame() == "retry: 2000"
            assert sse.events(1) == [(str(s3), "order.completed", second)]
            assert sse.frame() == ": keep-alive", "nothing else of alice's in the stream"
        problem(c.get("/events", headers={"last-event-id": "x"}), 400, "bad-request")
        problem(c.get("/events", headers={"last-event-id": "-1"}), 400, "bad-request")
    # bob sees his own, resuming from the start of the stream.
    with mesh_client(stack, "bob") as c:
        with c.stream("GET", "/events", headers={"last-event-id": "0"}) as r:
            sse = Sse(r)
            assert sse.frame() == "retry: 2000"
            assert sse.events(1) == [(str(s2), "order.completed", bobs)]


# --- 4. the broker away ------------------------------------------------------------------------


def test_broker_away_answers_503_with_retry_after_then_202_again(make_stack):
    # The gateway starts before its broker: not ready until it has reached it.
    s = make_stack(broker_first=False)
    time.sleep(0.3)
    assert readyz(s.gw) == 503
    s.nats.start()
    wait_ready(s.gw)

    with mesh_client(s, "alice") as c:
        before = post_order(c, "before")
        assert before.status_code == 202, before.text
        job = before.json()["job_id"]

        s.nats.stop()
        for r in (post_order(c, "down-1"), post_order(c, "down-2"), c.get(f"/jobs/{job}"),
                  c.get("/events")):
            body = problem(r, 503, "broker-unavailable")
            assert r.headers["retry-after"] == "2", (r.request.url, r.headers)
            assert body["title"] == "Event broker unavailable", body
            assert body["detail"].startswith("event broker unavailable: "), body
        # Readiness was about the start: the gateway stays ready.
        assert readyz(s.gw) == 200

        s.nats.start()  # the same port, the same store
        deadline = time.time() + 10
        while True:
            r = post_order(c, "down-1")
            if r.status_code == 202 or time.time() > deadline:
                break
            problem(r, 503, "broker-unavailable")
            time.sleep(0.1)
        assert r.status_code == 202, f"no 202 within 10s of the broker's return: {r.text}"
        # What was stored before the outage is still there.
        r = c.get(f"/jobs/{job}")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "accepted"
