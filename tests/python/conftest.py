"""Fixtures for client tests: real Gatehouse binaries (built by `cargo build --bins`) started as
processes, and a small HTTP backend written with Python's standard library."""

import json
import os
import pathlib
import queue
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"


def binary(name: str) -> str:
    path = TARGET / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo build --bins` first")
    return str(path)


class EchoHandler(BaseHTTPRequestHandler):
    """Answers with JSON describing the request it received."""

    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        payload = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_len": len(body),
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def backend():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address
    server.shutdown()


class Gateway:
    """A gateway binary running as a process, with its bound addresses read from its JSON log."""

    def __init__(self, name: str, config_path: pathlib.Path):
        self.proc = subprocess.Popen(
            [binary(name), "--config", str(config_path), "--log-format", "json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: "queue.Queue[dict]" = queue.Queue()
        # Every JSON record the process wrote, start-up included (the queue is consumed).
        self.records: "list[dict]" = []
        threading.Thread(target=self._read, daemon=True).start()
        self.listeners = {}
        self.admin = None
        deadline = time.time() + 20
        while time.time() < deadline and self.admin is None:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {self.proc.returncode}")
                continue
            if line.get("message") == "listening":
                self.listeners[line["listener"]] = line["address"]
            elif line.get("message") == "admin listening":
                self.admin = line["address"]
        if self.admin is None:
            self.stop()
            raise RuntimeError(f"{name} did not start within 20s")

    def _read(self):
        for raw in self.proc.stderr:
            try:
                record = json.loads(raw)
                self.records.append(record)
                self.lines.put(record)
            except ValueError:
                pass

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def gateway(tmp_path):
    started = []

    def start(name: str, yaml: str) -> Gateway:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml)
        gw = Gateway(name, path)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
