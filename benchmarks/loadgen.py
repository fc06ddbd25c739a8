"""A small HTTP/1.1 keep-alive load generator (asyncio + uvloop), run as its own process.

    python -m benchmarks.loadgen URL SECONDS CONNECTIONS   -> prints "<completed> <errors>"

Each connection sends one GET at a time and reads the full response (Content-Length or chunked).
Bounded in time; only ever targets the URL it is given (the benchmarks pass 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import sys
import time
from urllib.parse import urlsplit


async def _read_response(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return
    elif length > 0:
        await reader.readexactly(length)


async def _worker(host: str, port: int, request: bytes, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            try:
                await _read_response(reader)
                counts[0] += 1
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                counts[1] += 1
                return
    finally:
        writer.close()


async def main(url: str, seconds: float, connections: int) -> tuple[int, int]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nUser-Agent: otel-redis-loadgen/1\r\nAccept: */*\r\n\r\n"
    ).encode()
    counts = [0, 0]
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(_worker(host, port, request, deadline, counts) for _ in range(connections)))
    return counts[0], counts[1]


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    done, errors = asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
    print(done, errors)
