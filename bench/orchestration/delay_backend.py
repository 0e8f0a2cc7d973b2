"""A tiny HTTP/1.1 JSON backend that answers after a fixed delay (issue 14's figure 1).

    python3 delay_backend.py PORT

`GET /delay/<ms>` answers `200 {"delay_ms": <ms>, ...}` with `Content-Type: application/json`
<ms> milliseconds after the request head arrived (asyncio's timer: +0-1 ms); anything else
answers 404 at once. `GET /stats` answers (and resets) how late the delayed answers went out
past their delay, per delay: `{"20": {"n", "p50_ms", "p99_ms", "max_ms"}}` (the backend's own
share of a latency figure). Keep-alive, requests answered in order; request bodies are skipped by
Content-Length (none is expected: the gateway's parts are GETs). Standard library only.
"""

import asyncio
import json
import sys
import time

LATE = {}  # delay ms -> [lateness ms]

BODY = b'{"delay_ms":%d,"id":1001,"name":"Espresso cup","in_stock":true}\n'
NOT_FOUND = (b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
             b"Content-Length: 22\r\n\r\n{\"error\":\"not found\"}\n")


class Conn(asyncio.Protocol):
    def __init__(self):
        self.buf = b""
        self.skip = 0
        self.tail = None  # future of the last answer queued, so answers go out in order

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        loop = asyncio.get_running_loop()
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf, self.skip = self.buf[n:], self.skip - n
                if self.skip:
                    return
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            path = parts[1] if len(parts) > 1 else b"/"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    self.skip = int(value.strip() or 0)
            late = None
            if path.startswith(b"/delay/") and path[7:].isdigit():
                ms = int(path[7:])
                body = BODY % ms
                answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body)) + body
                delay = ms / 1000.0
                late = (LATE.setdefault(ms, []), time.monotonic() + delay)
            elif path == b"/stats":
                body = json.dumps(stats()).encode()
                answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body)) + body
                delay = 0.0
            else:
                answer, delay = NOT_FOUND, 0.0
            self.queue(loop, answer, delay, late)

    def queue(self, loop, answer, delay, late):
        done = loop.create_future()
        before = self.tail
        self.tail = done

        def ready():
            if before is None or before.done():
                send()
            else:
                before.add_done_callback(lambda _: send())

        def send():
            if not self.transport.is_closing():
                self.transport.write(answer)
            if late:
                late[0].append((time.monotonic() - late[1]) * 1000.0)
            if not done.done():
                done.set_result(None)

        if delay > 0:
            loop.call_later(delay, ready)
        else:
            ready()


def stats():
    out = {}
    for ms, values in LATE.items():
        if values:
            v = sorted(values)
            n = len(v)
            out[str(ms)] = {"n": n, "p50_ms": round(v[n // 2], 3),
                            "p99_ms": round(v[min(n - 1, n * 99 // 100)], 3),
                            "max_ms": round(v[-1], 3)}
    LATE.clear()
    return out


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Conn, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
