"""Issue 14's orchestration figures (bench/orchestration.sh; bench/README.md, "Orchestration").

One gatehouse-internal (bench/configs/gatehouse-orchestration.yaml) pinned to core 0; nginx
(bench/configs/orchestration-backend-nginx.conf, JSON at once), the delay backend
(delay_backend.py, JSON after fixed delays), the load generators and this script on core 1.
Uses the harness's process, /proc and load-tool helpers (bench/harness/).

1. Added latency of an aggregate over its slowest part: `h2load --h1` at a fixed rate to
   /agg/slow (4 parts: 5, 5, 5 and 20 ms), to /slow/delay/20 (a plain proxied route to the
   slowest part) and to the delay backend's /delay/20 directly; p50/p99 of each, differences.
2. CPU per aggregate (4 parts, no delay, /agg/fast) vs per plain proxied request of one part
   (/part/a): `wrk -t1 -c64`, the gateway's utime+stime over the run / requests.
3. Cache HIT (/hit/1: `proxy` with `cache: {}` to /cached/1, max-age=600) vs the plain proxied
   route to the same path (/cached/1), the same way as 2.

Before every measured run it checks that no compiler runs (process names matching
cargo|rustc|clippy; `pgrep -f` would also match long command lines that merely contain
`.cargo` in a PATH), waiting up to --quiet-wait seconds; and it measures, as the harness does,
the CPU time other processes took on each core during the run (noise).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, BENCH)

from harness import load, system  # noqa: E402
from harness.targets import CONFIGS, LOAD_CPU, PROXY_CPU, REPO, nofile  # noqa: E402

PORTS = ["BACKEND_H1", "BACKEND_STATUS", "DELAY_H1", "INTERNAL_PLAIN", "INTERNAL_ADMIN"]

# (key, path at the gateway, what it is)
CPU_CELLS = [
    ("aggregate", "/agg/fast", "aggregate, 4 parts (nginx, no delay)"),
    ("plain", "/part/a", "plain proxied route (`service:`), one part"),
    ("proxy", "/proxy/part/a", "`proxy` handler, no cache, one part"),
    ("hit", "/hit/1", "`proxy` + `cache: {}`, all HITs"),
    ("plain-cached", "/cached/1", "plain proxied route to the max-age=600 path"),
]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/orchestration.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="CPU runs (figures 2, 3); medians (3)")
    p.add_argument("--duration", type=int, default=10, help="seconds per CPU cell (10)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    p.add_argument("--rate-runs", type=int, default=2, help="latency runs (figure 1) (2)")
    p.add_argument("--rate", type=int, default=200, help="fixed rate, req/s (200)")
    p.add_argument("--rate-clients", type=int, default=20, help="h2load connections (20)")
    p.add_argument("--rate-duration", type=int, default=20, help="seconds per latency cell (20)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per cell (2)")
    p.add_argument("--quiet-wait", type=int, default=300,
                   help="seconds to wait for running compilers before each run (300)")
    p.add_argument("--bin-dir", default=os.path.join(REPO, "target", "release"))
    p.add_argument("--out", default=None, help="output directory (bench/out/orchestration-<time>)")
    p.add_argument("--max-minutes", type=int, default=25, help="hard bound on the whole run")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (configs, the processes' logs)")
    return p.parse_args(argv)


def sh(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def compilers():
    """Running compilers, by process name (comm)."""
    found = []
    for pattern in ("cargo|rustc", "clippy"):  # pgrep warns on patterns over 15 characters
        out = subprocess.run(["pgrep", "-l", pattern], capture_output=True, text=True)
        found += [line for line in out.stdout.splitlines() if line.strip()]
    return found


def wait_quiet(limit):
    """Waits until no compiler runs (at most `limit` s); returns (waited s, compilers left)."""
    start = time.monotonic()
    while True:
        found = compilers()
        if not found or time.monotonic() - start >= limit:
            return round(time.monotonic() - start, 1), found
        time.sleep(2)


class Lab:
    def __init__(self, workdir, bin_dir):
        self.dir = workdir
        self.bin = bin_dir
        self.procs = []
        self.ports = dict(zip(PORTS, system.free_ports(len(PORTS))))
        os.makedirs(os.path.join(workdir, "tmp"), exist_ok=True)

    def render(self, template):
        text = open(os.path.join(CONFIGS, template)).read()
        for key, value in dict(self.ports, DIR=self.dir, NOFILE=nofile()).items():
            text = text.replace(f"@{key}@", str(value))
        path = os.path.join(self.dir, template)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self):
        p = self.ports
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.backend = self._start("backend", [
            nginx, "-p", self.dir, "-c", self.render("orchestration-backend-nginx.conf")], LOAD_CPU)
        system.wait_port(p["BACKEND_H1"], self.backend)
        self.delay = self._start("delay-backend", [
            sys.executable, os.path.join(HERE, "delay_backend.py"), str(p["DELAY_H1"])], LOAD_CPU)
        system.wait_port(p["DELAY_H1"], self.delay)
        self.gateway = self._start("gatehouse-internal", [
            os.path.join(self.bin, "gatehouse-internal"), "--config",
            self.render("gatehouse-orchestration.yaml")], PROXY_CPU)
        system.wait_port(p["INTERNAL_PLAIN"], self.gateway)
        system.wait_ready(p["INTERNAL_ADMIN"], self.gateway)

    def _start(self, name, argv, cpu):
        proc = system.Proc(name, argv, cpu, self.dir)
        self.procs.append(proc)
        return proc

    def url(self, path):
        return f"http://127.0.0.1:{self.ports['INTERNAL_PLAIN']}{path}"

    def backend_counters(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['BACKEND_STATUS']}/",
                                    timeout=5) as r:
            accepts, _h, requests = (int(x) for x in r.read().decode().splitlines()[2].split())
        return accepts, requests

    def in_flight(self):
        """The gateway's `gatehouse_in_flight_requests` gauge (requests it counts as open)."""
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.ports['INTERNAL_ADMIN']}/metrics", timeout=5) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("gatehouse_in_flight_requests "):
                        return float(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self):
        for proc in reversed(self.procs):
            proc.stop()
        self.procs = []


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, dict(r.headers), r.read()


