"""Issue 15's transcoding figures (bench/transcode.sh; bench/README.md, "Transcoding").

One gatehouse-internal (bench/configs/gatehouse-transcode.yaml) pinned to core 0, in front of
one gRPC service (bench/transcode/grpc_backend.rs: `gatehouse.bench.v1.Bench`, unary calls
answered at once, a server stream of N messages); the service, h2load and this script on
core 1. All load is h2c (HTTP/2, prior knowledge), so REST and gRPC differ only by the
transcoding.

1. CPU µs per unary call: REST JSON through `rest_to_grpc` (POST /v1/orders with a JSON body;
   GET /v1/orders/{id}) vs the same methods as gRPC passthrough through a plain `service:`
   route (h2load with the framed protobuf, `content-type: application/grpc`, `te: trailers`),
   and straight at the service (its own cost, no gateway). `h2load -t1 -c10 -m10`; the gateway's
   utime+stime over the cell ÷ calls completed.
2. Streamed messages per second: ListOrders answering N messages per call, as NDJSON through the
   transcoder vs as gRPC passthrough; `h2load -t1 -c4 -m1`; messages/s = calls completed × N ÷
   seconds, and the gateway's CPU µs per message.
3. Memory while streaming, on a freshly started gateway: its RSS before, during (sampled every
   0.5 s, with the messages the service has sent) and after (a) 4 endless NDJSON streams read
   slowly (64 KiB/s each, HTTP/1.1, this script's own client), then (b) 4 read as fast as h2load
   can (h2c). Both end with the client going away mid-stream: afterwards the gateway's
   `gatehouse_in_flight_requests` and the service's open streams are read (both should be 0).
4. The upstream GOAWAY check (--goaway-rounds): rounds of gRPC passthrough calls on a fresh
   gateway, all finished vs each round stopped with calls in flight, until the gateway's
   connection to the service ends with `GOAWAY ENHANCE_YOUR_CALM too_many_data_frames`.

Before every measured cell it waits until the machine is quiet: no process named cargo, rustc,
clippy-driver or cargo-clippy, and none running pytest (checked from /proc, every 30 s, at most
--quiet-wait seconds in all); it records what it saw, and measures, as the harness does, the
CPU time other processes took on each core during the cell (noise).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, BENCH)

from harness import load, system  # noqa: E402
from harness.targets import CONFIGS, LOAD_CPU, PROXY_CPU, REPO, nofile  # noqa: E402

PORTS = ["BACKEND_H2C", "INTERNAL_PLAIN", "INTERNAL_ADMIN"]
SERVICE = "/gatehouse.bench.v1.Bench/"
GRPC_HEADERS = ["content-type: application/grpc", "te: trailers"]
ENDLESS = 100_000_000  # the service's cap: a stream no cell reaches the end of

# (key, what, how it is called: path, request body file or None, headers, through the gateway)
UNARY_CELLS = [
    ("rest-create", "REST `POST /v1/orders` JSON body → `rest_to_grpc` → CreateOrder",
     "/v1/orders", "create.json", ["content-type: application/json"], True),
    ("grpc-create", "gRPC CreateOrder, passthrough (`service:` route)",
     SERVICE + "CreateOrder", "create.grpc", GRPC_HEADERS, True),
    ("rest-get", "REST `GET /v1/orders/o-1` → `rest_to_grpc` → GetOrder",
     "/v1/orders/o-1", None, [], True),
    ("grpc-get", "gRPC GetOrder, passthrough (`service:` route)",
     SERVICE + "GetOrder", "get.grpc", GRPC_HEADERS, True),
    ("direct-create", "gRPC CreateOrder straight at the service (no gateway)",
     SERVICE + "CreateOrder", "create.grpc", GRPC_HEADERS, False),
]


def stream_cells(n):
    return [
        ("rest-stream", f"REST `GET /v1/orders?count={n}`, NDJSON → `rest_to_grpc` → ListOrders",
         f"/v1/orders?count={n}", None, ["accept: application/x-ndjson"], True),
        ("grpc-stream", f"gRPC ListOrders(count={n}), passthrough (`service:` route)",
         SERVICE + "ListOrders", f"list-{n}.grpc", GRPC_HEADERS, True),
    ]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/transcode.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs of every cell; medians (3)")
    p.add_argument("--duration", type=int, default=10, help="seconds per CPU cell (10)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per cell (2)")
    p.add_argument("--clients", type=int, default=10, help="h2load connections, unary (10)")
    p.add_argument("--streams", type=int, default=10, help="h2load streams per connection, unary (10)")
    p.add_argument("--stream-messages", type=int, default=1000,
                   help="messages per call in the streaming cells (1000)")
    p.add_argument("--stream-clients", type=int, default=4,
                   help="h2load connections (one call each at a time), streaming (4)")
    p.add_argument("--memory-streams", type=int, default=4, help="concurrent endless streams (4)")
    p.add_argument("--memory-duration", type=int, default=15, help="seconds per memory cell (15)")
    p.add_argument("--slow-rate", type=int, default=64, help="KiB/s each slow reader takes (64)")
    p.add_argument("--quiet-wait", type=int, default=2400,
                   help="seconds, in all, to wait for running compilers/pytest (2400)")
    p.add_argument("--only", choices=["cpu", "memory"], default=None,
                   help="only the CPU cells (figures 1, 2) or only the memory cells (figure 3)")
    p.add_argument("--goaway-rounds", type=int, default=20,
                   help="rounds of the upstream GOAWAY check (0: skip it) (20)")
    p.add_argument("--profile", action="store_true",
                   help="after the cells, `perf record` the gateway for one cell of each kind "
                        "(rest-create, grpc-create, rest-stream, grpc-stream); top symbols in the "
                        "report")
    p.add_argument("--bin-dir", default=os.path.join(REPO, "target", "release"),
                   help="gatehouse-internal and examples/transcode-bench-backend (target/release)")
    p.add_argument("--out", default=None, help="output directory (bench/out/transcode-<time>)")
    p.add_argument("--max-minutes", type=int, default=75, help="hard bound on the whole run")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (configs, the processes' logs)")
    return p.parse_args(argv)


def sh(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


# --- the quiet machine ------------------------------------------------------------------------

BUSY_NAMES = {"cargo", "rustc", "clippy-driver", "cargo-clippy"}


def busy_processes():
    """Compilers (by process name) and pytest runs (by command line), as 'pid name'. Matched on
    the name and the arguments, not the whole command line as `pgrep -f` would, which also
    matches shells whose PATH merely contains `.cargo`."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        names = {os.path.basename(a) for a in args[:3]}
        if comm in BUSY_NAMES or (comm.startswith("python") or comm == "pytest") and (
                "pytest" in names or "py.test" in names
                or any(a == "-m" and b == "pytest" for a, b in zip(args, args[1:]))):
            found.append(f"{entry} {comm} {' '.join(args)[:120]}")
    return found


