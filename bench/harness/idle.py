"""The idle-memory client: opens N keep-alive connections (one request each, so every one is a
served connection), holds them idle, lets the caller read the target's RSS, then checks each
connection still answers, closes them all and lets the caller read the RSS once more, about 1 s
after the last one closed. Three kinds of connection: HTTP/1.1 over plain TCP (`h1`) or over TLS
(`tls`), and HTTP/2 cleartext with prior knowledge (`h2`: a minimal client of its own, one
stream at a time, no HPACK dynamic table). Python asyncio, bounded in time."""

import asyncio
import ssl
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: gatehouse-bench-idle\r\n\r\n"


class Stream:
    """A connection's bytes: plain TCP, or TLS run through ssl.MemoryBIO and read on demand
    (asyncio's own TLS transport keeps a zeroed 256 KiB read buffer per connection: 2.5 GiB of
    this process, and as many page faults on the load core, for 10,000 connections)."""

    def __init__(self, port, ssl_ctx=None):
        self.port = port
        self.ssl_ctx = ssl_ctx
        self.writer = None
        self.tls = None

    async def connect(self):
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, limit=16384)
        if self.ssl_ctx:
            self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.tls = self.ssl_ctx.wrap_bio(self.incoming, self.outgoing,
                                             server_hostname="127.0.0.1")
            self.buf = bytearray()
            await self._tls(self.tls.do_handshake)

    async def _tls(self, op, *args):
        """op on the TLS object, fed with the socket's bytes until it needs no more."""
        while True:
            try:
                result = op(*args)
                break
            except ssl.SSLWantReadError:
                await self._flush()
                data = await self.reader.read(16384)
                if data:
                    self.incoming.write(data)
                else:
                    self.incoming.write_eof()
        await self._flush()
        return result

    async def _flush(self):
        data = self.outgoing.read()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def send(self, data):
        if self.tls:
            await self._tls(self.tls.write, data)
        else:
            self.writer.write(data)
            await self.writer.drain()

    async def _fill(self):
        data = await self._tls(self.tls.read, 65536)
        if not data:
            raise ConnectionError("closed by the server")
        self.buf += data

    async def read_until(self, separator):
        if not self.tls:
            return await self.reader.readuntil(separator)
        while (end := self.buf.find(separator)) < 0:
            if len(self.buf) > 16384:
                raise RuntimeError("response head over 16 KiB")
            await self._fill()
        return await self.read_exactly(end + len(separator))

    async def read_exactly(self, n):
        if not self.tls:
            return await self.reader.readexactly(n)
        while len(self.buf) < n:
            await self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def negotiated(self):
        """What the TLS connection negotiated, or None."""
        if self.tls is None or self.tls.cipher() is None:
            return None
        return (f"{self.tls.version()} {self.tls.cipher()[0]}, "
                f"ALPN {self.tls.selected_alpn_protocol()}")

    def close(self):
        """Closes the connection (TLS: close_notify first, without waiting for the server's)."""
        if self.tls:
            try:
                self.tls.unwrap()
            except (ssl.SSLError, ValueError):  # waits for the server's: not done here
                pass
            self.writer.write(self.outgoing.read())
        self.writer.close()