def check(lab):
    """What each path answers, before any measurement: the figures mean nothing otherwise."""
    seen = {}
    for path in ("/agg/fast", "/agg/slow", "/part/a", "/proxy/part/a", "/slow/delay/20",
                 "/hit/1", "/hit/1", "/cached/1"):
        t = time.monotonic()
        status, headers, body = get(lab.url(path))
        ms = (time.monotonic() - t) * 1000
        h = {k.lower(): v for k, v in headers.items()}
        seen.setdefault(path, []).append({
            "status": status, "ms": round(ms, 2), "content-type": h.get("content-type"),
            "cache-control": h.get("cache-control"), "x-cache": h.get("x-cache"),
            "partial": h.get("x-gatehouse-partial"), "body": body.decode()[:300]})
        if status != 200:
            raise SystemExit(f"check: {path} answered {status}: {body[:300]!r}")
    agg = json.loads(seen["/agg/fast"][0]["body"])
    if sorted(agg) != ["price", "product", "reviews", "stock"] or any(v is None for v in agg.values()):
        raise SystemExit(f"check: /agg/fast is not four answered parts: {agg}")
    if seen["/agg/slow"][0]["partial"] or seen["/agg/fast"][0]["partial"]:
        raise SystemExit("check: an aggregate answered partial")
    if [x["x-cache"] for x in seen["/hit/1"]] != ["MISS", "HIT"]:
        raise SystemExit(f"check: /hit/1 was not MISS then HIT: {seen['/hit/1']}")
    if seen["/cached/1"][0]["x-cache"]:
        raise SystemExit("check: the plain route to /cached/1 went through a cache")
    t = time.monotonic()
    status, _h, _b = get(f"http://127.0.0.1:{lab.ports['DELAY_H1']}/delay/20")
    seen["direct /delay/20"] = [{"status": status, "ms": round((time.monotonic() - t) * 1000, 2)}]
    return seen