class Quiet:
    """Waits for a quiet machine before each cell, polling every 30 s, within a total budget."""

    def __init__(self, budget):
        self.left = budget

    def wait(self):
        start = time.monotonic()
        while True:
            found = busy_processes()
            waited = time.monotonic() - start
            if not found or waited >= self.left:
                self.left = max(0.0, self.left - waited)
                return round(waited, 1), found
            print(f"quiet check: waiting, running: {found[:3]}", flush=True)
            time.sleep(min(30.0, max(1.0, self.left - waited)))


# --- the lab ----------------------------------------------------------------------------------

class Lab:
    def __init__(self, workdir, bin_dir):
        self.dir = workdir
        self.bin = bin_dir
        self.procs = []
        self.ports = dict(zip(PORTS, system.free_ports(len(PORTS))))

    def render(self, template):
        text = open(os.path.join(CONFIGS, template)).read()
        for key, value in dict(self.ports, DIR=self.dir, NOFILE=nofile()).items():
            text = text.replace(f"@{key}@", str(value))
        path = os.path.join(self.dir, template)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_backend(self):
        self.backend = self._start("backend", [
            os.path.join(self.bin, "transcode-bench-backend"), "serve",
            str(self.ports["BACKEND_H2C"])], LOAD_CPU)
        system.wait_port(self.ports["BACKEND_H2C"], self.backend)

    def start_gateway(self, name="gatehouse-internal"):
        shutil.copy2(os.path.join(CONFIGS, "transcode-bench.proto"), self.dir)
        self.gateway = self._start(name, [
            os.path.join(self.bin, "gatehouse-internal"), "--config",
            self.render("gatehouse-transcode.yaml")], PROXY_CPU)
        system.wait_port(self.ports["INTERNAL_PLAIN"], self.gateway)
        system.wait_ready(self.ports["INTERNAL_ADMIN"], self.gateway)

    def stop_gateway(self):
        self.gateway.stop()
        self.procs.remove(self.gateway)

    def _start(self, name, argv, cpu):
        proc = system.Proc(name, argv, cpu, self.dir)
        self.procs.append(proc)
        return proc

    def url(self, path, gateway=True):
        port = self.ports["INTERNAL_PLAIN" if gateway else "BACKEND_H2C"]
        return f"http://127.0.0.1:{port}{path}"

    def backend_stats(self):
        with urllib.request.urlopen(self.url("/stats", gateway=False), timeout=5) as r:
            return json.loads(r.read())

    def metrics(self):
        """The gateway's metrics lines of interest (in-flight gauge, responses by status)."""
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.ports['INTERNAL_ADMIN']}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError as e:
            return {"error": repr(e)}
        out = {}
        for line in text.splitlines():
            if line.startswith("gatehouse_in_flight_requests "):
                out["in_flight"] = float(line.split()[1])
            elif line.startswith(("gatehouse_requests_total", "gatehouse_responses_total",
                                  "gatehouse_upstream_overloaded_total",
                                  "gatehouse_upstream_requests_total")) and "{" in line:
                out[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1])
        return out

    def rss_kib(self):
        return system.rss_kib(self.gateway.pids())

    def stop(self):
        for proc in reversed(self.procs):
            proc.stop()
        self.procs = []


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def check(lab, files, n):
    """What each call answers, before any measurement: the figures mean nothing otherwise."""
    seen = {}
    status, h, body = http("POST", lab.url("/v1/orders"),
                           open(os.path.join(files, "create.json"), "rb").read(),
                           {"content-type": "application/json"})
    seen["rest-create"] = {"status": status, "content-type": h.get("content-type"),
                           "body": body.decode()}
    want = {"orderId": "o-1", "productId": "p-1", "quantity": 2, "customer": "bench-customer",
            "unitPriceCents": "1999", "status": "CONFIRMED"}
    if status != 200 or json.loads(body) != want:
        raise SystemExit(f"check: POST /v1/orders answered {status}: {body[:300]!r}")
    status, h, body = http("GET", lab.url("/v1/orders/o-1"))
    seen["rest-get"] = {"status": status, "body": body.decode()}
    if status != 200 or json.loads(body) != want:
        raise SystemExit(f"check: GET /v1/orders/o-1 answered {status}: {body[:300]!r}")
    status, h, body = http("GET", lab.url(f"/v1/orders?count={n}"),
                           headers={"accept": "application/x-ndjson"})
    lines = body.decode().splitlines()
    seen["rest-stream"] = {"status": status, "content-type": h.get("content-type"),
                           "messages": len(lines), "body_bytes": len(body),
                           "first": lines[0] if lines else None,
                           "last": lines[-1] if lines else None}
    if (status != 200 or len(lines) != n or json.loads(lines[-1])["orderId"] != f"o-{n - 1}"
            or h.get("content-type") != "application/x-ndjson"):
        raise SystemExit(f"check: the NDJSON stream is not {n} orders: {seen['rest-stream']}")
    # gRPC through the passthrough route, with a real gRPC client (tonic): statuses in trailers.
    out, rc = system.run_bounded([os.path.join(lab.bin, "transcode-bench-backend"), "check",
                                  lab.url(""), str(n)], 60, LOAD_CPU)
    seen["grpc"] = out.strip()
    if rc != 0:
        raise SystemExit(f"check: gRPC through the gateway failed: {out}")
    seen["backend"] = lab.backend_stats()
    return seen


