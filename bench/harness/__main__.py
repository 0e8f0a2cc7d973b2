"""`python3 -m harness`: runs the scenarios against every target, N runs, and writes
results.json and report.md (see bench/README.md). bench/run.sh installs the tools first."""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

from . import profile, report, scenarios, system
from .targets import LOAD_CPU, REPO, TARGETS, Lab, PROXY_CPU

ALL = ["h1", "h2c", "tls", "h2tls", "h3", "handshake", "rate", "idle", "idle-tls", "idle-h2"]
H3_LOAD = os.path.join("examples", "h3-load")  # under --bin-dir: bench/h3/client.rs


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__)
    p.add_argument("--duration", type=int, default=5, help="seconds per measured cell (5)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per cell (1)")
    p.add_argument("--runs", type=int, default=3, help="runs; tables show medians (3)")
    p.add_argument("--scenarios", default=",".join(ALL),
                   help=f"comma-separated subset of {','.join(ALL)} (all)")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset (all)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    p.add_argument("--h2-clients", type=int, default=10, help="h2load connections (10)")
    p.add_argument("--h2-streams", type=int, default=10, help="h2load streams each (10)")
    p.add_argument("--rate", type=int, default=2000, help="fixed-rate scenario, req/s (2000)")
    p.add_argument("--rate-clients", type=int, default=10, help="fixed-rate connections (10)")
    p.add_argument("--idle-conns", type=int, default=10000,
                   help="connections held in each idle scenario (10000)")
    p.add_argument("--idle-hold", type=int, default=5, help="seconds they are held (5)")
    p.add_argument("--bin-dir", default=os.path.join(REPO, "target", "release"))
    p.add_argument("--out", default=None, help="output directory (bench/out/<time>)")
    p.add_argument("--max-minutes", type=int, default=45, help="hard bound on the whole run")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--profile", metavar="TARGET",
                   help="instead of the tables: perf-record TARGET under the first --scenarios")
    p.add_argument("--report", metavar="RESULTS_JSON",
                   help="only print the tables of an earlier run's results.json")
    return p.parse_args(argv)


