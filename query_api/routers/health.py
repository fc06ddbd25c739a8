"""GET /healthz: Redis reachable, pipeline counters. No token needed (it reveals no log data)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import otel_redis

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    redis: bool
    pipeline: dict[str, float]


@router.get("/healthz", response_model=Health, summary="Liveness: Redis reachable, pipeline counters")
async def healthz(request: Request) -> JSONResponse | Health:
    try:
        redis_ok = bool(await request.app.state.redis.ping())
    except Exception:  # noqa: BLE001 - health reports, never raises
        redis_ok = False
    body = Health(status="ok" if redis_ok else "degraded", redis=redis_ok, pipeline=otel_redis.stats())
    if not redis_ok:
        return JSONResponse(status_code=503, content=body.model_dump())
    return body
