"""The scenarios, and how one cell (scenario x target x run) is measured: warm-up, then the
target's CPU ticks, RSS and the proxy core's other load around one bounded load run."""

import os
import resource
import ssl
import time

from . import idle, load, system
from .targets import LOAD_CPU, PROXY_CPU


class Scenario:
    def __init__(self, key, title, proto, run, missing=None):
        self.key = key
        self.title = title
        self.proto = proto
        self.run = run  # run(url, duration, opts, lab) -> result dict
        self.missing = missing  # missing(opts) -> why its load tool is not there, or None


H3_BUILD = "cargo build --release --example h3-load -p gatehouse-tests"
H3_MISSING = f"h3-load not built (`{H3_BUILD}`)"
# The edge's certificate (gatehouse-certs init) names `edge` and `localhost` (and 127.0.0.1).
H3_SERVER_NAME = "localhost"


def url_for(proto, port):
    return f"{'https' if proto in ('tls', 'h3') else 'http'}://127.0.0.1:{port}/"


def scenarios(opts):
    c = opts.connections
    per_client = max(1, opts.rate // opts.rate_clients)
    rate = per_client * opts.rate_clients
    return [
        Scenario("h1", f"HTTP/1.1 keep-alive (`wrk -t1 -c{c}`)", "plain",
                 lambda url, d, o, lab: load.wrk(url, d, c)),
        Scenario("h2c", f"HTTP/2 cleartext, prior knowledge (`h2load -t1 -c{opts.h2_clients} "
                        f"-m{opts.h2_streams}`)", "h2c",
                 lambda url, d, o, lab: load.h2load(url, d, o.h2_clients, o.h2_streams,
                                                    log_dir=o.workdir)),
        Scenario("tls", f"TLS 1.3 keep-alive, HTTP/1.1 (`wrk -t1 -c{c}` on https)", "tls",
                 lambda url, d, o, lab: load.wrk(url, d, c)),
        Scenario("h2tls", f"HTTP/2 over TLS 1.3 (`h2load -t1 -c{opts.h2_clients} "
                          f"-m{opts.h2_streams}` on https, ALPN h2)", "tls",
                 lambda url, d, o, lab: load.h2load(url, d, o.h2_clients, o.h2_streams,
                                                    log_dir=o.workdir)),
        Scenario("h3", f"HTTP/3 over QUIC (`h3-load --connections {opts.h2_clients} --streams "
                       f"{opts.h2_streams}`, as h2tls: TLS 1.3, ALPN h3, one thread)", "h3",
                 lambda url, d, o, lab: load.h3load(
                     o.h3_load, url, d, o.h2_clients, o.h2_streams,
                     os.path.join(lab.certs, "ca.pem"), H3_SERVER_NAME),
                 missing=lambda o: None if getattr(o, "h3_load", None) else H3_MISSING),
        Scenario("handshake", f"full TLS 1.3 handshake per request (`wrk -t1 -c{c} "
                              "-H 'Connection: close'` on https, no resumption)", "tls",
                 lambda url, d, o, lab: load.wrk(url, d, c, headers=["Connection: close"])),
        Scenario("rate", f"fixed rate {rate} req/s, HTTP/1.1 (`h2load --h1 -t1 "
                         f"-c{opts.rate_clients} --rps {per_client}`): latency below saturation",
                 "plain",
                 lambda url, d, o, lab: load.h2load(url, d, o.rate_clients, 1, h1=True,
                                                    rps=per_client, log_dir=o.workdir)),
    ]


# The idle-memory scenarios: key -> (the target's listener, idle.py's client, what is held).
IDLE = {
    "idle": ("plain", "h1", "HTTP/1.1 keep-alive connections"),
    "idle-tls": ("tls", "tls", "HTTP/1.1 keep-alive connections over TLS"),
    "idle-h2": ("h2c", "h2", "HTTP/2 cleartext connections, prior knowledge"),
}


def idle_title(key, count):
    return f"{count:,} idle {IDLE[key][2]} (RSS)"


def idle_scenarios(opts):
    return [Scenario(key, idle_title(key, opts.idle_conns), proto, None)
            for key, (proto, _, _) in IDLE.items()]


def own_core0_pids(targets):
    """Every process of ours pinned to the proxy core (their CPU is not noise)."""
    return [pid for t in targets.values() for proc in t.procs if proc.cpu == PROXY_CPU
            for pid in proc.pids()]


def _snapshot(lab, target, pids, ours):
    """Counters read just before and just after a measured run."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the load generator, once reaped
    me = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "proxy_core": system.cpu_stat(PROXY_CPU),
        "load_core": system.cpu_stat(LOAD_CPU),
        "target": system.cpu_ticks(pids),
        "by_proc": {p.name: system.cpu_ticks(p.pids()) for p in target.procs},
        "ours_core0": system.cpu_ticks(ours),
        "backend": system.cpu_ticks(lab.backend.pids()),
        "load_s": children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime,
        "backend_counters": lab.backend_counters(),
        "time": time.monotonic(),
    }


def measure(scenario, target, targets, lab, opts):
    """One cell. CPU µs/request = Δ(utime+stime) of the target's processes over the measured
    run ÷ requests completed. Noise: CPU time used on each core by processes that are not ours
    (proxy core: anything but our pinned targets; load core: anything but the backend, the load
    generator and this harness), as a share of that core's time over the run."""
    port = target.ports.get(scenario.proto)
    if port is None:
        return {"absent": target.absent.get(scenario.proto, "not applicable")}
    missing = scenario.missing(opts) if scenario.missing else None
    if missing:
        return {"absent": missing}
    url = url_for(scenario.proto, port)
    if opts.warmup:
        scenario.run(url, opts.warmup, opts, lab)
    pids = target.pids()
    ours = own_core0_pids(targets)
    a = _snapshot(lab, target, pids, ours)
    res = scenario.run(url, opts.duration, opts, lab)
    b = _snapshot(lab, target, pids, ours)
    tick_us = 1e6 / system.CLK_TCK
    wall = b["time"] - a["time"]
    n = res.get("requests") or 0
    d = {k: b[k] - a[k] for k in ("target", "ours_core0", "backend", "load_s")}
    p_busy, p_total, p_steal = (y - x for x, y in zip(a["proxy_core"], b["proxy_core"]))
    l_busy, l_total, _ = (y - x for x, y in zip(a["load_core"], b["load_core"]))
    ours_load = d["backend"] + d["load_s"] * system.CLK_TCK
    # The second status read is one connection and one request of its own.
    accepts = b["backend_counters"][0] - a["backend_counters"][0] - 1
    served = b["backend_counters"][1] - a["backend_counters"][1] - 1
    res.update(
        wall_s=round(wall, 2),
        cpu_us_per_req=d["target"] * tick_us / n if n else None,
        cpu_pct=100.0 * d["target"] * tick_us / 1e6 / wall,
        cpu_us_per_req_by_process={
            k: (b["by_proc"][k] - a["by_proc"][k]) * tick_us / n if n else None
            for k in a["by_proc"]},
        backend_cpu_us_per_req=d["backend"] * tick_us / n if n else None,
        backend_connections=accepts,
        backend_requests=served,
        rss_mib=system.rss_kib(pids) / 1024,
        noise_pct=max(0.0, 100.0 * (p_busy - d["ours_core0"]) / max(1, p_total)),
        load_noise_pct=max(0.0, 100.0 * (l_busy - ours_load) / max(1, l_total)),
        steal_pct=100.0 * p_steal / max(1, p_total),
    )
    return res


def measure_idle(key, target, lab, opts):
    """RSS of the target with opts.idle_conns idle connections of scenario `key` held, and
    about 1 s after they were closed. TLS: Python's ssl with OpenSSL's defaults, verifying the
    lab's CA, ALPN http/1.1, a full handshake per connection."""
    proto, kind, _ = IDLE[key]
    port = target.ports.get(proto)
    if port is None:
        return {"absent": target.absent.get(proto, "not applicable")}
    ssl_ctx = None
    if kind == "tls":
        ssl_ctx = ssl.create_default_context(cafile=os.path.join(lab.certs, "ca.pem"))
        ssl_ctx.set_alpn_protocols(["http/1.1"])
    # One connection first, used and closed, so that what a target sets up once, at its first
    # connection of the kind, is not counted per connection (nginx: ~3 MiB at its first TLS
    # handshake).
    warm = idle.hold(port, 1, 0, lambda: None, lambda: None, kind=kind, ssl_ctx=ssl_ctx,
                     settle=0.2)
    pids = target.pids()
    before = system.rss_kib(pids)
    out = idle.hold(port, opts.idle_conns, opts.idle_hold,
                    lambda: {"rss": system.rss_kib(target.pids()),
                             "pss": system.pss_kib(target.pids())},
                    lambda: system.rss_kib(target.pids()),
                    kind=kind, ssl_ctx=ssl_ctx, overall=300.0 if kind == "tls" else 120.0)
    rss = out["measured"]["rss"]
    return {
        "rss_before_mib": before / 1024,
        "rss_mib": rss / 1024,
        "pss_mib": out["measured"]["pss"] / 1024,
        "kib_per_conn": (rss - before) / opts.idle_conns,
        "rss_after_close_mib": out["after_close"] / 1024,
        "errors": out["open_errors"] + out["lost_after_hold"],
        "open_errors": out["open_errors"],
        "lost_after_hold": out["lost_after_hold"],
        "close_timeouts": out["close_timeouts"],
        "open_seconds": out["open_seconds"],
        "tls": out["tls"],
        "warmup_errors": warm["open_errors"] + warm["lost_after_hold"],
    }
