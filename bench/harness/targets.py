"""The lab: certificates, configs from bench/configs, the backend and every target, started
pinned (targets on the proxy core, backend on the load core) and stopped by pid."""

import os
import re
import resource
import shutil
import subprocess
import urllib.request

from . import system

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH)
CONFIGS = os.path.join(BENCH, "configs")

PROXY_CPU = 0
LOAD_CPU = 1

# Rows of every table, in this order.
TARGETS = [
    "direct",
    "nginx",
    "haproxy",
    "gatehouse-internal",
    "gatehouse-edge",
    "gatehouse-sidecar",
]

# Every port is free over TCP and UDP at start (system.free_ports). EDGE_TLS is used over both:
# the edge serves HTTP/3 (QUIC) on the UDP port of every TLS listener, with no key of its own in
# the config (docs/edge.md, edge/src/h3.rs); that is the `h3` scenario's port.
PORT_NAMES = [
    "BACKEND_H1", "BACKEND_H2C", "BACKEND_TLS", "BACKEND_STATUS",
    "NGINX_H1", "NGINX_H2C", "NGINX_TLS",
    "HAPROXY_PLAIN", "HAPROXY_TLS",
    "INTERNAL_PLAIN", "INTERNAL_ADMIN",
    "EDGE_PLAIN", "EDGE_TLS", "EDGE_ADMIN",
    "SIDECAR_OUT", "SIDECAR_OUT_ADMIN", "SIDECAR_IN", "SIDECAR_IN_ADMIN",
]


class Target:
    """A row: the processes whose CPU and RSS are counted, and where each protocol is served.

    `ports` maps `plain` (HTTP/1.1), `h2c`, `tls` (TCP) and `h3` (UDP, QUIC) to a port; a
    missing key is a scenario the target does not take part in, with the reason in `absent`.
    """

    def __init__(self, name, procs, ports, absent=None):
        self.name = name
        self.procs = procs
        self.ports = ports
        self.absent = absent or {}

    def pids(self):
        return [p for proc in self.procs for p in proc.pids()]


