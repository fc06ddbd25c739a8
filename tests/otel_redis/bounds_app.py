"""A FastAPI app whose request paths are chosen by the client, run by uvicorn in tests/otel_redis/test_key_bounds.py.

``/private/...`` is refused with 401 by an authentication middleware before any route matches;
``/spa/...`` is served 200 by a mounted sub-application without route templates; ``/items/{item_id}``
is an ordinary route. None of the first two has a route template, so their paths are bounded by
``OTEL_REDIS_MAX_PATHS`` / ``OTEL_REDIS_MAX_PATH_PREFIXES`` (set by the test).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

import otel_redis


async def spa(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI sub-app serving any path (a single-page app's index)."""
    await PlainTextResponse("index")(scope, receive, send)


class RequireAuth(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next) -> Response:  # type: ignore[no-untyped-def]
        if request.url.path.startswith("/private/"):
            return PlainTextResponse("unauthorised", status_code=401)
        return await call_next(request)


otel_redis.configure()
app = FastAPI()
app.add_middleware(RequireAuth)
app.mount("/spa", spa)
otel_redis.instrument_app(app, exclude_paths=["/healthz"])


@app.get("/healthz")
async def healthz() -> dict:
    return {"ok": True}


@app.get("/items/{item_id}")
async def item(item_id: str) -> dict:
    return {"item": item_id}
