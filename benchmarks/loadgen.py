"""A small HTTP/1.1 keep-alive load generator (asyncio Protocol on uvloop), run as its own process.

    python -m benchmarks.loadgen URL SECONDS CONNECTIONS   -> prints "<completed> <errors>"

Each connection sends one GET at a time and reads the full response (Content-Length or chunked)
before sending the next: no pipelining. It is written as a Protocol (no StreamReader, one buffer
scan per response) so that it takes as little of the machine's CPU as it can: on a 2-core machine
the load generator shares the cores with the app, Redis and the writer process, and every
microsecond it spends per request is one the app under test cannot use.
Bounded in time; only ever targets the URL it is given (the benchmarks pass 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import sys
import time
from urllib.parse import urlsplit


class _Connection(asyncio.Protocol):
    """One keep-alive connection: request, whole response, next request, until the deadline."""

    def __init__(self, request: bytes, deadline: float, counts: list[int], done: asyncio.Future[None]) -> None:
        self.request = request
        self.deadline = deadline
        self.counts = counts
        self.done = done
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        end = _response_end(buf)
        if end is None:
            self.buf = buf
            return
        if end < 0:  # not HTTP: count it and stop this connection
            self._finish(error=True)
            return
        self.buf = buf[end:]
        self.counts[0] += 1
        if time.monotonic() >= self.deadline:
            self._finish()
            return
        assert self.transport is not None
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.counts[1] += 1 if time.monotonic() < self.deadline else 0
            self.done.set_result(None)

    def _finish(self, error: bool = False) -> None:
        if error:
            self.counts[1] += 1
        if not self.done.done():
            self.done.set_result(None)
        if self.transport is not None:
            self.transport.close()


def _response_end(buf: bytes) -> int | None:
    """Length of the first complete response in ``buf``; None if incomplete, -1 if malformed."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    if not buf.startswith(b"HTTP/1."):
        return -1
    head = buf[:head_end].lower()
    body = head_end + 4
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        return body + length if len(buf) >= body + length else None
    if b"\r\ntransfer-encoding:" in head and b"chunked" in head:
        pos = body
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(buf[pos:line_end].split(b";")[0], 16)
            pos = line_end + 2 + size + 2
            if len(buf) < pos:
                return None
            if size == 0:
                return pos
    return body  # no body (204, 304)


async def main(url: str, seconds: float, connections: int) -> tuple[int, int]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nUser-Agent: otel-redis-loadgen/1\r\nAccept: */*\r\n\r\n"
    ).encode()
    counts = [0, 0]
    deadline = time.monotonic() + seconds
    loop = asyncio.get_running_loop()
    waits = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda d=done: _Connection(request, deadline, counts, d), host, port)  # type: ignore[misc]
        waits.append(done)
    await asyncio.wait_for(asyncio.gather(*waits), seconds + 30)
    return counts[0], counts[1]


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    completed, errors = asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
    print(completed, errors)
