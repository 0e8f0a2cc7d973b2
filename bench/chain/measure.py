"""The whole demo chain's added latency at a fixed rate (bench/chain.sh; bench/README.md, "Chain").

Runs against a `gatehouse-topology up` that bench/chain.sh started (its STATE/topology.json);
Python 3 standard library and h2load only. Every cell is `h2load --h1` at a fixed rate (a 1 s
warm-up run first, not counted), its per-request log (--log-file) giving p50/p99; each run takes
the targets in turn, in reverse order every other run; the figures are medians of the runs.

Targets (all GET, answered 200 by the service; the edge over TLS with certificate checks off):

  direct        inventory's own listener, plain HTTP          GET /stock/1001
  edge          edge -> internal -> inventory-sidecar -> inventory   GET /api/stock/1001 (public)
  pair          orders-sidecar's outbound listener -> inventory-sidecar -> inventory
                                                              GET /stock/1001, Host: inventory
  direct-users  users' own listener, plain HTTP                GET /users/web-app
  edge-jwt      edge (JWT, scope users:read) -> internal -> users-sidecar -> users
                                                              GET /api/users/web-app

The demo has no edge route through two sidecars: from the edge a request crosses one, the
service's inbound sidecar. The sidecar -> sidecar hop exists only on orders' calls to inventory
and pricing, which `pair` takes (plain HTTP into orders-sidecar's outbound listener, as orders
sends it). Added latency: edge - direct, pair - direct, edge-jwt - direct-users.

Arrivals: `burst` is one h2load with C connections at RATE/C req/s each; h2load starts every
connection's timer together, so the requests go out C at a time (10 at once every 10 ms at the
defaults). `spread` runs C h2load processes of one connection each, started 1/RATE s apart, so
the requests go out about evenly spaced. The report gives, per cell, the share of requests sent
within 0.1 ms of the one before.

Every cell must be all 2xx: h2load's requests done equal to its requests succeeded and to its
"status codes: N 2xx" (N may also count the status of a request cut off at the end: started,
not done, at most C of them), none failed, errored or timed out, no 3xx/4xx/5xx, and the
request log holding exactly the requests done, all 200. Anything else stops the run (exit 1)
with h2load's output.

Noise: per cell, the most build processes seen (sampled every second) and the CPU share other
processes took (/proc/stat's busy time less the utime+stime of the demo's processes, of h2load
and of this script). A cell with a build or over 5% is disturbed; --quiet-wait S waits for builds
to end before each cell and redoes disturbed cells, S seconds at most over the whole run.
"""

import argparse
import base64
import json
import os
import re
import resource
import shlex
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Build processes, matched on the whole command line as bench/events.sh does.
BUILDS = r"(^|/)(cargo|rustc|cc1|ld)( |$)"
GOAL_P99_MS = 2.0
ALL_TARGETS = ["direct", "edge", "pair", "direct-users", "edge-jwt"]
DEFAULT_TARGETS = "direct,edge,pair,direct-users,edge-jwt"
# Target -> its baseline, and how the difference is named in the report.
COMPARISONS = [
    ("edge", "direct", "edge − direct: edge → internal → sidecar → inventory, public GET"),
    ("edge-jwt", "direct-users", "edge-jwt − direct-users: the same hops to users, with a JWT"),
    ("pair", "direct", "pair − direct: sidecar → sidecar → inventory"),
]


class Failed(Exception):
    pass


