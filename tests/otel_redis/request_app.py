"""A FastAPI app instrumented with ``instrument_app``, run by uvicorn in the end-to-end tests.

Started as ``uvicorn tests.otel_redis.request_app:app`` with ``REDIS_URL`` (the test Redis) and
``OTEL_REDIS_TRUSTED_PROXIES`` in its environment. Its reverse-DNS resolver is scripted by peer
address, so the tests can tell apart a quick answer, a failure and a resolver stuck until released:

- ``127.0.0.3`` blocks until ``POST /_test/release-dns`` (then answers ``client-3.test``);
- ``127.0.0.4`` fails (raises OSError);
- any other address answers ``host-<a>-<b>-<c>-<d>.test`` at once.
"""

from __future__ import annotations

import asyncio
import threading

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response, StreamingResponse
from opentelemetry import trace

import otel_redis
from otel_redis.dns import ReverseResolver

release = threading.Event()


def scripted_resolve(ip: str) -> str:
    if ip == "127.0.0.3":
        release.wait(120)
        return "client-3.test"
    if ip == "127.0.0.4":
        raise OSError("no PTR record")
    return "host-" + ip.replace(".", "-").replace(":", "-") + ".test"


resolver = ReverseResolver(scripted_resolve, timeout_s=120, workers=2)

otel_redis.configure()
app = FastAPI()
otel_redis.instrument_app(
    app,
    resolver=resolver,
    exclude_paths=["/healthz", "/_test/*"],
    capture_headers=["authorization", "cookie", "x-api-key", "x-request-id"],
    capture_response_headers=["set-cookie"],
)


def _trace_id() -> str:
    return f"{trace.get_current_span().get_span_context().trace_id:032x}"


@app.get("/healthz")
async def healthz() -> dict:
    return {"ok": True}


@app.get("/users/{user_id}")
async def get_user(user_id: str, request: Request) -> dict:
    request.state.user_id = f"user-{user_id}"
    otel_redis.log_info("loading user", component="users", user=user_id)
    return {"user": user_id, "trace_id": _trace_id()}


@app.get("/items")
async def items() -> Response:
    response = JSONResponse({"items": [1, 2, 3], "trace_id": _trace_id()})
    response.set_cookie("session", "s3cr3t-session-value")
    return response


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks():
        for i in range(5):
            yield f"chunk-{i}\n".encode() * 100
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/endless")
async def endless() -> StreamingResponse:
    async def chunks():
        for _ in range(6000):  # bounded: stops by itself after ~60 s if nobody disconnects
            yield b"x" * 1024
            await asyncio.sleep(0.01)

    return StreamingResponse(chunks(), media_type="application/octet-stream")


@app.get("/boom")
async def boom() -> dict:
    raise RuntimeError("kaboom")


@app.get("/slow")
async def slow() -> dict:
    await asyncio.sleep(0.2)
    return {"slow": True}


@app.get("/trace")
async def show_trace() -> dict:
    return {"trace_id": _trace_id()}


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    message = await websocket.receive_text()
    await websocket.send_text(f"echo:{message}")
    await websocket.close()


@app.post("/_test/release-dns")
async def release_dns() -> dict:
    release.set()
    return {"released": True}


@app.get("/_test/dns")
async def dns_stats() -> dict:
    return resolver.stats()