def sh(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def source():
    """The commit (and whether the tree had changes) when the run started."""
    dirty = " (working tree with uncommitted changes)" if sh(
        "git", "-C", REPO, "status", "--porcelain", "--untracked-files=no") else ""
    return sh("git", "-C", REPO, "rev-parse", "--short", "HEAD"), dirty


def meta(opts, notes, commit, dirty):
    model = next((line.split(":", 1)[1].strip() for line in sh("lscpu").splitlines()
                  if line.startswith("Model name")), "?")
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "commit": commit,
        "dirty": dirty,
        "machine": f"{os.cpu_count()} CPUs, {model}, Linux {platform.release()}, "
                   f"proxy core {PROXY_CPU}, load generator and backend core {LOAD_CPU}",
        "tools": ", ".join([sh("nginx", "-v") or subprocess.run(
            ["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
            sh("haproxy", "-v").splitlines()[0] if sh("haproxy", "-v") else "?",
            sh("wrk", "-v").splitlines()[0] if sh("wrk", "-v") else "wrk",
            sh("h2load", "--version"), sh("openssl", "version")]),
        "command": os.environ.get("BENCH_COMMAND", " ".join(sys.argv)),
        "binaries": sh(os.path.join(opts.bin_dir, "gatehouse-internal"), "--version") + ", built "
        + datetime.datetime.fromtimestamp(os.path.getmtime(
            os.path.join(opts.bin_dir, "gatehouse-internal"))).astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "runs": opts.runs, "duration": opts.duration, "warmup": opts.warmup,
        "idle_conns": opts.idle_conns, "notes": notes,
    }


def tls_check(targets):
    """What each TLS listener negotiates with OpenSSL's defaults (the load generators' library)."""
    found = {}
    for name, t in targets.items():
        port = t.ports.get("tls")
        if port:
            out = subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief"],
                input="", capture_output=True, text=True, timeout=10).stderr
            fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
            found[name] = (f"{fields.get('Protocol version', '?')} "
                           f"{fields.get('Ciphersuite', '?')} "
                           f"{fields.get('Server Temp Key', fields.get('Negotiated TLS1.3 group', '?'))}")
    return found


def one_run(index, opts, chosen, targets_wanted, workdir, bin_dir, notes):
    lab = Lab(os.path.join(workdir, f"run{index}"), bin_dir)
    run = {"run": index, "cells": {}, "rss_idle": {}, "rss_after_load": {}, "threads": {}}
    try:
        lab.make_certs()
        targets = {k: v for k, v in lab.start().items() if k in targets_wanted}
        for name, t in targets.items():
            run["rss_idle"][name] = system.rss_kib(t.pids()) / 1024
            run["threads"][name] = system.threads(t.pids())
        if index == 1:
            run["tls"] = tls_check(targets)
        order = list(targets)
        shift = (index - 1) % len(order)
        order = order[shift:] + order[:shift]  # rotate so no target is always first
        run["order"] = order
        for sc in chosen:
            if sc.key in scenarios.IDLE:
                continue
            for name in order:
                cell = scenarios.measure(sc, targets[name], targets, lab, opts)
                run["cells"].setdefault(sc.key, {})[name] = cell
                print(f"run {index} {sc.key:9} {name:18} " + (
                    cell["absent"] if "absent" in cell else
                    f"{cell['rps']:9.0f} req/s {cell['cpu_us_per_req'] or 0:7.1f} µs/req "
                    f"p99 {cell['p99_ms'] or 0:6.2f} ms errors {cell['errors']} "
                    f"noise {cell['noise_pct']:.0f}%/{cell['load_noise_pct']:.0f}% "
                    f"upstream conns {cell['backend_connections']}"), flush=True)
        for name, t in targets.items():
            run["rss_after_load"][name] = system.rss_kib(t.pids()) / 1024
        idle_keys = [sc.key for sc in chosen if sc.key in scenarios.IDLE]
        for i, key in enumerate(idle_keys):  # after the load scenarios
            start = {}
            if i:
                # The targets keep the memory the previous idle scenario's connections had (nginx,
                # for one, does) and the next connections would reuse it: every idle scenario
                # after the first is measured on freshly started targets.
                lab.stop()
                lab = Lab(os.path.join(workdir, f"run{index}-{key}"), bin_dir)
                lab.make_certs()
                targets = {k: v for k, v in lab.start().items() if k in targets_wanted}
                start = {name: system.rss_kib(t.pids()) / 1024 for name, t in targets.items()}
            for name in order:
                cell = scenarios.measure_idle(key, targets[name], lab, opts)
                if start:
                    cell.update(fresh_start=True, rss_start_mib=start[name])
                run["cells"].setdefault(key, {})[name] = cell
                print(f"run {index} {key:9} {name:18} " + (
                    cell.get("absent") or f"{cell['rss_mib']:.1f} MiB, "
                    f"{cell['kib_per_conn']:.2f} KiB/conn, "
                    f"{cell['rss_after_close_mib']:.1f} MiB after close, "
                    f"errors {cell['errors']}"), flush=True)
    finally:
        lab.stop()
    return run


def titles_of(opts, keys):
    all_sc = {s.key: s for s in scenarios.scenarios(opts) + scenarios.idle_scenarios(opts)}
    return [all_sc[k] for k in ALL if k in keys]


def main(argv):
    opts = parse_args(argv)
    if opts.report:
        with open(opts.report) as f:
            results = json.load(f)
        keys = [k for k in ALL if any(k in r["cells"] for r in results["runs"])]
        print(report.markdown(results, [(s.key, s.title) for s in titles_of(opts, keys)]))
        return
    os.sched_setaffinity(0, {LOAD_CPU})  # the harness itself stays off the proxy core
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"over --max-minutes {opts.max_minutes}"))
    signal.alarm(opts.max_minutes * 60)
    notes = []
    keys = [k.strip() for k in opts.scenarios.split(",") if k.strip()]
    h3_load = os.path.join(opts.bin_dir, H3_LOAD)
    if "h3" in keys:
        h3 = ("HTTP/3: the load generator is h3-load (bench/h3/client.rs: quinn + h3, one "
              "thread), not h2load")
        if "--h3" not in sh("h2load", "--help"):
            h3 += f", which is built without --h3 here ({sh('h2load', '--version')})"
        if not os.access(h3_load, os.X_OK):
            h3 += f"; not measured: {h3_load} not built (`{scenarios.H3_BUILD}`)"
        notes.append(h3)
    unknown = set(keys) - set(ALL)
    if unknown:
        sys.exit(f"unknown scenarios: {sorted(unknown)} (known: {ALL})")
    wanted = [t.strip() for t in opts.targets.split(",") if t.strip()]
    if "nginx" not in wanted:
        notes.append("nginx not measured: the `vs nginx` column is empty")
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if set(keys) & set(scenarios.IDLE) and opts.idle_conns + 500 > limit:
        sys.exit(f"--idle-conns {opts.idle_conns} needs an open-files limit above "
                 f"{opts.idle_conns + 500}; this process has {limit} (raise `ulimit -n`)")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = opts.out or os.path.join(REPO, "bench", "out", stamp)
    os.makedirs(out_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="gatehouse-bench-")
    opts.workdir = workdir
    bin_dir = os.path.join(workdir, "bin")  # a copy: others may rebuild target/ meanwhile
    os.makedirs(bin_dir)
    for b in ("gatehouse-certs", "gatehouse-edge", "gatehouse-internal", "gatehouse-sidecar"):
        shutil.copy2(os.path.join(opts.bin_dir, b), bin_dir)
    opts.h3_load = None  # the h3 scenario's load generator, copied like the binaries under test
    if "h3" in keys and os.access(h3_load, os.X_OK):
        opts.h3_load = shutil.copy2(h3_load, os.path.join(bin_dir, "h3-load"))
    chosen = titles_of(opts, keys)
    if opts.profile and chosen[0].run is None:
        sys.exit(f"--profile needs a load scenario first in --scenarios, not {chosen[0].key}")
    if opts.profile:
        try:
            profile.profile(opts, chosen[0], opts.profile, workdir, bin_dir, out_dir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    results = {"runs": []}
    started_at = source()
    try:
        for i in range(1, opts.runs + 1):
            results["runs"].append(one_run(i, opts, chosen, wanted, workdir, bin_dir, notes))
    finally:
        first = results["runs"][0] if results["runs"] else {}
        if first.get("threads"):
            notes.append("threads per target at start (taskset -c 0 limits Gatehouse's tokio "
                         "runtime to 1 worker): " + ", ".join(
                             f"{k} {v}" for k, v in first["threads"].items()))
        if first.get("tls"):
            notes.append("TLS negotiated by OpenSSL clients: " + "; ".join(
                f"{k}: {v}" for k, v in first["tls"].items()))
        results["meta"] = meta(opts, notes, *started_at)
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        titles = [(s.key, s.title) for s in chosen]
        md = report.markdown(results, titles)
        with open(os.path.join(out_dir, "report.md"), "w") as f:
            f.write(md + "\n")
        print("\n" + md)
        print(f"\nwritten: {out_dir}/report.md and results.json")
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