def delay_stats(lab):
    """How late the delay backend's answers went out past their delays (and a reset)."""
    _s, _h, body = get(f"http://127.0.0.1:{lab.ports['DELAY_H1']}/stats")
    return json.loads(body)


def sample(url):
    """One answer of a path that gave errors: status, headers and the start of the body."""
    try:
        status, headers, body = get(url)
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, dict(e.headers), e.read()
    except OSError as e:
        return {"error": repr(e)}
    return {"status": status, "headers": headers, "body": body.decode("utf-8", "replace")[:500]}


def snapshot(lab):
    return {
        "gw": system.cpu_ticks(lab.gateway.pids()),
        "backend": system.cpu_ticks(lab.backend.pids()),
        "delay": system.cpu_ticks(lab.delay.pids()),
        "core0": system.cpu_stat(PROXY_CPU),
        "core1": system.cpu_stat(LOAD_CPU),
        "load_s": _own_cpu_s(),
        "counters": lab.backend_counters(),
        "t": time.monotonic(),
    }


def _own_cpu_s():
    import resource
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return c.ru_utime + c.ru_stime + s.ru_utime + s.ru_stime


def measured(lab, opts, run_load):
    """One measured load run with the quiet check, the counters and the noise around it."""
    waited, left = wait_quiet(opts.quiet_wait)
    a = snapshot(lab)
    res = run_load()
    b = snapshot(lab)
    tick_us = 1e6 / system.CLK_TCK
    n = res.get("requests") or 0
    d = {k: b[k] - a[k] for k in ("gw", "backend", "delay", "load_s")}
    p_busy, p_total, p_steal = (y - x for x, y in zip(a["core0"], b["core0"]))
    l_busy, l_total, _ = (y - x for x, y in zip(a["core1"], b["core1"]))
    ours1 = d["backend"] + d["delay"] + d["load_s"] * system.CLK_TCK
    res.update(
        wall_s=round(b["t"] - a["t"], 2),
        gw_cpu_us_per_req=d["gw"] * tick_us / n if n else None,
        gw_cpu_pct=100.0 * d["gw"] * tick_us / 1e6 / (b["t"] - a["t"]),
        backend_requests=b["counters"][1] - a["counters"][1] - 1,
        backend_connections=b["counters"][0] - a["counters"][0] - 1,
        noise_core0_pct=max(0.0, 100.0 * (p_busy - d["gw"]) / max(1, p_total)),
        noise_core1_pct=max(0.0, 100.0 * (l_busy - ours1) / max(1, l_total)),
        steal_core0_pct=100.0 * p_steal / max(1, p_total),
        quiet_waited_s=waited,
        compilers_at_start=left,
        compilers_at_end=compilers(),
        gw_in_flight_after=lab.in_flight(),
    )
    return res


