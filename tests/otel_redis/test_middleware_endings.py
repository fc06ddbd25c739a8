"""How the ASGI middleware ends a request's record when the app does not end the response itself:
called in process through its own protocol (an ASGI scope and messages), on the real pipeline and
Redis. The e2e tests in test_instrumentation.py cover the same rules through a real server for the
cases a client can cause (a disconnect mid-stream, a websocket)."""

from __future__ import annotations

import asyncio

import pytest

import otel_redis
from otel_redis import schema
from otel_redis.instrumentation import RequestLoggingMiddleware


def _scope(kind: str = "http") -> dict:
    return {
        "type": kind, "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/ending", "raw_path": b"/ending", "query_string": b"", "root_path": "",
        "client": ("198.51.100.7", 50000), "server": ("127.0.0.1", 8000), "headers": [(b"host", b"api.test")],
    }


async def _receive() -> dict:
    return {"type": "http.disconnect"}


async def _send(message: dict) -> None:
    pass


def _one_record(r) -> dict:
    assert otel_redis.force_flush()
    (key,) = r.zrange(schema.IDX_REQ_ALL, 0, -1)
    return r.hgetall(key)


def test_an_http_app_that_returns_without_a_response_is_logged_as_abandoned(pipeline, r, settings):
    async def app(scope, receive, send):
        return None

    asyncio.run(RequestLoggingMiddleware(app, settings=settings)(_scope(), _receive, _send))
    rec = _one_record(r)
    assert rec["status_code"] == "499"
    assert rec["error"] == "client disconnected before the response completed"


def test_a_response_without_its_last_chunk_keeps_its_status(pipeline, r, settings):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})

    asyncio.run(RequestLoggingMiddleware(app, settings=settings)(_scope(), _receive, _send))
    rec = _one_record(r)
    assert rec["status_code"] == "200" and rec["bytes_sent"] == "4"
    assert rec["error"] == "client disconnected before the response completed"


def test_a_websocket_app_that_returns_is_closed_by_the_server_not_abandoned(pipeline, r, settings):
    async def app(scope, receive, send):
        await send({"type": "websocket.accept"})

    asyncio.run(RequestLoggingMiddleware(app, settings=settings)(_scope("websocket"), _receive, _send))
    rec = _one_record(r)
    assert rec["status_code"] == "101" and not rec.get("error")


def test_an_app_that_raises_is_logged_as_500_with_the_error_and_the_exception_goes_on(pipeline, r, settings):
    async def app(scope, receive, send):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(RequestLoggingMiddleware(app, settings=settings)(_scope(), _receive, _send))
    rec = _one_record(r)
    assert rec["status_code"] == "500" and rec["error"] == "RuntimeError: boom"
