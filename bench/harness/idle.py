"""The idle-memory client: opens N keep-alive connections (one request each, so every one is a
served HTTP/1.1 connection), holds them idle, lets the caller read the target's RSS, then checks
each connection still answers and closes them all. Python asyncio, bounded in time."""

import asyncio
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: gatehouse-bench-idle\r\n\r\n"


async def _exchange(reader, writer):
    """One request, one response read to its end (Content-Length bodies only: the backend's)."""
    writer.write(REQUEST)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    if status != 200:
        raise RuntimeError(f"status {status}")


async def _hold(port, count, hold_s, measure, concurrency, step_timeout):
    sem = asyncio.Semaphore(concurrency)
    conns = []

    async def open_one():
        async with sem:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, limit=16384), step_timeout)
            conns.append((reader, writer))
            await asyncio.wait_for(_exchange(reader, writer), step_timeout)

    started = time.monotonic()
    results = await asyncio.gather(*(open_one() for _ in range(count)), return_exceptions=True)
    open_errors = sum(1 for r in results if isinstance(r, BaseException))
    opened_s = time.monotonic() - started
    await asyncio.sleep(hold_s)
    measured = measure()

    async def check(pair):
        async with sem:
            await asyncio.wait_for(_exchange(*pair), step_timeout)

    checks = await asyncio.gather(*(check(c) for c in conns), return_exceptions=True)
    lost = sum(1 for r in checks if isinstance(r, BaseException))
    for _, writer in conns:
        writer.close()
    await asyncio.sleep(0.5)
    return {
        "connections": count,
        "open_errors": open_errors,
        "lost_after_hold": lost,
        "open_seconds": round(opened_s, 2),
        "measured": measured,
    }


def hold(port, count, hold_s, measure, concurrency=200, step_timeout=15.0, overall=120.0):
    """Runs the client; `measure()` is called while the connections are held."""

    async def bounded():
        return await asyncio.wait_for(
            _hold(port, count, hold_s, measure, concurrency, step_timeout), overall)

    return asyncio.run(bounded())
