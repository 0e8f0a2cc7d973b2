"""Processes and /proc: start pinned, find a process tree, read its CPU time and RSS, stop by pid."""

import os
import signal
import socket
import subprocess
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Proc:
    """One process this harness started (and, through it, its children: nginx workers)."""

    def __init__(self, name, argv, cpu, log_dir, env=None):
        self.name = name
        self.cpu = cpu
        log = open(os.path.join(log_dir, f"{name}.log"), "wb")
        full_env = dict(os.environ, **(env or {}))
        # taskset execs the program, so the pid we get is the program's own.
        self.popen = subprocess.Popen(
            ["taskset", "-c", str(cpu), *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
        log.close()
        self.pid = self.popen.pid
        self.known = {}
        self.pids()

    def pids(self):
        """The process and its live descendants (remembered with their start times, so stop()
        can reach a worker even after its master is gone, and never a recycled pid)."""
        tree = descendants(self.pid) if self.alive() else []
        for p in tree:
            st = _stat_fields(p)
            if st:
                self.known[p] = st[19]
        return [p for p in tree if os.path.exists(f"/proc/{p}")]

    def alive(self):
        return self.popen.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM the process, wait, then SIGKILL it and every descendant we ever saw."""
        self.pids()
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        for pid, started in sorted(self.known.items()):
            st = _stat_fields(pid)
            if st and st[19] == started and st[0] != "Z":
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def descendants(pid):
    """pid and every descendant, from /proc/*/stat parent links."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat_fields(int(entry))
            if st:
                children.setdefault(int(st[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_ticks(pids):
    """utime + stime of the processes (all their threads, live and exited), in clock ticks."""
    total = 0
    for pid in pids:
        st = _stat_fields(pid)
        if st:
            total += int(st[11]) + int(st[12])
    return total


def rss_kib(pids):
    """Sum of VmRSS over the processes, KiB (shared pages of a master and its worker count twice)."""
    total = 0
    for pid in pids:
        total += _status_value(pid, "VmRSS")
    return total


def pss_kib(pids):
    """Sum of proportional set sizes (shared pages split between their users), KiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def threads(pids):
    return sum(_status_value(pid, "Threads") for pid in pids)


def _status_value(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_stat(cpu):
    """(busy, total, steal) jiffies of one CPU from /proc/stat; busy excludes irq and softirq."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
                return user + nice + system, sum(v[:8]), steal
    raise RuntimeError(f"cpu{cpu} not in /proc/stat")


def free_ports(n):
    """n distinct ports on 127.0.0.1 free over both TCP and UDP (the edge's TLS listener serves
    QUIC on its port over UDP too): bound to TCP port 0, the same port tried over UDP, then all
    released. A port whose UDP side is taken is kept bound meanwhile, so it is not picked again."""
    socks, ports = [], []
    while len(ports) < n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        port = s.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            u.close()
            continue
        socks.append(u)
        ports.append(port)
    for s in socks:
        s.close()
    return ports


def udp_bound(port):
    """Whether some socket is bound to UDP port `port` on IPv4 (read from /proc/net/udp)."""
    try:
        with open("/proc/net/udp") as f:
            next(f)
            return any(int(line.split()[1].split(":")[1], 16) == port for line in f)
    except (OSError, StopIteration, IndexError, ValueError):
        return False


def wait_udp(port, proc, timeout=15.0):
    """Wait until the process has bound UDP `port` (a QUIC endpoint); fail if it died or time
    is up. Read-only: binding the port ourselves to test it could take it from the process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see its log")
        if udp_bound(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name}: UDP port {port} not bound after {timeout}s")


def wait_port(port, proc, timeout=15.0):
    """Wait until 127.0.0.1:port accepts a connection; fail if the process died or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see its log")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name}: port {port} not open after {timeout}s")


def wait_ready(admin_port, proc, timeout=15.0):
    """Wait until a Gatehouse admin server answers /readyz with 200."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{admin_port}/readyz"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see its log")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name}: /readyz not 200 after {timeout}s")


def run_bounded(argv, timeout, cpu=1):
    """Run a load tool pinned to `cpu`, killed if it outlives `timeout`; returns its stdout."""
    p = subprocess.Popen(
        ["taskset", "-c", str(cpu), *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        out += b"\n[harness: killed after timeout]\n"
    return out.decode("utf-8", "replace"), p.returncode