# --- one measured cell ------------------------------------------------------------------------

def snapshot(lab):
    return {
        "gw": system.cpu_ticks(lab.gateway.pids()),
        "backend": system.cpu_ticks(lab.backend.pids()),
        "core0": system.cpu_stat(PROXY_CPU),
        "core1": system.cpu_stat(LOAD_CPU),
        "load_s": _own_cpu_s(),
        "stats": lab.backend_stats(),
        "t": time.monotonic(),
    }


def _own_cpu_s():
    import resource
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return c.ru_utime + c.ru_stime + s.ru_utime + s.ru_stime


def measured(lab, quiet, run_load):
    """One measured load run with the quiet check, the counters and the noise around it."""
    waited, left = quiet.wait()
    a = snapshot(lab)
    res = run_load()
    b = snapshot(lab)
    tick_us = 1e6 / system.CLK_TCK
    d = {k: b[k] - a[k] for k in ("gw", "backend", "load_s")}
    p_busy, p_total, p_steal = (y - x for x, y in zip(a["core0"], b["core0"]))
    l_busy, l_total, _ = (y - x for x, y in zip(a["core1"], b["core1"]))
    ours1 = d["backend"] + d["load_s"] * system.CLK_TCK
    wall = b["t"] - a["t"]
    stats = {k: b["stats"][k] - a["stats"][k] for k in b["stats"] if k != "streams_open"}
    stats["streams_open_after"] = b["stats"]["streams_open"]
    res.update(
        wall_s=round(wall, 2),
        gw_cpu_s=d["gw"] / system.CLK_TCK,
        gw_cpu_pct=100.0 * d["gw"] * tick_us / 1e6 / wall,
        backend_cpu_s=d["backend"] / system.CLK_TCK,
        backend=stats,
        noise_core0_pct=max(0.0, 100.0 * (p_busy - d["gw"]) / max(1, p_total)),
        noise_core1_pct=max(0.0, 100.0 * (l_busy - ours1) / max(1, l_total)),
        steal_core0_pct=100.0 * p_steal / max(1, p_total),
        quiet_waited_s=waited,
        busy_at_start=left,
        busy_at_end=busy_processes(),
        gw_rss_kib_after=lab.rss_kib(),
        gw_metrics_after=lab.metrics(),
    )
    return res


def h2load(url, duration, clients, streams, body=None, headers=(), n=None):
    """h2load over h2c, one thread: timing-based (-D) or, with n, a fixed number of calls."""
    argv = ["h2load", "-t1", f"-c{clients}", f"-m{streams}"]
    argv += ["-n", str(n)] if n else ["-D", str(duration)]
    for h in headers:
        argv += ["-H", h]
    if body:
        argv += ["-d", body]
    out, rc = system.run_bounded(argv + [url], duration + 30, LOAD_CPU)
    res = load.parse_h2load(out, rc)
    m = __import__("re").search(r"traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?"
                                r"\((\d+)\) data", out)
    if m:
        res["bytes_total"], res["bytes_headers"], res["bytes_data"] = (int(x) for x in m.groups())
    res["argv"] = " ".join(argv + [url])
    return res


# --- memory while streaming -------------------------------------------------------------------

