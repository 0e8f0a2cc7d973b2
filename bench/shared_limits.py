"""Cost of a shared rate-limit check (Redis) against the local limiter and no limit.

The edge (one worker, core 0) in front of a fixed-response nginx; h2load (HTTP/1.1), nginx and
redis-server on core 1. For each case: the edge's CPU per request at saturation (its
utime+stime over a closed-loop run / requests) and p50/p99 latency at a fixed rate from
h2load's per-request log. The limits never refuse (quota far above the rate): what is measured
is the check itself.

    python3 bench/shared_limits.py --edge target/release/gatehouse-edge [--rate 2000] [--duration 8] [--rounds 3]

Needs nginx, h2load (nghttp2-client), redis-server and taskset; bench/run.sh installs the first
two. Prints a Markdown table.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

CASES = [
    ("no limit", ""),
    ("local limit", "      rate_limit: big\n"),
    ("shared limit (Redis)", "      rate_limit: big-shared\n"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def edge_config(port, admin, backend, redis_port, policy_extra):
    return f"""listeners:
  - name: plain
    address: 127.0.0.1:{port}
admin:
  address: 127.0.0.1:{admin}
telemetry:
  log_level: warn
  access_log: false
routes:
  - name: all
    service: backend
services:
  backend:
    endpoints: [127.0.0.1:{backend}]
    protocol: http1
edge:
  redis:
    url: redis://127.0.0.1:{redis_port}
  rate_limits:
    big: {{ quota: 1000000, key: client_ip }}
    big-shared: {{ quota: 1000000, key: client_ip, shared: redis }}
  policies:
    - name: open
      path_prefix: /
      auth: none
{policy_extra}"""


def h2load(url, args, log=None, rate=None):
    argv = ["taskset", "-c", "1", "h2load", "--h1", "-t1", f"-c{args.clients}", "-D",
            str(args.duration)]
    if rate:
        argv += ["--rps", str(max(1, rate // args.clients))]
    if log:
        argv += ["--log-file", log]
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("requests:"):
            # requests: N total, N started, N done, N succeeded, N failed, ...
            fields = line.split()
            done, ok = int(fields[5]), int(fields[7])
            if done != ok:
                sys.exit(f"{url}: {done - ok} failed\n{out}")
            return done
    sys.exit(f"h2load said:\n{out}")


def run_case(args, tmp, backend, redis_port, extra, name):
    """(CPU µs/request at saturation, p50 ms, p99 ms at a fixed rate) of one edge."""
    port, admin = free_port(), free_port()
    conf = os.path.join(tmp, "edge.yaml")
    with open(conf, "w") as f:
        f.write(edge_config(port, admin, backend, redis_port, extra))
    env = dict(os.environ, TOKIO_WORKER_THREADS="1")
    edge = subprocess.Popen(["taskset", "-c", "0", args.edge, "--config", conf], env=env,
                            stderr=open(os.path.join(tmp, "edge.log"), "a"))
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/"
        subprocess.run(["taskset", "-c", "1", "h2load", "--h1", "-n", "2000", "-c", "10", url],
                       stdout=subprocess.DEVNULL, check=True)
        before = cpu_seconds(edge.pid)
        done = h2load(url, args)
        cpu = (cpu_seconds(edge.pid) - before) * 1e6 / done
        log = os.path.join(tmp, f"h2load-{time.monotonic_ns()}.log")
        h2load(url, args, log=log, rate=args.rate)
        lat = []
        with open(log) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    if parts[1] != "200":
                        sys.exit(f"{name}: status {parts[1]}")
                    lat.append(int(parts[2]) / 1000.0)
        if "big-shared" in extra:
            # Every check was Redis's: the store answered, nothing fell back to local.
            import urllib.request
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics").read().decode()
            up = [l for l in metrics.splitlines() if l.startswith("gatehouse_rate_limit_store_up{")]
            fell = [l for l in metrics.splitlines()
                    if l.startswith("gatehouse_rate_limit_store_fallbacks_total{")
                    and not l.endswith(" 0")]
            if not up or not up[0].endswith(" 1") or fell:
                sys.exit(f"{name}: the store did not answer every check: {up} {fell}")
        return (cpu, percentile(lat, 50), percentile(lat, 99))
    finally:
        edge.terminate()
        edge.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edge", required=True)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gh-shared-bench-")
    procs = []
    try:
        backend = free_port()
        nginx_conf = os.path.join(tmp, "nginx.conf")
        with open(nginx_conf, "w") as f:
            f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err warn;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 100000000;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{backend}; location / {{ return 200 "ok"; }} }} }}
""")
        procs.append(subprocess.Popen(["taskset", "-c", "1", "nginx", "-c", nginx_conf]))
        redis_port = free_port()
        procs.append(subprocess.Popen(
            ["taskset", "-c", "1", "redis-server", "--port", str(redis_port), "--bind",
             "127.0.0.1", "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
        wait_port(backend)
        wait_port(redis_port)
        results = {name: [] for name, _ in CASES}
        for _ in range(args.rounds):
            for name, extra in CASES:
                results[name].append(run_case(args, tmp, backend, redis_port, extra, name))
        print(f"Medians of {args.rounds} rounds (cases interleaved). CPU: closed loop, "
              f"{args.clients} HTTP/1.1 connections, {args.duration} s; latency: fixed "
              f"{args.rate} req/s, {args.duration} s.\n")
        print("| case | edge CPU µs/req | p50 ms | p99 ms |")
        print("|---|---|---|---|")
        for name, _ in CASES:
            runs = results[name]
            med = lambda i: sorted(r[i] for r in runs)[len(runs) // 2]
            print(f"| {name} | {med(0):.1f} | {med(1):.3f} | {med(2):.3f} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
