"""Per-request cost of ``instrument_app``'s middleware (plus emit) in the event loop, in process:
a bare ASGI app called N times directly and through the middleware (best of rounds of this thread's
CPU time, us/request).

    .venv/bin/python -m benchmarks.stages_asgi [N] [--profile [--callers PATTERN]] [--fastapi]
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time

import otel_redis
from otel_redis.instrumentation import RequestLoggingMiddleware

from .harness import BenchContext
from .stages import Collect

HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"otel-redis-loadgen/1"),
    (b"accept", b"*/*"),
]


async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"id":42,"ok":true}'})


async def receive():  # type: ignore[no-untyped-def]
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message) -> None:  # type: ignore[no-untyped-def]
    pass


def scope() -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/items/42", "raw_path": b"/items/42", "query_string": b"", "root_path": "",
        "headers": list(HEADERS), "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }


async def loop(target, n: int) -> float:  # type: ignore[no-untyped-def]
    t = time.thread_time()  # CPU time of this thread: steadier than wall time on a shared machine
    for _ in range(n):
        await target(scope(), receive, send)
    return (time.thread_time() - t) / n * 1e6


def _fastapi_pair(settings):  # type: ignore[no-untyped-def]
    """The benchmark's minimal FastAPI app, bare and with instrument_app."""
    from fastapi import FastAPI

    def build():  # type: ignore[no-untyped-def]
        fapp = FastAPI()

        @fapp.get("/items/{item_id}")
        async def item(item_id: int) -> dict:
            return {"id": item_id, "ok": True}

        return fapp

    bare_app, wrapped_app = build(), build()
    otel_redis.instrument_app(wrapped_app, settings=settings)
    return bare_app, wrapped_app


def main() -> None:
    argv = sys.argv[1:]
    if "--callers" in argv:  # --callers PATTERN: who calls the functions matching PATTERN (with --profile)
        callers = argv[argv.index("--callers") + 1]
        argv.remove(callers)
    args = [a for a in argv if not a.startswith("--")]
    n = int(args[0]) if args else 20_000
    with BenchContext().redis() as (_server, settings):
        settings = settings.with_overrides(reverse_dns=False)
        collect = Collect(keep=False)
        otel_redis.configure(settings=settings, exporter=collect, set_global_provider=False)  # type: ignore[arg-type]
        mw = RequestLoggingMiddleware(app, settings=settings)
        if "--fastapi" in sys.argv:
            app_bare, mw = _fastapi_pair(settings)
        else:
            app_bare = app
        bare, wrapped = [], []
        for _ in range(5):
            bare.append(asyncio.run(loop(app_bare, n)))
            wrapped.append(asyncio.run(loop(mw, n)))
            otel_redis.force_flush()
            collect.records.clear()
        if "--profile" in sys.argv:
            prof = cProfile.Profile()
            prof.enable()
            asyncio.run(loop(mw, n))
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            if "--callers" in sys.argv:
                pstats.Stats(prof).print_callers(callers)
        otel_redis.shutdown()
    print(f"bare app {min(bare):.2f} us/request, through middleware {min(wrapped):.2f} us/request, "
          f"middleware + emit {min(wrapped) - min(bare):.2f} us/request")


if __name__ == "__main__":
    main()