class H1:
    """An HTTP/1.1 keep-alive connection, over TLS when given an ssl.SSLContext."""

    def __init__(self, port, ssl_ctx=None):
        self.stream = Stream(port, ssl_ctx)

    async def open(self):
        await self.stream.connect()

    async def request(self):
        """One request, one response read to its end (Content-Length bodies only: the backend's)."""
        await self.stream.send(REQUEST)
        head = await self.stream.read_until(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.stream.read_exactly(length)
        if status != 200:
            raise RuntimeError(f"status {status}")

    def close(self):
        self.stream.close()


# HTTP/2 (RFC 9113): frame types and flags used here.
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# GET / as HPACK (RFC 7541) without the dynamic table: :method GET, :scheme http and :path / are
# static entries 2, 6 and 4 (indexed: 0x80 | index); :authority is a literal without indexing
# whose name is static entry 1 (0x01), then the value's length (no Huffman) and the value.
AUTHORITY = b"bench"
REQUEST_BLOCK = b"\x82\x86\x84\x01" + bytes([len(AUTHORITY)]) + AUTHORITY
# :status as a static entry (indexed: 0x88..0x8e), the form every server uses for these.
STATIC_STATUS = {0x88: 200, 0x89: 204, 0x8A: 206, 0x8B: 304, 0x8C: 400, 0x8D: 404, 0x8E: 500}


def frame(kind, flags, stream, payload=b""):
    head = len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big")
    return head + payload


def response_status(flags, payload):
    """The :status of a response HEADERS frame (its first header field), or a description of a
    block this client does not decode."""
    start, end = 0, len(payload)
    if flags & PADDED:
        start, end = 1, end - payload[0]
    if flags & PRIORITY:
        start += 5
    block = payload[start:end]
    while block and block[0] & 0xE0 == 0x20:  # dynamic table size updates come first
        i = 1
        if block[0] & 0x1F == 0x1F:
            while i < len(block) and block[i] & 0x80:
                i += 1
            i += 1
        block = block[i:]
    return STATIC_STATUS.get(block[0] if block else None, f"not decoded ({block[:8].hex()})")


class H2:
    """An HTTP/2 cleartext connection with prior knowledge; requests GET / one stream at a time
    (1, 3, ...), ACKs the server's SETTINGS and answers its PINGs while it reads."""

    def __init__(self, port):
        self.stream = Stream(port)
        self.next_stream = 1

    async def open(self):
        """Preface and an empty SETTINGS; the server's SETTINGS (its first frame) ACKed."""
        await self.stream.connect()
        self.writer = self.stream.writer
        self.writer.write(PREFACE + frame(SETTINGS, 0, 0))
        await self.writer.drain()
        kind, flags, _, _ = await self._read_frame()
        if kind != SETTINGS or flags & ACK:
            raise RuntimeError(f"first frame from the server is of type {kind}, not SETTINGS")
        self.writer.write(frame(SETTINGS, ACK, 0))

    async def _read_frame(self):
        head = await self.stream.read_exactly(9)
        length = int.from_bytes(head[:3], "big")
        stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        payload = await self.stream.read_exactly(length) if length else b""
        return head[3], head[4], stream, payload

    async def request(self):
        """GET / on the next stream, frames read until the server ends that stream."""
        stream_id = self.next_stream
        self.next_stream += 2
        self.writer.write(frame(HEADERS, END_STREAM | END_HEADERS, stream_id, REQUEST_BLOCK))
        await self.writer.drain()
        status = None
        while True:
            kind, flags, stream, payload = await self._read_frame()
            if kind == SETTINGS and not flags & ACK:
                self.writer.write(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                self.writer.write(frame(PING, ACK, 0, payload))
            elif kind == GOAWAY:
                raise RuntimeError(f"GOAWAY, error code {int.from_bytes(payload[4:8], 'big')}")
            elif stream != stream_id:
                continue  # WINDOW_UPDATE, SETTINGS ACK, what is left of an earlier stream
            elif kind == RST_STREAM:
                raise RuntimeError(f"RST_STREAM, error code {int.from_bytes(payload[:4], 'big')}")
            elif kind == HEADERS and status is None:
                status = response_status(flags, payload)
            if stream == stream_id and kind in (DATA, HEADERS) and flags & END_STREAM:
                break
        await self.writer.drain()
        if status != 200:
            raise RuntimeError(f"status {status}")

    def close(self):
        self.stream.writer.write(frame(GOAWAY, 0, 0, bytes(8)))  # last stream 0, NO_ERROR
        self.stream.close()


async def _hold(connect, count, hold_s, measure, after_close, concurrency, step_timeout, settle):
    sem = asyncio.Semaphore(concurrency)
    conns = []

    async def open_one():
        async with sem:
            conn = connect()
            conns.append(conn)
            await asyncio.wait_for(conn.open(), step_timeout)
            await asyncio.wait_for(conn.request(), step_timeout)

    started = time.monotonic()
    results = await asyncio.gather(*(open_one() for _ in range(count)), return_exceptions=True)
    open_errors = sum(1 for r in results if isinstance(r, BaseException))
    opened_s = time.monotonic() - started
    streams = [c.stream for c in conns if c.stream.writer is not None]  # connection made
    conns = [c for c in conns if c.stream.writer is not None]
    tls = next((s.negotiated() for s in streams if s.negotiated()), None)
    await asyncio.sleep(hold_s)
    measured = measure()

    async def check(conn):
        async with sem:
            await asyncio.wait_for(conn.request(), step_timeout)

    checks = await asyncio.gather(*(check(c) for c in conns), return_exceptions=True)
    lost = sum(1 for r in checks if isinstance(r, BaseException))
    for c in conns:
        c.close()
    closed = await asyncio.gather(
        *(asyncio.wait_for(s.writer.wait_closed(), step_timeout) for s in streams),
        return_exceptions=True)
    slow_close = sum(1 for r in closed if isinstance(r, asyncio.TimeoutError))
    for s in streams:
        s.writer.transport.abort()  # what did not close in time (a no-op for the others)
    await asyncio.sleep(settle)
    return {
        "connections": count,
        "open_errors": open_errors,
        "lost_after_hold": lost,
        "open_seconds": round(opened_s, 2),
        "close_timeouts": slow_close,
        "tls": tls,
        "measured": measured,
        "after_close": after_close(),
    }


def hold(port, count, hold_s, measure, after_close, kind="h1", ssl_ctx=None, concurrency=200,
         step_timeout=15.0, overall=120.0, settle=1.0):
    """Runs the client; `measure()` is called while the connections are held, `after_close()`
    `settle` seconds after they are all closed. kind: `h1`, `tls` (with ssl_ctx) or `h2`."""
    connect = {"h1": lambda: H1(port), "tls": lambda: H1(port, ssl_ctx),
               "h2": lambda: H2(port)}[kind]

    async def bounded():
        return await asyncio.wait_for(
            _hold(connect, count, hold_s, measure, after_close, concurrency, step_timeout,
                  settle),
            overall)

    return asyncio.run(bounded())
