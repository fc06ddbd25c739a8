"""A demo application for docker-compose.yml: a FastAPI app whose requests and logs go to Redis.

    REDIS_URL=redis://localhost:6379/0 uvicorn examples.demo_app:app --port 8000

It is instrumented with ``otel_redis.instrument_app`` (one request record per request) and logs
with ``log_*`` and ``log_oauth_activity``. With ``DEMO_TRAFFIC_INTERVAL`` (seconds, default 1; 0
turns it off) it calls its own endpoints in the background, so ``just logs``, ``just logs-follow``
and ``just logs-stats`` have something to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from typing import AsyncIterator

import httpx
from fastapi import FastAPI, HTTPException

import otel_redis

PORT = int(os.environ.get("DEMO_PORT", "8000"))
INTERVAL = float(os.environ.get("DEMO_TRAFFIC_INTERVAL", "1"))
_PATHS = ("/", "/users/1", "/users/2", "/users/404", "/orders/7", "/slow", "/boom", "/oauth/token")


async def _traffic() -> None:
    rng = random.Random()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=10) as client:
        while True:
            await asyncio.sleep(INTERVAL)
            path = rng.choice(_PATHS)
            ip = f"203.0.113.{rng.randint(1, 20)}"
            with contextlib.suppress(httpx.HTTPError):
                await client.get(path, headers={"X-Forwarded-For": ip, "Host": rng.choice(("api.example.com", "auth.example.com"))})


@contextlib.asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    otel_redis.log_info("demo app started", component="demo", port=PORT)
    task = asyncio.create_task(_traffic()) if INTERVAL > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
        otel_redis.shutdown()


otel_redis.configure()
app = FastAPI(title="otel-redis demo", lifespan=lifespan)
otel_redis.instrument_app(app)


@app.get("/")
async def index() -> dict:
    return {"hello": "world"}


@app.get("/users/{user_id}")
async def user(user_id: int) -> dict:
    if user_id == 404:
        otel_redis.log_warning("user not found", component="users", user_id=str(user_id))
        raise HTTPException(status_code=404, detail="no such user")
    otel_redis.log_info("loaded user", component="users", user_id=str(user_id))
    return {"user": user_id}


@app.get("/orders/{order_id}")
async def order(order_id: int) -> dict:
    otel_redis.log_event("order_viewed", {"order_id": order_id}, component="orders")
    return {"order": order_id}


@app.get("/slow")
async def slow() -> dict:
    await asyncio.sleep(random.uniform(1.0, 1.5))
    return {"slow": True}


@app.get("/boom")
async def boom() -> dict:
    try:
        raise ConnectionError("upstream refused the connection")
    except ConnectionError as exc:
        otel_redis.log_error("upstream failed", component="proxy", error=exc)
        raise HTTPException(status_code=502, detail="bad gateway") from None


@app.get("/oauth/token")
async def token() -> dict:
    otel_redis.log_oauth_activity("token_issued", "demo-client", "alice", {"scope": "read"})
    return {"token_type": "bearer"}
