"""The FastAPI application: ``create_app()`` for embedding and tests, ``app`` for uvicorn.

    uvicorn query_api.app:app        # settings from the environment

Nothing here does I/O at import or construction; the lifespan connects to Redis (REDIS_URL, else
the embedded server for the data folder) and loads the API tokens.
"""

from __future__ import annotations

import inspect
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import redis
from redis.exceptions import RedisClusterException
from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import Request

from otel_redis.config import Settings, load_settings
from otel_redis.connection import LayoutCache, make_async_client, resolve_url
from otel_redis.store import RedisStore

from .auth import load_tokens, require_read
from .models import ERROR_RESPONSES
from .strict import reject_unknown_query
from .background import start_background
from .prometheus import MetricsSettings
from .routers import admin, alerts, analytics, console, errors, health, logs, metrics, oauth, stats, stream, ui


def create_app(settings: Settings | None = None, *, announce_token: bool = True) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = resolve_url(settings)
        app.state.redis = make_async_client(settings, url)
        app.state.layout = LayoutCache(settings.shards)
        app.state.tokens = load_tokens(settings, announce=announce_token)
        app.state.metrics_settings = MetricsSettings.from_env()
        app.state.background = start_background(settings, url)
        try:
            yield
        finally:
            app.state.background.stop()
            await app.state.redis.aclose()

    extra: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        # FastAPI's native telemetry would log every 422 of this API into the store it serves
        extra["telemetry"] = {"logs": False}
    app = FastAPI(
        title="otel-redis",
        version="0.1.0",
        description="Query, follow and count OpenTelemetry logs stored in Redis. A query parameter a route does not "
        "declare is answered 422, naming it.",
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
        **extra,
    )
    app.state.settings = settings
    # set by whoever runs the server when it starts to stop (``otel-redis serve`` on SIGINT/SIGTERM):
    # live-follow streams then end with a final event instead of being cancelled mid-response
    app.state.stopping = threading.Event()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in problems)
        return JSONResponse(status_code=422, content={"detail": message, "errors": problems})

    # RedisClusterException is not a RedisError: redis-py raises it when no node of a Cluster answers
    @app.exception_handler(redis.RedisError)
    @app.exception_handler(RedisClusterException)
    async def _redis_error(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": f"Redis unavailable: {type(exc).__name__}"})

    app.include_router(health.router)
    # order matters only for readability of /docs; no route shadows another
    for module in (logs, errors, stats, oauth, stream, admin):
        app.include_router(module.router, dependencies=[Depends(require_read)], responses=ERROR_RESPONSES)
    app.include_router(ui.router)  # issue 17: the web console's page and assets (no token: the page logs in)
    for module in (metrics, analytics, alerts, console):  # issue 7, 17: their own auth dependencies
        app.include_router(module.router, responses=ERROR_RESPONSES)
    return app


app = create_app()

__all__ = ["app", "create_app", "RedisStore"]