def h2load_percentiles(url, duration, opts, workdir):
    """h2load --h1 at the fixed rate; p50/p90/p99/p99.9/max/mean (ms) from its request log."""
    per_client = max(1, opts.rate // opts.rate_clients)
    log = os.path.join(workdir, "h2load-requests.log")
    if os.path.exists(log):
        os.remove(log)
    argv = ["h2load", "--h1", "-t1", f"-c{opts.rate_clients}", "-m1", "-D", str(duration),
            f"--rps={per_client}", f"--log-file={log}", url]
    out, rc = system.run_bounded(argv, duration + 30, LOAD_CPU)
    res = load.parse_h2load(out, rc)
    try:
        with open(log) as f:
            us = sorted(int(line.split("\t")[2]) for line in f if line.count("\t") >= 2)
    except OSError:
        us = []
    if us:
        n = len(us)
        pick = lambda p: us[min(n - 1, int(n * p / 100))] / 1000.0  # noqa: E731
        res.update(p50_ms=pick(50), p90_ms=pick(90), p99_ms=pick(99), p999_ms=pick(99.9),
                   max_ms=us[-1] / 1000.0, mean_ms=sum(us) / n / 1000.0, samples=n)
    res["rate"] = per_client * opts.rate_clients
    return res


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rng(values):
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else (None, None)


def fmt(v, spec=".1f"):
    return "—" if v is None else format(v, spec)


def summarize(results):
    lines = []
    cpu = results["cpu"]
    lat = results["latency"]

    def cell_values(key, field):
        return [r[key][field] for r in cpu]

    lines.append("### CPU per request (`wrk -t1 -c%d`, %d s per cell, %d runs; median (min–max))"
                 % (results["opts"]["connections"], results["opts"]["duration"], len(cpu)))
    lines.append("")
    lines.append("| route | req/s | gateway CPU µs/req | backend requests / client request "
                 "| noise core 0 / core 1 (max) |")
    lines.append("|---|---:|---:|---:|---:|")
    for key, path, what in CPU_CELLS:
        us = cell_values(key, "gw_cpu_us_per_req")
        lo, hi = rng(us)
        rps = med(cell_values(key, "rps"))
        per = med([r[key]["backend_requests"] / r[key]["requests"] if r[key]["requests"] else None
                   for r in cpu])
        n0 = max(cell_values(key, "noise_core0_pct"))
        n1 = max(cell_values(key, "noise_core1_pct"))
        lines.append(f"| {what} `{path}` | {fmt(rps, '.0f')} | {fmt(med(us))} ({fmt(lo)}–{fmt(hi)}) "
                     f"| {fmt(per, '.3f')} | {n0:.1f}% / {n1:.1f}% |")
    lines.append("")
    ratios = {
        "aggregate / (4 × plain)": [r["aggregate"]["gw_cpu_us_per_req"] /
                                    (4 * r["plain"]["gw_cpu_us_per_req"]) for r in cpu],
        "aggregate / (4 × proxy handler)": [r["aggregate"]["gw_cpu_us_per_req"] /
                                            (4 * r["proxy"]["gw_cpu_us_per_req"]) for r in cpu],
        "HIT / plain (same path)": [r["hit"]["gw_cpu_us_per_req"] /
                                    r["plain-cached"]["gw_cpu_us_per_req"] for r in cpu],
        "HIT / plain (/part/a)": [r["hit"]["gw_cpu_us_per_req"] /
                                  r["plain"]["gw_cpu_us_per_req"] for r in cpu],
    }
    lines.append("| in-run ratio | median (min–max) |")
    lines.append("|---|---:|")
    for k, v in ratios.items():
        lo, hi = rng(v)
        lines.append(f"| {k} | {med(v):.2f} ({lo:.2f}–{hi:.2f}) |")
    results["ratios"] = {k: {"median": med(v), "min": rng(v)[0], "max": rng(v)[1]}
                         for k, v in ratios.items()}
    lines.append("")
    o = results["opts"]
    lines.append(f"### Latency at a fixed rate (`h2load --h1 -t1 -c{o['rate_clients']} -m1 "
                 f"--rps {max(1, o['rate'] // o['rate_clients'])}`: {o['rate']} req/s, "
                 f"{o['rate_duration']} s per cell, {len(lat)} runs; median of the runs)")
    lines.append("")
    lines.append("| target | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | gateway CPU µs/req "
                 "| backend lateness, 20 ms part, p50 / p99 ms | noise core 0 / core 1 (max) |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = [("aggregate", "aggregate `/agg/slow` (parts 5, 5, 5, 20 ms)"),
             ("proxied", "plain proxied route `/slow/delay/20`"),
             ("direct", "the delay backend `/delay/20`, no gateway")]
    for key, what in names:
        v = lambda f: med([r[key].get(f) for r in lat])  # noqa: E731
        n0 = max(r[key]["noise_core0_pct"] for r in lat)
        n1 = max(r[key]["noise_core1_pct"] for r in lat)
        errs = sum(r[key]["errors"] for r in lat)
        gw = v("gw_cpu_us_per_req") if key != "direct" else None
        late = lambda f: med([r[key].get("delay_backend_lateness", {}).get("20", {}).get(f)  # noqa: E731
                              for r in lat])
        lines.append(f"| {what} | {fmt(v('rps'), '.0f')} | {fmt(v('p50_ms'), '.2f')} | "
                     f"{fmt(v('p90_ms'), '.2f')} | {fmt(v('p99_ms'), '.2f')} | {fmt(v('max_ms'), '.2f')} "
                     f"| {errs} | {fmt(gw)} | {fmt(late('p50_ms'), '.2f')} / {fmt(late('p99_ms'), '.2f')} "
                     f"| {n0:.1f}% / {n1:.1f}% |")
    lines.append("")
    lines.append("| added latency (per run, then median) | p50 ms | p99 ms |")
    lines.append("|---|---:|---:|")
    added = {}
    for a, b, what in (("aggregate", "direct", "aggregate − backend direct (slowest part)"),
                       ("aggregate", "proxied", "aggregate − plain proxied slowest part"),
                       ("proxied", "direct", "plain proxied − backend direct (one hop)")):
        d50 = [r[a]["p50_ms"] - r[b]["p50_ms"] for r in lat]
        d99 = [r[a]["p99_ms"] - r[b]["p99_ms"] for r in lat]
        added[what] = {"p50": d50, "p99": d99}
        lines.append(f"| {what} | {med(d50):+.2f} ({min(d50):+.2f}…{max(d50):+.2f}) "
                     f"| {med(d99):+.2f} ({min(d99):+.2f}…{max(d99):+.2f}) |")
    results["added_latency_ms"] = added
    return "\n".join(lines)


def main(argv):
    opts = parse_args(argv)
    os.sched_setaffinity(0, {LOAD_CPU})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"over --max-minutes {opts.max_minutes}"))
    signal.alarm(opts.max_minutes * 60)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = opts.out or os.path.join(BENCH, "out", f"orchestration-{stamp}")
    os.makedirs(out_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="gatehouse-orch-")
    bin_dir = os.path.join(workdir, "bin")  # a copy: others may rebuild target/ meanwhile
    os.makedirs(bin_dir)
    shutil.copy2(os.path.join(opts.bin_dir, "gatehouse-internal"), bin_dir)
    started = datetime.datetime.now(datetime.timezone.utc)
    model = next((line.split(":", 1)[1].strip() for line in sh("lscpu").splitlines()
                  if line.startswith("Model name")), "?")
    dirty = sh("git", "-C", REPO, "status", "--porcelain", "--untracked-files=no")
    results = {
        "meta": {
            "date": started.strftime("%Y-%m-%d %H:%M UTC"),
            "commit": sh("git", "-C", REPO, "rev-parse", "--short", "HEAD")
            + (" (working tree with uncommitted changes)" if dirty else ""),
            "binary": sh(os.path.join(bin_dir, "gatehouse-internal"), "--version") + ", built "
            + datetime.datetime.fromtimestamp(os.path.getmtime(os.path.join(
                opts.bin_dir, "gatehouse-internal")), datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs, {model}, Linux {platform.release()}; gateway on "
                       f"core {PROXY_CPU}; nginx, the delay backend, wrk/h2load and this script "
                       f"on core {LOAD_CPU}",
            "tools": f"{sh('h2load', '--version')}; "
                     f"{sh('wrk', '-v').splitlines()[0] if sh('wrk', '-v') else 'wrk'}; "
                     f"{subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr.strip()}; "
                     f"Python {platform.python_version()}",
            "command": os.environ.get("BENCH_COMMAND", " ".join(sys.argv)),
        },
        "opts": vars(opts),
        "cpu": [],
        "latency": [],
    }
    lab = Lab(workdir, bin_dir)
    try:
        lab.start()
        results["meta"]["gateway_threads"] = system.threads(lab.gateway.pids())
        results["check"] = check(lab)
        print("check: every route answers as expected (aggregate 4 parts, /hit/1 MISS then HIT)",
              flush=True)
        keys = [c[0] for c in CPU_CELLS]
        paths = {c[0]: c[1] for c in CPU_CELLS}
        for i in range(opts.runs):
            order = keys[i % len(keys):] + keys[:i % len(keys)]
            run = {"order": order}
            for key in order:
                url = lab.url(paths[key])
                load.wrk(url, opts.warmup, opts.connections)
                cell = measured(lab, opts, lambda: load.wrk(url, opts.duration, opts.connections))
                if cell["errors"]:
                    cell["error_sample"] = sample(url)
                run[key] = cell
                print(f"cpu run {i + 1} {key:13} {cell['rps']:8.0f} req/s "
                      f"{cell['gw_cpu_us_per_req'] or 0:6.1f} µs/req  backend req "
                      f"{cell['backend_requests']}  errors {cell['errors']}  noise "
                      f"{cell['noise_core0_pct']:.1f}%/{cell['noise_core1_pct']:.1f}%  "
                      f"compilers {len(cell['compilers_at_start'])}/{len(cell['compilers_at_end'])}  "
                      f"in-flight gauge {cell['gw_in_flight_after']}",
                      flush=True)
            results["cpu"].append(run)
        lat_urls = {
            "aggregate": lab.url("/agg/slow"),
            "proxied": lab.url("/slow/delay/20"),
            "direct": f"http://127.0.0.1:{lab.ports['DELAY_H1']}/delay/20",
        }
        lkeys = list(lat_urls)
        for i in range(opts.rate_runs):
            order = lkeys[i % len(lkeys):] + lkeys[:i % len(lkeys)]
            run = {"order": order}
            for key in order:
                url = lat_urls[key]
                h2load_percentiles(url, opts.warmup, opts, workdir)
                delay_stats(lab)  # resets the backend's lateness record
                cell = measured(lab, opts,
                                lambda: h2load_percentiles(url, opts.rate_duration, opts, workdir))
                cell["delay_backend_lateness"] = delay_stats(lab)
                run[key] = cell
                print(f"latency run {i + 1} {key:10} {cell['rps']:6.0f} req/s p50 "
                      f"{cell.get('p50_ms') or 0:6.2f} p99 {cell.get('p99_ms') or 0:6.2f} ms "
                      f"errors {cell['errors']}  noise {cell['noise_core0_pct']:.1f}%/"
                      f"{cell['noise_core1_pct']:.1f}%  compilers "
                      f"{len(cell['compilers_at_start'])}/{len(cell['compilers_at_end'])}",
                      flush=True)
            results["latency"].append(run)
    finally:
        lab.stop()
        results["meta"]["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC")
        md = ""
        if results["cpu"] and results["latency"]:
            md = summarize(results)
        cells = [c for r in results["cpu"] + results["latency"] for k, c in r.items()
                 if k != "order"]
        results["meta"]["quiet"] = {
            "compilers_seen": sorted({p for c in cells
                                      for p in c["compilers_at_start"] + c["compilers_at_end"]}),
            "max_noise_core0_pct": max((c["noise_core0_pct"] for c in cells), default=None),
            "max_noise_core1_pct": max((c["noise_core1_pct"] for c in cells), default=None),
            "waited_for_compilers_s": sum(c["quiet_waited_s"] for c in cells),
        }
        results["meta"]["gateway_in_flight_gauge_after_last_cell"] = (
            cells[-1]["gw_in_flight_after"] if cells else None)
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