def env(name, default):
    return os.environ.get(name, default)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/chain.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # Set by bench/chain.sh: the topology's state directory and the output directory.
    p.add_argument("--state", required=True, help=argparse.SUPPRESS)
    p.add_argument("--out", required=True, help=argparse.SUPPRESS)
    p.add_argument("--rate", type=int, default=int(env("CHAIN_RATE", "1000")),
                   help="requests per second per cell, all connections together "
                        "(CHAIN_RATE, 1000)")
    p.add_argument("--clients", type=int, default=int(env("CHAIN_CLIENTS", "10")),
                   help="h2load connections (CHAIN_CLIENTS, 10); each sends RATE/CLIENTS req/s, "
                        "one request at a time")
    p.add_argument("--duration", type=int, default=int(env("CHAIN_DURATION", "8")),
                   help="measured seconds per cell (CHAIN_DURATION, 8)")
    p.add_argument("--warmup", type=int, default=int(env("CHAIN_WARMUP", "1")),
                   help="warm-up seconds before each cell, not counted (CHAIN_WARMUP, 1)")
    p.add_argument("--runs", type=int, default=int(env("CHAIN_RUNS", "3")),
                   help="runs; figures are medians (CHAIN_RUNS, 3)")
    p.add_argument("--targets", default=env("CHAIN_TARGETS", DEFAULT_TARGETS),
                   help=f"comma-separated, of {','.join(ALL_TARGETS)} "
                        f"(CHAIN_TARGETS, {DEFAULT_TARGETS})")
    p.add_argument("--arrivals", choices=["burst", "spread", "both"],
                   default=env("CHAIN_ARRIVALS", "burst"),
                   help="burst: one h2load, C connections in step; spread: C h2load processes "
                        "started 1/RATE s apart; both (CHAIN_ARRIVALS, burst)")
    p.add_argument("--quiet-wait", type=int, default=int(env("CHAIN_QUIET_WAIT", "0")),
                   help="before each cell, wait while a build runs (cargo, rustc, cc1, ld), and "
                        "redo a disturbed cell (a build, or other processes over 5%% of the "
                        "CPUs), for at most this many seconds over the whole run "
                        "(CHAIN_QUIET_WAIT, 0: record only)")
    p.add_argument("--command", default=env("BENCH_COMMAND", "bench/chain.sh"),
                   help=argparse.SUPPRESS)
    # bench/chain.sh checks the options before it starts anything.
    p.add_argument("--check-options", action="store_true", help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    opts.targets = [t.strip() for t in opts.targets.split(",") if t.strip()]
    bad = [t for t in opts.targets if t not in ALL_TARGETS]
    if bad or not opts.targets:
        p.error(f"unknown targets {bad}; known: {','.join(ALL_TARGETS)}")
    if opts.rate < 1 or opts.clients < 1 or opts.duration < 1 or opts.runs < 1 or opts.warmup < 0:
        p.error("--rate, --clients, --duration and --runs must be at least 1, --warmup at least 0")
    opts.modes = ["burst", "spread"] if opts.arrivals == "both" else [opts.arrivals]
    opts.quiet_left = opts.quiet_wait
    return opts


# ---------------------------------------------------------------------------------------------
# The topology, the token, the targets


def load_topology(state):
    with open(os.path.join(state, "topology.json")) as f:
        topo = json.load(f)
    procs = {p["name"]: p for p in topo["processes"]}
    for name in ("edge", "inventory", "users", "orders-sidecar", "inventory-sidecar"):
        if name not in procs:
            raise Failed(f"topology.json has no process {name}")
    return topo, procs


def tls_context(topo):
    return ssl.create_default_context(cafile=os.path.join(topo["cert_dir"], "ca.pem"))


def fetch(url, headers, ctx, data=None, method="GET"):
    """One request (HTTP/1.1, urllib); returns (status, headers, body bytes)."""
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (urllib.error.URLError, OSError) as e:
        raise Failed(f"{method} {url}: {e}") from e


def token(topo, procs, ctx, scope):
    """A token of the demo client that has `scope`, from the idp through the edge."""
    client = next((c for c in topo.get("demo_clients", []) if scope in c.get("scopes", [])), None)
    if client is None:
        raise Failed(f"no demo client with scope {scope} in topology.json")
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    url = f"https://{procs['edge']['listen']['https']}/oauth/token"
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode()
    status, _, raw = fetch(url, {"authorization": f"Basic {basic}",
                                 "content-type": "application/x-www-form-urlencoded"},
                           ctx, data=body, method="POST")
    if status != 200:
        raise Failed(f"POST {url} as {client['client_id']}: {status} {raw[:300]!r}")
    return client["client_id"], json.loads(raw)["access_token"]


def targets(topo, procs, wanted, ctx):
    edge = procs["edge"]["listen"]["https"]
    inventory = procs["inventory"]["listen"]["http"]
    users = procs["users"]["listen"]["http"]
    outbound = procs["orders-sidecar"]["listen"]["outbound"]
    t = {
        "direct": dict(
            url=f"http://{inventory}/stock/1001", headers=[], service="inventory",
            path="client → inventory (its own listener, plain HTTP)"),
        "edge": dict(
            url=f"https://{edge}/api/stock/1001", headers=[], service="inventory",
            path="client →TLS→ edge →mTLS→ internal →mTLS→ inventory-sidecar → inventory"),
        "pair": dict(
            url=f"http://{outbound}/stock/1001", headers=[":authority: inventory"],
            service="inventory",
            path="client → orders-sidecar (outbound, plain HTTP, Host: inventory) →mTLS→ "
                 "inventory-sidecar → inventory"),
        "direct-users": dict(
            url=f"http://{users}/users/web-app", headers=[], service="users",
            path="client → users (its own listener, plain HTTP)"),
        "edge-jwt": dict(
            url=f"https://{edge}/api/users/web-app", headers=[], service="users",
            path="client →TLS→ edge (JWT, scope users:read) →mTLS→ internal →mTLS→ "
                 "users-sidecar → users"),
    }
    if "edge-jwt" in wanted:
        client, tok = token(topo, procs, ctx, "users:read")
        t["edge-jwt"]["headers"] = [f"authorization: Bearer {tok}"]
        t["edge-jwt"]["token_client"] = client
    return {name: t[name] for name in wanted}


def check_target(name, t, ctx):
    """One request as h2load will send it: 200 from the right service."""
    headers = {}
    for h in t["headers"]:
        k, v = h.rsplit(": ", 1) if h.startswith(":") else h.split(": ", 1)
        headers["host" if k == ":authority" else k] = v
    status, res_headers, body = fetch(t["url"], headers, ctx)
    service = res_headers.get("x-service")
    if status != 200 or service != t["service"]:
        raise Failed(f"{name}: GET {t['url']} {headers or ''} answered {status}, x-service "
                     f"{service!r} (want 200 from {t['service']}): {body[:300]!r}")
    return json.loads(body)


# ---------------------------------------------------------------------------------------------
# h2load


def builds():
    out = subprocess.run(["pgrep", "-c", "-f", BUILDS], capture_output=True, text=True).stdout
    return int(out.strip() or 0)


class BuildWatch:
    """The most build processes seen, sampled every second while the `with` block runs."""

    def __init__(self):
        self.most = builds()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.wait(1.0):
            self.most = max(self.most, builds())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.most = max(self.most, builds())


CLK_TCK = os.sysconf("SC_CLK_TCK")
NOISY = 0.05  # other processes' CPU share above which a cell counts as disturbed


def busy_ticks():
    """CPU ticks spent busy on all CPUs (/proc/stat: user, nice, system, irq, softirq), and
    stolen by the hypervisor (steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6], v[7]


def own_ticks(pids):
    """utime + stime of `pids` (all their threads), of this script and of its finished
    children (h2load, pgrep), in ticks."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += round((r.ru_utime + r.ru_stime) * CLK_TCK)
    return total


def disturbed(x):
    return x["builds"] > 0 or x["other_cpu"] > NOISY


def wait_quiet(opts):
    """Waits while a build runs, from the run's budget (opts.quiet_left); returns seconds."""
    start = time.monotonic()
    while opts.quiet_left > 0 and builds():
        time.sleep(min(5, opts.quiet_left))
        opts.quiet_left -= 5
    return round(time.monotonic() - start)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def h2load_argv(t, clients, rps, duration, log):
    argv = ["h2load", "--h1", "-t1", f"-c{clients}", "-m1", f"--rps={rps:g}", "-D", str(duration)]
    if log:
        argv.append(f"--log-file={log}")
    for h in t["headers"]:
        argv += ["-H", h]
    return argv + [t["url"]]


def parse_h2load(out):
    res = {}
    m = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", out)
    res["rps"] = float(m.group(3)) if m else None
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    keys = ["total", "started", "done", "succeeded", "failed", "errored", "timeout"]
    res.update(zip(keys, (int(x) for x in m.groups())) if m else {})
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    res.update(zip(["2xx", "3xx", "4xx", "5xx"], (int(x) for x in m.groups())) if m else {})
    return res


def verify(res, clients, what, out):
    """All requests 2xx, as the module's doc says; raises Failed with h2load's output."""
    problems = []
    if res.get("rc") != 0:
        problems.append(f"exit status {res.get('rc')}")
    if "done" not in res or "2xx" not in res:
        problems.append("no request or status-code line in its output")
    else:
        if res["done"] == 0:
            problems.append("no request done")
        # A request cut off at the end (started, not done) may have had its status line
        # counted already: 2xx is between the requests done and those started.
        if not (res["done"] == res["succeeded"] == res["total"]
                and res["done"] <= res["2xx"] <= res["started"]):
            problems.append(f"{res['2xx']} 2xx of {res['total']} requests "
                            f"({res['started']} started, {res['done']} done, "
                            f"{res['succeeded']} succeeded)")
        bad = {k: res[k] for k in ("failed", "errored", "timeout", "3xx", "4xx", "5xx") if res[k]}
        if bad:
            problems.append(", ".join(f"{v} {k}" for k, v in bad.items()))
        if not 0 <= res["started"] - res["done"] <= clients:
            problems.append(f"{res['started']} started but {res['done']} done")
    if "log_lines" in res and res.get("done") is not None:
        if res["log_lines"] != res["done"] or res["log_non200"]:
            problems.append(f"request log: {res['log_lines']} requests, {res['log_non200']} "
                            f"not 200 (h2load: {res['done']} done)")
    if problems:
        raise Failed(f"{what}: " + "; ".join(problems) + "\n" + out)


def read_log(path):
    """(start µs, status, duration µs) of every request in an h2load --log-file."""
    rows = []
    with open(path) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 3:
                rows.append((int(cols[0]), int(cols[1]), int(cols[2])))
    return rows


GATEWAY_LOGS = ("edge", "internal")


def log_sizes(state):
    """Where the gateways' logs end now (bytes)."""
    sizes = {}
    for name in GATEWAY_LOGS:
        try:
            sizes[name] = os.path.getsize(os.path.join(state, "logs", f"{name}.log"))
        except OSError:
            sizes[name] = None
    return sizes


def access_durations(state, since, path):
    """{gateway: {request_id: duration_ms}} of the access-log lines for `path` written after
    `since` (log_sizes)."""
    found = {}
    for name in GATEWAY_LOGS:
        found[name] = {}
        if since.get(name) is None:
            continue
        with open(os.path.join(state, "logs", f"{name}.log"), "rb") as f:
            f.seek(since[name])
            for raw in f:
                if b'"message":"request"' not in raw:
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if line.get("path") == path and "duration_ms" in line:
                    found[name][line.get("request_id")] = line["duration_ms"]
    return found


def hops(found):
    """p50/p99 (ms) of what the edge and the internal gateway logged, and of the edge's own part
    (edge - internal, request by request)."""
    edge, internal = found.get("edge", {}), found.get("internal", {})
    both = [edge[k] - internal[k] for k in edge.keys() & internal.keys()]
    out = {"edge_lines": len(edge), "internal_lines": len(internal), "matched": len(both)}
    for key, values in (("edge", list(edge.values())), ("internal", list(internal.values())),
                        ("edge_own", both)):
        values = sorted(values)
        if values:
            n = len(values)
            out[f"{key}_p50_ms"] = values[min(n - 1, int(n * 0.50))]
            out[f"{key}_p99_ms"] = values[min(n - 1, int(n * 0.99))]
    return out


def run_h2load(procs_argv, timeout, stagger):
    """Starts every argv (`stagger` s apart), waits for all; returns [(rc, output)]."""
    started = []
    try:
        for i, argv in enumerate(procs_argv):
            if i and stagger:
                time.sleep(stagger)
            started.append(subprocess.Popen(argv, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True))
        deadline = time.monotonic() + timeout
        results = []
        for p in started:
            try:
                out, _ = p.communicate(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
                out += f"\n(chain: killed after {timeout} s)"
            results.append((p.returncode, out))
        return results
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
                p.wait()


def pick(sorted_us, pct):
    """Percentile (ms), the harness's rule (bench/harness/load.py)."""
    n = len(sorted_us)
    return sorted_us[min(n - 1, int(n * pct / 100))] / 1000.0


def cell(name, t, mode, opts, workdir):
    """One warm-up and one measured run of `name`; the measured figures."""
    c = opts.clients
    per_client = opts.rate / c
    waited = wait_quiet(opts)
    if opts.warmup:
        (rc, out), = run_h2load([h2load_argv(t, c, per_client, opts.warmup, None)],
                                opts.warmup + 30, 0)
        res = parse_h2load(out)
        res["rc"] = rc
        verify(res, c, f"{name} ({mode}, warm-up)", out)

    if mode == "burst":
        logs = [os.path.join(workdir, "h2load-0.log")]
        argvs = [h2load_argv(t, c, per_client, opts.duration, logs[0])]
        clients_per_proc, stagger = c, 0
    else:
        logs = [os.path.join(workdir, f"h2load-{i}.log") for i in range(c)]
        argvs = [h2load_argv(t, 1, per_client, opts.duration, log) for log in logs]
        clients_per_proc, stagger = 1, 1.0 / opts.rate
    for log in logs:  # h2load appends to its log file
        if os.path.exists(log):
            os.remove(log)

    via_edge = t["url"].startswith("https://")
    sizes = log_sizes(opts.state) if via_edge else None
    l0, t0 = loadavg(), time.time()
    (busy0, steal0), own0 = busy_ticks(), own_ticks(opts.pids)
    with BuildWatch() as watch:
        outs = run_h2load(argvs, opts.duration + 30, stagger)
    (busy1, steal1), own1 = busy_ticks(), own_ticks(opts.pids)
    t1, l1 = time.time(), loadavg()
    ticks = (t1 - t0) * CLK_TCK * os.cpu_count()
    other_raw = ((busy1 - busy0) - (own1 - own0)) / ticks
    other = max(0.0, other_raw)
    inside = None
    if via_edge:
        time.sleep(0.5)  # the gateways' log writers
        inside = hops(access_durations(opts.state, sizes, urllib.parse.urlsplit(t["url"]).path))

    rows, parts = [], []
    for (rc, out), log in zip(outs, logs):
        res = parse_h2load(out)
        res["rc"] = rc
        got = read_log(log) if os.path.exists(log) else []
        res["log_lines"] = len(got)
        res["log_non200"] = sum(1 for r in got if r[1] != 200)
        verify(res, clients_per_proc, f"{name} ({mode})", out)
        rows += got
        parts.append({"argv": shlex.join(argvs[len(parts)]), "output": out, **res})
        os.remove(log)

    durations = sorted(r[2] for r in rows)
    starts = sorted(r[0] for r in rows)
    together = sum(1 for a, b in zip(starts, starts[1:]) if b - a < 100)
    return {
        "target": name, "mode": mode, "started_at": t0, "seconds": round(t1 - t0, 2),
        "requests": len(rows),
        "rps": sum(p["rps"] or 0 for p in parts),
        "p50_ms": pick(durations, 50), "p90_ms": pick(durations, 90),
        "p99_ms": pick(durations, 99), "max_ms": durations[-1] / 1000.0,
        "mean_ms": sum(durations) / len(durations) / 1000.0,
        "sent_together": together / max(1, len(starts) - 1),
        "cut_off": sum(p["started"] - p["done"] for p in parts),
        "builds": watch.most, "other_cpu": other, "other_cpu_raw": other_raw,
        "steal": (steal1 - steal0) / ticks,
        "quiet_waited_s": waited, "loadavg": [l0, l1],
        "gateways": inside,
        "h2load": parts,
    }


# ---------------------------------------------------------------------------------------------
# Report


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec=".2f"):
    return "—" if v is None else format(v, spec)


def spread(values, spec=".2f"):
    return f"{fmt(med(values), spec)} ({fmt(min(values), spec)}–{fmt(max(values), spec)})"


def summarize(cells, opts):
    summary = {}
    for mode in opts.modes:
        by_target = {}
        for name in opts.targets:
            cs = [c for c in cells if c["mode"] == mode and c["target"] == name]
            by_target[name] = {k: med([c[k] for c in cs]) for k in
                               ("rps", "p50_ms", "p99_ms", "sent_together")}
        added = {}
        for target, base, _ in COMPARISONS:
            if target in by_target and base in by_target:
                per_run = [
                    {k: a[k] - b[k] for k in ("p50_ms", "p99_ms")}
                    for a, b in zip(*([c for c in cells if c["mode"] == mode and c["target"] == n]
                                      for n in (target, base)))]
                added[target] = {
                    "p50_ms": by_target[target]["p50_ms"] - by_target[base]["p50_ms"],
                    "p99_ms": by_target[target]["p99_ms"] - by_target[base]["p99_ms"],
                    "per_run": per_run,
                }
        if "edge" in added and "pair" in added:
            added["five-hop estimate"] = {k: added["edge"][k] + added["pair"][k]
                                          for k in ("p50_ms", "p99_ms")}
        summary[mode] = {"targets": by_target, "added": added}
    return summary


MODE_TEXT = {
    "burst": "one h2load, {c} connections whose timers run in step: {c} requests at once "
             "every {period:g} ms",
    "spread": "{c} h2load processes of one connection each, started {gap:g} ms apart: requests "
              "about evenly spaced",
}


def report(cells, summary, meta, opts, tdefs):
    c, period = opts.clients, 1000.0 * opts.clients / opts.rate
    quiet = meta["builds_max"] == 0 and meta["cells_disturbed"] == 0
    extra = []
    if meta["quiet_waited_s"]:
        extra.append(f"waited {meta['quiet_waited_s']} s in all for builds to end")
    if meta["cells_redone"]:
        n = meta["cells_redone"]
        extra.append(f"{n} cell{'s' if n != 1 else ''} redone, disturbed")
    if meta["cells_disturbed"]:
        n = meta["cells_disturbed"]
        extra.append(f"{n} cell{'s' if n != 1 else ''} disturbed, marked † below")
    extra = "; " + "; ".join(extra) if extra else ""
    lines = [
        "# The demo chain's added latency (bench/chain.sh)",
        "",
        f"{meta['date']}, commit {meta['commit']}{meta['dirty']}; the running binaries "
        f"built {meta['binaries_built']}. `{opts.command}`.",
        "",
        f"Load: `h2load --h1 -t1 -m1` at **{opts.rate} req/s** ({c} connections × "
        f"{opts.rate / c:g} req/s, one request at a time on each), {opts.duration} s per cell "
        f"after a {opts.warmup} s warm-up (not counted), {opts.runs} runs, targets in turn "
        f"(reversed every other run). p50/p99 from h2load's per-request log; figures are medians "
        f"of the runs (min–max). Every request of every cell answered 200.",
        "",
        f"Machine: {meta['cpus']} CPUs, nothing pinned (about 20 processes of the demo, h2load and "
        f"this script share them). During the cells: build processes (cargo, rustc, cc1, ld) "
        f"{meta['builds_max']} at most, other processes' CPU {100 * meta['other_cpu_max']:.1f}% "
        f"of the CPUs at most (/proc/stat less the demo's, h2load's and this script's; a cell "
        f"over {100 * NOISY:.0f}% or with a build counts as disturbed): "
        f"**{'quiet' if quiet else 'NOT quiet'}**{extra}. Load average "
        f"{meta['loadavg_min']:.2f}–{meta['loadavg_max']:.2f}. "
        "Broker: " + ("running" if meta["broker"] else
                      "not running (nats-server absent; unused by these routes)") + ".",
        "",
        "| target | path |",
        "|---|---|",
    ]
    for name in opts.targets:
        t = tdefs[name]
        req = urllib.parse.urlsplit(t["url"]).path
        lines.append(f"| `{name}` | `GET {req}`: {t['path']} |")
    for mode in opts.modes:
        s = summary[mode]
        lines += [
            "",
            f"## Arrivals: {mode}",
            "",
            MODE_TEXT[mode].format(c=c, period=period, gap=1000.0 / opts.rate) + ".",
            "",
            "| target | req/s | p50 ms | p99 ms | sent within 0.1 ms of another |",
            "|---|---|---|---|---|",
        ]
        for name in opts.targets:
            cs = [x for x in cells if x["mode"] == mode and x["target"] == name]
            lines.append(
                f"| `{name}` | {spread([x['rps'] for x in cs], '.0f')} | "
                f"{spread([x['p50_ms'] for x in cs])} | {spread([x['p99_ms'] for x in cs])} | "
                f"{fmt(100 * med([x['sent_together'] for x in cs]), '.0f')}% |")
        if s["added"]:
            lines += [
                "",
                "| added latency (medians' difference) | p50 ms | p99 ms | "
                f"p99 < {GOAL_P99_MS:g} ms |",
                "|---|---|---|---|",
            ]
            for target, _, text in COMPARISONS:
                if target in s["added"]:
                    a = s["added"][target]
                    lines.append(f"| {text} | {fmt(a['p50_ms'])} | {fmt(a['p99_ms'])} | "
                                 f"{'yes' if a['p99_ms'] < GOAL_P99_MS else '**no**'} |")
            if "five-hop estimate" in s["added"]:
                a = s["added"]["five-hop estimate"]
                lines.append(f"| edge + pair: edge → internal → sidecar → sidecar → inventory, "
                             f"estimated (counts the inventory sidecar twice) | "
                             f"{fmt(a['p50_ms'])} | "
                             f"{fmt(a['p99_ms'])} | "
                             f"{'yes' if a['p99_ms'] < GOAL_P99_MS else '**no**'} |")
    inside = [x for x in cells if x.get("gateways")]
    if inside:
        lines += [
            "",
            "## Inside the chain",
            "",
            "What the gateways logged for the same requests (`duration_ms` of their access-log "
            "lines): the edge's time from the request to its answer, the internal gateway's "
            "(which includes the sidecar and the service), and the edge's own part, edge − "
            "internal request by request (matched by request id). Medians of the runs, ms.",
            "",
            "| arrivals | target | client (h2load) p50 / p99 | edge p50 / p99 | internal p50 / p99 "
            "| edge − internal p50 / p99 | lines matched |",
            "|---|---|---|---|---|---|---|",
        ]
        for mode in opts.modes:
            for name in opts.targets:
                cs = [x for x in inside if x["mode"] == mode and x["target"] == name]
                if not cs:
                    continue
                g = lambda k: fmt(med([x["gateways"].get(k) for x in cs]))  # noqa: E731
                lines.append(
                    f"| {mode} | `{name}` | {fmt(med([x['p50_ms'] for x in cs]))} / "
                    f"{fmt(med([x['p99_ms'] for x in cs]))} | "
                    f"{g('edge_p50_ms')} / {g('edge_p99_ms')} | "
                    f"{g('internal_p50_ms')} / {g('internal_p99_ms')} | "
                    f"{g('edge_own_p50_ms')} / {g('edge_own_p99_ms')} | "
                    f"{sum(x['gateways']['matched'] for x in cs)} of "
                    f"{sum(x['requests'] for x in cs)} |")
    lines += [
        "",
        "## Notes",
        "",
        "- The demo has no edge route through two sidecars: from the edge a request crosses one "
        "(the service's inbound sidecar). The sidecar → sidecar hop is orders' path to inventory "
        "and pricing; `pair` measures it on its own, and the last row of each added-latency table "
        "adds it to the edge's figure.",
        "- The demo's configs as they are: the edge and the internal gateway write an access-log "
        "line per request (`log_level: info`), the catalog routes are cached at the internal "
        "gateway (hence `/api/stock`, not cached), `edge-jwt`'s token is checked at the edge "
        "(signature, issuer, audience, scope).",
        "- h2load measures each request from its write to the end of the response; a request "
        "that waits for its connection (the one before it still open) is not counted as waiting "
        f"(`sent within 0.1 ms of another` shows how bunched the arrivals were). "
        f"Requests cut off at the end of a cell (started, not done): "
        f"{sum(x['cut_off'] for x in cells)} in all.",
        f"- A p99 of {opts.rate * opts.duration:,} requests is about their "
        f"{max(1, opts.rate * opts.duration // 100)}th slowest: one scheduling stall of a few ms "
        "on a shared machine moves it, the baselines' included (see the min–max and every cell "
        "below); an added p99 is the difference of two such figures.",
        "",
        "## Every cell",
        "",
        "| run | arrivals | target | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | builds "
        "| other CPU | steal | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in cells:
        mark = " †" if disturbed(x) else ""
        lines.append(
            f"| {x['run']} | {x['mode']} | `{x['target']}`{mark} | {x['requests']} | "
            f"{x['rps']:.0f} | {x['p50_ms']:.2f} | {x['p90_ms']:.2f} | {x['p99_ms']:.2f} | "
            f"{x['max_ms']:.2f} | {x['builds']} | {100 * x['other_cpu']:.1f}% | "
            f"{100 * x['steal']:.1f}% | {x['loadavg'][1]:.2f} |")
    return "\n".join(lines) + "\n"


def meta_info(topo, procs):
    """Taken at the start: the commit, and when the running binaries were built (their
    /proc/PID/exe, which a rebuild of target/release meanwhile does not change)."""
    def git(*args):
        r = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True)
        return r.stdout.strip()
    dirty = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
             if line.strip()]
    built = {}
    for name in ("edge", "internal", "inventory-sidecar", "inventory"):
        try:
            built[name] = os.stat(f"/proc/{procs[name]['pid']}/exe").st_mtime
        except (OSError, KeyError):
            pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git("rev-parse", "--short", "HEAD") or "?",
        "dirty": f" (working tree: {len(dirty)} tracked files modified)" if dirty else "",
        "binaries_built": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(max(built.values())))
        if built else "?",
        "cpus": os.cpu_count(),
        "broker": topo.get("broker"),
    }


