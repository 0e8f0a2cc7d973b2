"""Load generators: wrk (HTTP/1.1, plain and TLS), h2load (h2c, fixed rate) and h3-load (HTTP/3,
bench/h3/client.rs), run pinned to the load core and bounded in time; their output parsed into
one result shape."""

import json
import os
import re

from . import system

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def wrk(url, duration, connections, headers=(), cpu=1):
    """wrk, one thread; latency percentiles from its --latency distribution."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for h in headers:
        argv += ["-H", h]
    out, rc = system.run_bounded(argv + [url], duration + 30, cpu)
    return parse_wrk(out, rc)


def parse_wrk(out, rc):
    res = {"tool": "wrk", "raw": out, "rc": rc}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        res[key] = float(m.group(1)) * UNITS[m.group(2)] if m else None
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    res["errors"] = errors if res["requests"] else max(errors, 1)
    return res


def h2load(url, duration, clients, streams=1, h1=False, rps=None, log_dir="/tmp", cpu=1):
    """h2load, one thread, timing-based (-D); p50/p99 from its per-request log file."""
    log = os.path.join(log_dir, "h2load-requests.log")
    if os.path.exists(log):
        os.remove(log)
    argv = ["h2load", "-t1", f"-c{clients}", f"-m{streams}", "-D", str(duration),
            f"--log-file={log}"]
    if h1:
        argv.append("--h1")
    if rps:
        argv.append(f"--rps={rps}")
    out, rc = system.run_bounded(argv + [url], duration + 30, cpu)
    res = parse_h2load(out, rc)
    res["p50_ms"], res["p99_ms"] = percentiles(log, (50, 99))
    if os.path.exists(log):
        os.remove(log)
    return res


def parse_h2load(out, rc):
    res = {"tool": "h2load", "raw": out, "rc": rc}
    m = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", out)
    res["rps"] = float(m.group(3)) if m else 0.0
    m = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout", out)
    if m:
        total, started, done, ok, failed, errored, timeout = (int(x) for x in m.groups())
        res["requests"] = done
        errors = failed + errored + timeout
    else:
        res["requests"], errors = 0, 1
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        errors += int(m.group(3)) + int(m.group(4))
    res["errors"] = errors
    return res


def h3load(binary, url, duration, clients, streams, ca, server_name, cpu=1):
    """h3-load (bench/h3/client.rs): `clients` QUIC connections with `streams` GETs in flight
    each, one thread; it prints one JSON line with its counts and p50/p99 (and bounds itself
    at duration + 10 s)."""
    argv = [binary, "--url", url, "--ca", ca, "--server-name", server_name,
            "--connections", str(clients), "--streams", str(streams), "--duration", str(duration)]
    out, rc = system.run_bounded(argv, duration + 30, cpu)
    return parse_h3load(out, rc)


def parse_h3load(out, rc):
    """Its last JSON line. Errors: requests without a whole response (and failed connection
    attempts), plus responses other than 1xx-3xx (h2load counts 4xx and 5xx), plus one if it
    timed out or exited with an error."""
    res = {"tool": "h3-load", "raw": out, "rc": rc}
    found = None
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                found = json.loads(line)
                break
            except ValueError:
                continue
    if found is None:
        res.update(requests=0, rps=0.0, p50_ms=None, p99_ms=None, errors=1)
        return res
    res["requests"] = int(found.get("requests", 0))
    res["rps"] = float(found.get("rps", 0.0))
    res["p50_ms"], res["p99_ms"] = found.get("p50_ms"), found.get("p99_ms")
    res["status"] = found.get("status", {})
    bad_status = sum(n for code, n in res["status"].items() if not 100 <= int(code) < 400)
    res["errors"] = int(found.get("errors", 0)) + bad_status + (
        1 if rc != 0 or found.get("timed_out") else 0)
    return res


def percentiles(log, pcts):
    """Percentiles (ms) of the third column (µs to the end of the response) of h2load's log."""
    try:
        with open(log) as f:
            durations = sorted(int(line.split("\t")[2]) for line in f if line.count("\t") >= 2)
    except OSError:
        durations = []
    if not durations:
        return tuple(None for _ in pcts)
    n = len(durations)
    return tuple(durations[min(n - 1, int(n * p / 100))] / 1000.0 for p in pcts)