class Lab:
    """Everything one run starts, in a temporary directory."""

    def __init__(self, workdir, bin_dir):
        self.dir = workdir
        self.bin = bin_dir
        self.certs = os.path.join(workdir, "certs")
        self.procs = []
        self.ports = dict(zip(PORT_NAMES, system.free_ports(len(PORT_NAMES))))
        os.makedirs(os.path.join(workdir, "tmp"), exist_ok=True)

    # -- set-up -------------------------------------------------------------------------------

    def make_certs(self):
        """Dev PKI from gatehouse-certs: edge (server, also used by nginx/HAProxy/backend, so all
        serve the same ECDSA P-256 chain) and the two sidecar identities."""
        subprocess.run(
            [os.path.join(self.bin, "gatehouse-certs"), "init", "--dir", self.certs,
             "--service", "sidecar-out", "--service", "sidecar-in"],
            check=True, stdout=subprocess.DEVNULL,
        )
        with open(os.path.join(self.dir, "haproxy.pem"), "w") as out:
            for f in ("edge.pem", "edge-key.pem"):
                out.write(open(os.path.join(self.certs, f)).read())

    def render(self, template):
        """bench/configs/TEMPLATE with every @NAME@ filled in, written to the run directory."""
        text = open(os.path.join(CONFIGS, template)).read()
        values = dict(self.ports, DIR=self.dir, CERTS=self.certs, NOFILE=nofile())
        for key, value in values.items():
            text = text.replace(f"@{key}@", str(value))
        if template.startswith("gatehouse-") and os.environ.get("BENCH_LOGGING") == "default":
            # Gatehouse's defaults: the access log on, level info (to the run's log file).
            text = text.replace("log_level: warn", "log_level: info")
            text = text.replace("access_log: false", "access_log: true")
        left = re.findall(r"@[A-Z_]+@", text)
        if left:
            raise RuntimeError(f"unfilled placeholders in {template}: {left}")
        path = os.path.join(self.dir, template)
        with open(path, "w") as f:
            f.write(text)
        return path

    def _start(self, name, argv, cpu, env=None):
        proc = system.Proc(name, argv, cpu, self.dir, env)
        self.procs.append(proc)
        return proc

    def _gatehouse(self, binary, name, template, ports):
        config = self.render(template)
        proc = self._start(name, [os.path.join(self.bin, binary), "--config", config], PROXY_CPU)
        admin = ports.pop()
        for p in ports:
            system.wait_port(p, proc)
        system.wait_ready(admin, proc)
        return proc

    def start(self):
        """Starts the backend and every target; returns {row name: Target}."""
        p = self.ports
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"

        backend = self._start(
            "backend", [nginx, "-p", self.dir, "-c", self.render("backend-nginx.conf")], LOAD_CPU)
        for port in (p["BACKEND_H1"], p["BACKEND_H2C"], p["BACKEND_TLS"]):
            system.wait_port(port, backend)
        self.backend = backend

        ngx = self._start(
            "nginx", [nginx, "-p", self.dir, "-c", self.render("nginx.conf")], PROXY_CPU)
        for port in (p["NGINX_H1"], p["NGINX_H2C"], p["NGINX_TLS"]):
            system.wait_port(port, ngx)

        hap = self._start("haproxy", [haproxy, "-db", "-f", self.render("haproxy.cfg")], PROXY_CPU)
        for port in (p["HAPROXY_PLAIN"], p["HAPROXY_TLS"]):
            system.wait_port(port, hap)

        internal = self._gatehouse(
            "gatehouse-internal", "gatehouse-internal", "gatehouse-internal.yaml",
            [p["INTERNAL_PLAIN"], p["INTERNAL_ADMIN"]])
        edge = self._gatehouse(
            "gatehouse-edge", "gatehouse-edge", "gatehouse-edge.yaml",
            [p["EDGE_PLAIN"], p["EDGE_TLS"], p["EDGE_ADMIN"]])
        system.wait_udp(p["EDGE_TLS"], edge)  # the TLS listener's QUIC endpoint
        side_in = self._gatehouse(
            "gatehouse-sidecar", "gatehouse-sidecar-in", "gatehouse-sidecar-in.yaml",
            [p["SIDECAR_IN"], p["SIDECAR_IN_ADMIN"]])
        side_out = self._gatehouse(
            "gatehouse-sidecar", "gatehouse-sidecar-out", "gatehouse-sidecar-out.yaml",
            [p["SIDECAR_OUT"], p["SIDECAR_OUT_ADMIN"]])

        no_tls = "no TLS listener: a plain proxy"
        pair_tls = "its TLS hop is between the two sidecars, measured in every scenario"
        no_h3 = {
            "direct": {"h3": "the backend is Debian's nginx 1.22: no HTTP/3 "
                             "(built without http_v3_module)"},
            "nginx": {"h3": "Debian's nginx 1.22 has no HTTP/3 (built without http_v3_module)"},
            "haproxy": {"h3": "Debian's HAProxy 2.6 has no HTTP/3 (built with -QUIC)"},
            "gatehouse-internal": {"h3": "no TLS listener, so no QUIC endpoint: a plain proxy"},
            "gatehouse-sidecar": {"h3": "no QUIC listener: clients reach sidecar 1 over TCP"},
        }
        return {
            "direct": Target(
                "direct", [backend],
                {"plain": p["BACKEND_H1"], "h2c": p["BACKEND_H2C"], "tls": p["BACKEND_TLS"]},
                no_h3["direct"]),
            "nginx": Target(
                "nginx", [ngx],
                {"plain": p["NGINX_H1"], "h2c": p["NGINX_H2C"], "tls": p["NGINX_TLS"]},
                no_h3["nginx"]),
            "haproxy": Target(
                "haproxy", [hap],
                {"plain": p["HAPROXY_PLAIN"], "h2c": p["HAPROXY_PLAIN"], "tls": p["HAPROXY_TLS"]},
                no_h3["haproxy"]),
            "gatehouse-internal": Target(
                "gatehouse-internal", [internal],
                {"plain": p["INTERNAL_PLAIN"], "h2c": p["INTERNAL_PLAIN"]},
                {"tls": no_tls, **no_h3["gatehouse-internal"]}),
            "gatehouse-edge": Target(
                "gatehouse-edge", [edge],
                {"plain": p["EDGE_PLAIN"], "h2c": p["EDGE_PLAIN"], "tls": p["EDGE_TLS"],
                 "h3": p["EDGE_TLS"]}),  # over UDP: the TLS listener's QUIC endpoint
            "gatehouse-sidecar": Target(
                "gatehouse-sidecar", [side_out, side_in],
                {"plain": p["SIDECAR_OUT"], "h2c": p["SIDECAR_OUT"]},
                {"tls": pair_tls, **no_h3["gatehouse-sidecar"]}),
        }

    def backend_counters(self):
        """(accepted connections, requests) of the backend so far, from nginx's stub_status;
        the read itself counts one connection and one request."""
        url = f"http://127.0.0.1:{self.ports['BACKEND_STATUS']}/"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        accepts, _handled, requests = (int(x) for x in text.splitlines()[2].split())
        return accepts, requests

    def stop(self):
        """Stops every process this lab started, newest first, by pid."""
        for proc in reversed(self.procs):
            proc.stop()
        self.procs = []


def nofile():
    """The open-files limit this process (and so every process it starts) has."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