def main(argv):
    opts = parse_args(argv)
    if opts.check_options:
        return 0
    os.makedirs(opts.out, exist_ok=True)
    workdir = os.path.join(opts.out, "tmp")
    os.makedirs(workdir, exist_ok=True)
    try:
        topo, procs = load_topology(opts.state)
        ctx = tls_context(topo)
        meta = meta_info(topo, procs)
        opts.pids = [p["pid"] for p in procs.values() if p.get("pid")]
        try:  # `gatehouse-topology up` itself, the children's parent
            with open(f"/proc/{procs['edge']['pid']}/stat") as f:
                opts.pids.append(int(f.read().rsplit(")", 1)[1].split()[1]))
        except (OSError, IndexError, ValueError):
            pass
        tdefs = targets(topo, procs, opts.targets, ctx)
        for name, t in tdefs.items():
            check_target(name, t, ctx)
        cells_n = opts.runs * len(opts.modes) * len(opts.targets)
        print(f"chain: {cells_n} cells of {opts.warmup} + {opts.duration} s at {opts.rate} req/s "
              f"({', '.join(opts.targets)}; arrivals {', '.join(opts.modes)})", file=sys.stderr)
        cells, retried = [], 0
        for run in range(1, opts.runs + 1):
            order = opts.targets if run % 2 else list(reversed(opts.targets))
            for mode in opts.modes:
                for name in order:
                    x = cell(name, tdefs[name], mode, opts, workdir)
                    # Disturbed (a build ran, or other processes took over NOISY of the
                    # CPUs): again, while the quiet wait lasts (each retry spends its length).
                    while disturbed(x) and opts.quiet_left > 0:
                        print(f"chain: run {run} {mode} {name}: disturbed (builds "
                              f"{x['builds']}, other processes {100 * x['other_cpu']:.0f}% of "
                              f"the CPUs), again", file=sys.stderr)
                        retried += 1
                        opts.quiet_left -= x["seconds"] + opts.warmup
                        x = cell(name, tdefs[name], mode, opts, workdir)
                    x["run"] = run
                    cells.append(x)
                    print(f"chain: run {run} {mode:6} {name:13} {x['rps']:6.0f} req/s  "
                          f"p50 {x['p50_ms']:6.2f} ms  p99 {x['p99_ms']:6.2f} ms  "
                          f"builds {x['builds']}  other CPU {100 * x['other_cpu']:.0f}%",
                          file=sys.stderr)
    except Failed as e:
        print(f"chain: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        if os.path.isdir(workdir) and not os.listdir(workdir):
            os.rmdir(workdir)

    meta["builds_max"] = max(x["builds"] for x in cells)
    meta["quiet_waited_s"] = sum(x["quiet_waited_s"] for x in cells)
    meta["cells_redone"] = retried
    meta["other_cpu_max"] = max(x["other_cpu"] for x in cells)
    meta["cells_disturbed"] = sum(1 for x in cells if disturbed(x))
    meta["loadavg_min"] = min(min(x["loadavg"]) for x in cells)
    meta["loadavg_max"] = max(max(x["loadavg"]) for x in cells)
    summary = summarize(cells, opts)
    text = report(cells, summary, meta, opts, tdefs)
    with open(os.path.join(opts.out, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(opts.out, "quiet.txt"), "a") as f:
        f.write(f"chain: during the cells: build processes {meta['builds_max']} at most, other "
                f"processes' CPU {100 * meta['other_cpu_max']:.1f}% at most; "
                f"{meta['cells_disturbed']} cells disturbed; waited {meta['quiet_waited_s']} s "
                f"for builds, {meta['cells_redone']} cells redone\n")
    for t in tdefs.values():  # the token stays out of the results
        t["headers"] = ["authorization: Bearer …" if h.startswith("authorization:") else h
                        for h in t["headers"]]
    for x in cells:
        for p in x["h2load"]:
            p["argv"] = re.sub(r"Bearer \S+", "Bearer …", p["argv"])
    results = {"meta": meta, "options": {k: v for k, v in vars(opts).items()},
               "targets": tdefs, "summary": summary, "cells": cells}
    with open(os.path.join(opts.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