class Sampler:
    """The gateway's RSS and the messages the service has sent, every `every` s in a thread,
    until stopped."""

    def __init__(self, lab, every=0.5):
        self.lab, self.every, self.samples = lab, every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start = time.monotonic()
        while not self._stop.is_set():
            try:
                sent = self.lab.backend_stats()["messages"]
            except OSError:
                sent = None
            self.samples.append((round(time.monotonic() - start, 2), self.lab.rss_kib(), sent))
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def slow_reader(port, path, rate_kib, duration, result):
    """HTTP/1.1 GET of an NDJSON stream, read at `rate_kib` KiB/s for `duration` s, then the
    connection is closed mid-stream. Records the status line, the bytes and the messages read."""
    deadline = time.monotonic() + duration
    got, lines, head, last = 0, 0, b"", b""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/x-ndjson\r\n\r\n"
                  .encode())
        chunk = max(1024, rate_kib * 1024 // 10)
        while time.monotonic() < deadline:
            t = time.monotonic()
            data = s.recv(chunk)
            if not data:
                break
            if not head:
                head = data[:data.find(b"\r\n\r\n")] if b"\r\n\r\n" in data else data[:200]
            got += len(data)
            # Messages end in `}\n` (then the chunk's CRLF): one may straddle two reads.
            lines += (last + data).count(b"}\n")
            last = data[-1:]
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
        s.close()
    except OSError as e:
        result["error"] = repr(e)
    result.update(status_line=head.split(b"\r\n")[0].decode("latin-1"), bytes=got, messages=lines)


def memory_cell(lab, quiet, opts, kind):
    """`kind` fast (h2load) or slow (this script's HTTP/1.1 readers): RSS before/during/after."""
    path = f"/v1/orders?count={ENDLESS}"
    waited, left = quiet.wait()
    before = lab.rss_kib()
    stats0 = lab.backend_stats()
    gw0 = system.cpu_ticks(lab.gateway.pids())
    core0 = system.cpu_stat(PROXY_CPU)
    t0 = time.monotonic()
    with Sampler(lab) as sampler:
        time.sleep(1.0)
        if kind == "fast":
            res = h2load(lab.url(path), opts.memory_duration, opts.memory_streams, 1,
                         headers=["accept: application/x-ndjson"])
        else:
            results = [{} for _ in range(opts.memory_streams)]
            threads = [threading.Thread(target=slow_reader, args=(
                lab.ports["INTERNAL_PLAIN"], path, opts.slow_rate, opts.memory_duration, r))
                for r in results]
            for t in threads:
                t.start()
            for t in threads:
                t.join(opts.memory_duration + 30)
            res = {"readers": results,
                   "reader_messages_per_s": sum(r.get("messages", 0) for r in results)
                   / opts.memory_duration}
        stats1 = lab.backend_stats()
        wall = time.monotonic() - t0
        time.sleep(3.0)  # the gateway notices the closed streams and lets them go
    gw1 = system.cpu_ticks(lab.gateway.pids())
    core1 = system.cpu_stat(PROXY_CPU)
    after = lab.rss_kib()
    stats2 = lab.backend_stats()
    during = [kib for t, kib, _ in sampler.samples if 1.5 <= t <= 1.0 + opts.memory_duration]
    # The service's send rate over the last 5 s of the streams: with backpressure it falls to
    # what the readers take.
    tail = [(t, sent) for t, _, sent in sampler.samples
            if sent is not None and opts.memory_duration - 4.0 <= t <= opts.memory_duration + 1.0]
    tail_rate = ((tail[-1][1] - tail[0][1]) / (tail[-1][0] - tail[0][0])
                 if len(tail) >= 2 and tail[-1][0] > tail[0][0] else None)
    p_busy, p_total, _ = (y - x for x, y in zip(core0, core1))
    msgs = stats1["messages"] - stats0["messages"]
    res.update(
        kind=kind,
        rss_before_kib=before,
        rss_during_median_kib=statistics.median(during) if during else None,
        rss_during_max_kib=max(during) if during else None,
        rss_during_first_kib=during[0] if during else None,
        rss_during_last_kib=during[-1] if during else None,
        rss_after_kib=after,
        samples=sampler.samples,
        backend_messages=msgs,
        backend_messages_per_s=msgs / wall,
        backend_messages_per_s_last_5s=tail_rate,
        gw_cpu_us_per_message=((gw1 - gw0) * 1e6 / system.CLK_TCK / msgs) if msgs else None,
        backend_streams_open_during=stats1["streams_open"],
        backend_streams_open_after=stats2["streams_open"],
        backend_streams_dropped=stats2["streams_dropped"] - stats0["streams_dropped"],
        gw_metrics_after=lab.metrics(),
        noise_core0_pct=max(0.0, 100.0 * (p_busy - (gw1 - gw0)) / max(1, p_total)),
        quiet_waited_s=waited,
        busy_at_start=left,
        busy_at_end=busy_processes(),
    )
    return res


# --- the upstream GOAWAY check ----------------------------------------------------------------

def goaway_check(lab, files, opts):
    """gRPC passthrough calls in rounds on a fresh gateway, each round either letting every call
    finish (`h2load -n`) or stopping with ~100 calls in flight (`h2load -D 1`, as every timed
    load run ends): does the gateway's upstream HTTP/2 connection end with `GOAWAY
    ENHANCE_YOUR_CALM too_many_data_frames` (h2's small-DATA-frame budget), and what follows?
    Stops at the first such line in the gateway's log."""
    out = {}
    url = lab.url(SERVICE + "CreateOrder")
    body = os.path.join(files, "create.grpc")
    for mode in ("complete", "abandon"):
        name = f"gatehouse-internal-goaway-{mode}"
        lab.stop_gateway()
        lab.start_gateway(name)
        log = os.path.join(lab.dir, f"{name}.log")
        s0 = lab.backend_stats()["create"]
        rounds, calls, succeeded, first = [], 0, 0, None
        for i in range(1, opts.goaway_rounds + 1):
            if mode == "complete":
                res = h2load(url, 20, opts.clients, opts.streams, body, GRPC_HEADERS, n=30000)
            else:
                res = h2load(url, 1, opts.clients, opts.streams, body, GRPC_HEADERS)
            m = __import__("re").search(r"requests: .*", res["raw"])
            rounds.append(m.group(0) if m else res["raw"][-300:])
            calls += res["requests"]
            time.sleep(0.3)
            with open(log, errors="replace") as f:
                if "too_many_data_frames" in f.read():
                    first = i
                    break
        time.sleep(1.0)
        out[mode] = {
            "rounds": len(rounds),
            "goaway_in_round": first,
            "h2load": rounds,
            "calls_done_h2load": calls,
            "calls_at_service": lab.backend_stats()["create"] - s0,
            "log": log_summary(log),
            "metrics": lab.metrics(),
        }
        print(f"goaway check, {mode}: {len(rounds)} rounds, too_many_data_frames "
              f"{'in round ' + str(first) if first else 'never'}; log "
              f"{out[mode]['log'].get('lines')} lines", flush=True)
    return out


# --- profile ----------------------------------------------------------------------------------

def profile(lab, opts, files, cells, out_dir):
    perf = shutil.which("perf")
    if not perf:
        return {"error": "perf not found (apt-get install linux-perf)"}
    found = {}
    for key, _what, path, body, headers, _gw in cells:
        data = os.path.join(out_dir, f"perf-{key}.data")
        pids = ",".join(str(p) for p in lab.gateway.pids())
        clients, streams = ((opts.stream_clients, 1) if "stream" in key
                            else (opts.clients, opts.streams))
        bodyfile = os.path.join(files, body) if body else None
        h2load(lab.url(path), opts.warmup, clients, streams, bodyfile, headers)
        rec = subprocess.Popen(
            ["taskset", "-c", str(LOAD_CPU), perf, "record", "-F", "999", "-g", "-o", data,
             "-p", pids, "--", "sleep", str(opts.duration)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        h2load(lab.url(path), opts.duration, clients, streams, bodyfile, headers)
        try:
            rec.wait(opts.duration + 30)
        except subprocess.TimeoutExpired:
            rec.kill()
            rec.wait()
        text = os.path.join(out_dir, f"perf-{key}.txt")
        with open(text, "w") as f:
            subprocess.run([perf, "report", "-i", data, "--no-children", "--stdio",
                            "--percent-limit", "0.7", "-g", "none", "--sort", "dso,symbol"],
                           stdout=f, stderr=subprocess.DEVNULL, timeout=300)
        top = [line.rstrip() for line in open(text)
               if line.strip() and not line.startswith("#")][:25]
        found[key] = {"report": text, "top": top}
    return found


def log_summary(path, top=10):
    """The gateway's log lines (warnings and errors at `log_level: warn`), counted by level,
    message and error (durations blanked out), most frequent first."""
    import collections
    import re
    counts = collections.Counter()
    try:
        with open(path, errors="replace") as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    counts[("?", re.sub(r"\d+", "N", line.strip())[:200], "")] += 1
                    continue
                error = re.sub(r"\b\d+(\.\d+)?(ms|s)\b", "N s", str(d.get("error", "")))[:240]
                counts[(d.get("level", "?"), d.get("message", "?"), error)] += 1
    except OSError as e:
        return {"error": repr(e)}
    return {"lines": sum(counts.values()),
            "top": [{"count": n, "level": k[0], "message": k[1], "error": k[2]}
                    for k, n in counts.most_common(top)]}


# --- the report -------------------------------------------------------------------------------

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rng(values):
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else (None, None)


def fmt(v, spec=".1f"):
    return "—" if v is None else format(v, spec)


def mr(values, spec=".1f"):
    lo, hi = rng(values)
    return f"{fmt(med(values), spec)} ({fmt(lo, spec)}–{fmt(hi, spec)})"


def summarize(results):
    lines = []
    runs = results["runs"]
    if runs:
        summarize_cpu(results, lines)
    if results["memory"]:
        summarize_memory(results, lines)
    summarize_goaway(results, lines)
    summarize_end(results, lines)
    return "\n".join(lines)


def summarize_cpu(results, lines):
    o = results["opts"]
    n = o["stream_messages"]
    runs = results["runs"]
    lines.append(f"### 1. Unary calls: CPU per call (`h2load -t1 -c{o['clients']} -m{o['streams']}`"
                 f", h2c, {o['duration']} s per cell, {len(runs)} runs; median (min–max))")
    lines.append("")
    lines.append("| call | calls/s | gateway CPU µs/call | service CPU µs/call | service calls / "
                 "client call | errors | noise core 0 / core 1 (max) |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for key, what, *_rest in UNARY_CELLS:
        cells = [r[key] for r in runs if key in r]
        gw = [c["gw_cpu_s"] * 1e6 / c["requests"] if c["requests"] else None for c in cells]
        be = [c["backend_cpu_s"] * 1e6 / c["requests"] if c["requests"] else None for c in cells]
        calls = [sum(c["backend"][k] for k in ("create", "get")) / c["requests"]
                 if c["requests"] else None for c in cells]
        gw_col = mr(gw) if key != "direct-create" else "— (no gateway)"
        lines.append(f"| {what} | {mr([c['rps'] for c in cells], ',.0f')} | {gw_col} | {mr(be)} "
                     f"| {fmt(med(calls), '.3f')} | {sum(c['errors'] for c in cells)} "
                     f"| {max(c['noise_core0_pct'] for c in cells):.1f}% / "
                     f"{max(c['noise_core1_pct'] for c in cells):.1f}% |")
    lines.append("")
    ratios = {}
    for rest, grpc, what in (("rest-create", "grpc-create", "REST POST (JSON body) / gRPC CreateOrder"),
                             ("rest-get", "grpc-get", "REST GET (path variable) / gRPC GetOrder")):
        v = [r[rest]["gw_cpu_s"] / r[rest]["requests"] / (r[grpc]["gw_cpu_s"] / r[grpc]["requests"])
             for r in runs if r[rest]["requests"] and r[grpc]["requests"] and r[grpc]["gw_cpu_s"]]
        d = [(r[rest]["gw_cpu_s"] / r[rest]["requests"] - r[grpc]["gw_cpu_s"] / r[grpc]["requests"])
             * 1e6 for r in runs if r[rest]["requests"] and r[grpc]["requests"]]
        ratios[what] = {"ratio": v, "extra_us": d}
    lines.append("| in-run comparison (per run, then median) | gateway CPU ratio | extra µs per call |")
    lines.append("|---|---:|---:|")
    for what, v in ratios.items():
        lines.append(f"| {what} | {mr(v['ratio'], '.2f')} | {mr(v['extra_us'], '+.1f')} |")
    results["ratios"] = ratios
    lines.append("")

    lines.append(f"### 2. Server streaming: {n} messages per call (`h2load -t1 "
                 f"-c{o['stream_clients']} -m1`, h2c, {o['duration']} s per cell, {len(runs)} runs)")
    lines.append("")
    lines.append("| call | calls/s | messages/s (client, whole calls) | messages/s (sent by the "
                 "service) | gateway CPU µs/message | gateway CPU % | body bytes/call | errors "
                 "| noise core 0 / core 1 (max) |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, what, *_rest in stream_cells(n):
        cells = [r[key] for r in runs if key in r]
        mps = [c["requests"] * n / c["wall_s"] for c in cells]
        sent = [c["backend"]["messages"] / c["wall_s"] for c in cells]
        us = [c["gw_cpu_s"] * 1e6 / c["backend"]["messages"] if c["backend"]["messages"] else None
              for c in cells]
        per = [c.get("bytes_data", 0) / c["requests"] if c["requests"] else None for c in cells]
        lines.append(f"| {what} | {mr([c['rps'] for c in cells], ',.0f')} | {mr(mps, ',.0f')} "
                     f"| {mr(sent, ',.0f')} | {mr(us, '.2f')} "
                     f"| {mr([c['gw_cpu_pct'] for c in cells], '.0f')} "
                     f"| {fmt(med(per), ',.0f')} | {sum(c['errors'] for c in cells)} "
                     f"| {max(c['noise_core0_pct'] for c in cells):.1f}% / "
                     f"{max(c['noise_core1_pct'] for c in cells):.1f}% |")
    v = [r["rest-stream"]["gw_cpu_s"] / r["rest-stream"]["backend"]["messages"]
         / (r["grpc-stream"]["gw_cpu_s"] / r["grpc-stream"]["backend"]["messages"])
         for r in runs if r["grpc-stream"]["gw_cpu_s"] and r["grpc-stream"]["backend"]["messages"]
         and r["rest-stream"]["backend"]["messages"]]
    lines.append("")
    lines.append(f"Gateway CPU per message, NDJSON transcoded / gRPC passthrough, per run: "
                 f"{mr(v, '.2f')}.")
    results["stream_ratio"] = v
    lines.append("")


def summarize_memory(results, lines):
    o = results["opts"]
    mem = results["memory"]
    lines.append(f"### 3. Gateway memory while streaming ({o['memory_streams']} concurrent endless "
                 f"NDJSON streams, {o['memory_duration']} s per cell, then the client goes away "
                 f"mid-stream; {len(mem)} runs, slow readers then fast ones, on one freshly "
                 f"started gateway)")
    lines.append("")
    lines.append(f"RSS right after start: {results['memory_start_rss_kib'] / 1024:.1f} MiB; after "
                 f"the check calls: {results['memory_checked_rss_kib'] / 1024:.1f} MiB.")
    lines.append("")
    lines.append("| run | readers | RSS before MiB | during: median / max MiB | first → last sample "
                 "MiB | after MiB | messages/s sent by the service (all / last 5 s) | read by the "
                 "clients | gateway CPU µs/message | streams left open at the service | in-flight "
                 "gauge after |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, run in enumerate(mem, 1):
        for kind in ("slow", "fast"):
            c = run[kind]
            who = ("h2load, h2c, as fast as it reads" if kind == "fast"
                   else f"HTTP/1.1, {o['slow_rate']} KiB/s each")
            mib = lambda k: fmt(c[k] / 1024 if c[k] is not None else None)  # noqa: E731
            read = (fmt(c.get("reader_messages_per_s"), ",.0f") if kind == "slow"
                    else "(all: h2load reads as it comes)")
            lines.append(f"| {i} | {who} | {mib('rss_before_kib')} | {mib('rss_during_median_kib')}"
                         f" / {mib('rss_during_max_kib')} | {mib('rss_during_first_kib')} → "
                         f"{mib('rss_during_last_kib')} | {mib('rss_after_kib')} "
                         f"| {c['backend_messages_per_s']:,.0f} / "
                         f"{fmt(c.get('backend_messages_per_s_last_5s'), ',.0f')} | {read} "
                         f"| {fmt(c['gw_cpu_us_per_message'], '.2f')} "
                         f"| {c['backend_streams_open_after']} "
                         f"| {c['gw_metrics_after'].get('in_flight')} |")
    lines.append("")
    slow = [c["slow"]["readers"] for c in mem]
    lines.append("Slow readers (per run: messages read by each, and its status line): "
                 + "; ".join(", ".join(f"{r.get('messages')} ({r.get('status_line')})" for r in rs)
                             for rs in slow) + ".")
    lines.append("")


def summarize_goaway(results, lines):
    g = results.get("goaway")
    if not g:
        return
    lines.append("### The upstream connection and abandoned calls (gRPC CreateOrder passthrough, "
                 "`h2load -c10 -m10`, rounds on a fresh gateway each)")
    lines.append("")
    lines.append("| rounds of | rounds run | `too_many_data_frames` GOAWAY | calls done (h2load) "
                 "| calls at the service | gateway log |")
    lines.append("|---|---:|---|---:|---:|---|")
    for mode, what in (("complete", "30,000 calls, all finished (`-n 30000`)"),
                       ("abandon", "1 s, ~100 calls in flight at the stop (`-D 1`)")):
        c = g.get(mode)
        if not c:
            continue
        log = "; ".join(f"{t['count']} × {t['message']}"
                        + (f" ({t['error'][:90]}…)" if t["error"] else "")
                        for t in c["log"].get("top", [])) or "empty"
        lines.append(f"| {what} | {c['rounds']} | "
                     f"{'round ' + str(c['goaway_in_round']) if c['goaway_in_round'] else 'none'} "
                     f"| {c['calls_done_h2load']:,} | {c['calls_at_service']:,} | {log} |")
    lines.append("")


def summarize_end(results, lines):
    lines.append("Gateway requests by route and status class at the end (every cell, warm-ups "
                 "and checks included): " + ", ".join(
                     f"{k.split('{', 1)[1].rstrip('}')}: {v:,.0f}"
                     for k, v in sorted(results.get("metrics_end", {}).items())
                     if k.startswith("gatehouse_requests_total")) + ".")
    log = results.get("gateway_log", {})
    lines.append(f"Gateway log (`log_level: warn`): {log.get('lines', '?')} lines"
                 + (":" if log.get("top") else "."))
    for t in log.get("top", []):
        lines.append(f"- {t['count']} × {t['level']} {t['message']}"
                     + (f": `{t['error']}`" if t["error"] else ""))
    lines.append("")
    lines.append(f"RSS at the end of the run (after every cell): "
                 f"{results.get('rss_end_kib', 0) / 1024:.1f} MiB; "
                 f"gateway in-flight gauge: {results.get('metrics_end', {}).get('in_flight')}; "
                 f"service streams still open: {results.get('backend_end', {}).get('streams_open')}.")
    if results.get("profile"):
        lines.append("")
        lines.append("### Profile (perf record -F 999 -g on the gateway, flat, by DSO and symbol)")
        for key, p in results["profile"].items():
            lines.append("")
            lines.append(f"`{key}` ({p.get('report', '')}):")
            lines.append("")
            lines.append("```")
            lines.extend(p.get("top", [p.get("error", "")]))
            lines.append("```")


# --- main -------------------------------------------------------------------------------------

def main(argv):
    opts = parse_args(argv)
    os.sched_setaffinity(0, {LOAD_CPU})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"over --max-minutes {opts.max_minutes}"))
    signal.alarm(opts.max_minutes * 60)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = opts.out or os.path.join(BENCH, "out", f"transcode-{stamp}")
    os.makedirs(out_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="gatehouse-transcode-")
    bin_dir = os.path.join(workdir, "bin")  # a copy: others may rebuild target/ meanwhile
    os.makedirs(bin_dir)
    shutil.copy2(os.path.join(opts.bin_dir, "gatehouse-internal"), bin_dir)
    shutil.copy2(os.path.join(opts.bin_dir, "examples", "transcode-bench-backend"), bin_dir)
    files = os.path.join(workdir, "bodies")
    os.makedirs(files)
    n = opts.stream_messages
    subprocess.run([os.path.join(bin_dir, "transcode-bench-backend"), "frames", files, str(n)],
                   check=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    model = next((line.split(":", 1)[1].strip() for line in sh("lscpu").splitlines()
                  if line.startswith("Model name")), "?")
    dirty = sh("git", "-C", REPO, "status", "--porcelain", "--untracked-files=no")
    built = datetime.datetime.fromtimestamp(os.path.getmtime(os.path.join(
        opts.bin_dir, "gatehouse-internal")), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = {
        "meta": {
            "date": started.strftime("%Y-%m-%d %H:%M UTC"),
            "commit": sh("git", "-C", REPO, "rev-parse", "--short", "HEAD")
            + (" (working tree with uncommitted changes)" if dirty else ""),
            "binary": sh(os.path.join(bin_dir, "gatehouse-internal"), "--version")
            + f", built {built}",
            "machine": f"{os.cpu_count()} CPUs, {model}, Linux {platform.release()}; gateway on "
                       f"core {PROXY_CPU}; the gRPC service, h2load and this script on core "
                       f"{LOAD_CPU}",
            "tools": f"{sh('h2load', '--version')}; Python {platform.python_version()}",
            "command": os.environ.get("BENCH_COMMAND", " ".join(sys.argv)),
            "busy_at_start": busy_processes(),
        },
        "opts": vars(opts),
        "runs": [],
        "memory": [],
    }
    quiet = Quiet(opts.quiet_wait)
    lab = Lab(workdir, bin_dir)
    try:
        lab.start_backend()
        # 3. Memory first, on a fresh gateway.
        lab.start_gateway()
        results["meta"]["gateway_threads"] = system.threads(lab.gateway.pids())
        results["memory_start_rss_kib"] = lab.rss_kib()
        results["check"] = check(lab, files, n)
        print(f"check: REST unary and NDJSON ({n} messages) and gRPC passthrough answer as "
              f"expected: {results['check']['grpc']}", flush=True)
        results["memory_checked_rss_kib"] = lab.rss_kib()
        for i in range(opts.runs if opts.only != "cpu" else 0):
            run = {}
            for kind in ("slow", "fast"):
                c = memory_cell(lab, quiet, opts, kind)
                run[kind] = c
                print(f"memory run {i + 1} {kind}: RSS {c['rss_before_kib'] / 1024:.1f} → "
                      f"{(c['rss_during_max_kib'] or 0) / 1024:.1f} (max) → "
                      f"{c['rss_after_kib'] / 1024:.1f} MiB; {c['backend_messages_per_s']:,.0f} "
                      f"msg/s ({c['backend_messages_per_s_last_5s'] or 0:,.0f} in the last 5 s); "
                      f"readers' {c.get('reader_messages_per_s') or 0:,.0f} msg/s; service streams open after {c['backend_streams_open_after']}; "
                      f"in-flight {c['gw_metrics_after'].get('in_flight')}; noise core 0 "
                      f"{c['noise_core0_pct']:.1f}%", flush=True)
            results["memory"].append(run)
        # 1 and 2: CPU cells, the order rotated in each run.
        cells = UNARY_CELLS + stream_cells(n)
        keys = [c[0] for c in cells]
        by_key = {c[0]: c for c in cells}
        for i in range(opts.runs if opts.only != "memory" else 0):
            order = keys[i % len(keys):] + keys[:i % len(keys)]
            run = {"order": order}
            for key in order:
                _k, _what, path, body, headers, gw = by_key[key]
                url = lab.url(path, gw)
                bodyfile = os.path.join(files, body) if body else None
                clients, streams = ((opts.stream_clients, 1) if "stream" in key
                                    else (opts.clients, opts.streams))
                h2load(url, opts.warmup, clients, streams, bodyfile, headers)
                cell = measured(lab, quiet, lambda: h2load(url, opts.duration, clients, streams,
                                                           bodyfile, headers))
                run[key] = cell
                us = cell["gw_cpu_s"] * 1e6 / cell["requests"] if cell["requests"] else 0
                print(f"run {i + 1} {key:14} {cell['rps']:8.0f} calls/s {us:7.1f} gw µs/call  "
                      f"service calls {sum(cell['backend'][k] for k in ('create', 'get', 'list'))}"
                      f"  messages {cell['backend']['messages']}  errors {cell['errors']}  "
                      f"noise {cell['noise_core0_pct']:.1f}%/{cell['noise_core1_pct']:.1f}%  "
                      f"busy {len(cell['busy_at_start'])}/{len(cell['busy_at_end'])}  "
                      f"in-flight {cell['gw_metrics_after'].get('in_flight')}", flush=True)
            results["runs"].append(run)
        time.sleep(2.0)
        results["rss_end_kib"] = lab.rss_kib()
        results["metrics_end"] = lab.metrics()
        results["backend_end"] = lab.backend_stats()
        if opts.profile and opts.only != "memory":
            prof = [by_key[k] for k in ("rest-create", "grpc-create", "rest-stream", "grpc-stream")]
            results["profile"] = profile(lab, opts, files, prof, out_dir)
        if opts.goaway_rounds > 0 and opts.only != "memory":
            results["goaway"] = goaway_check(lab, files, opts)
    finally:
        lab.stop()
        results["gateway_log"] = log_summary(os.path.join(workdir, "gatehouse-internal.log"))
        results["meta"]["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC")
        md = ""
        if results["runs"] or results["memory"]:
            try:
                md = summarize(results)
            except Exception as e:  # the raw results are written whatever happens
                md = f"(summary failed: {e!r})"
        cells = ([c for r in results["runs"] for k, c in r.items() if k != "order"]
                 + [c for r in results["memory"] for c in r.values()])
        results["meta"]["quiet"] = {
            "busy_seen": sorted({p for c in cells for p in c["busy_at_start"] + c["busy_at_end"]}),
            "max_noise_core0_pct": max((c["noise_core0_pct"] for c in cells), default=None),
            "max_noise_core1_pct": max((c.get("noise_core1_pct", 0) for c in cells), default=None),
            "waited_s": sum(c["quiet_waited_s"] for c in cells),
        }
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        m = results["meta"]
        head = "\n".join(f"- {k}: {v}" for k, v in m.items())
        with open(os.path.join(out_dir, "report.md"), "w") as f:
            f.write(head + "\n\n" + md + "\n")
        print("\n" + head + "\n\n" + md)
        print(f"\nwritten: {out_dir}/report.md and results.json")
        if opts.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
