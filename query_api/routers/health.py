"""GET /healthz: Redis reachable (on a Cluster every master), pipeline counters. No token needed
(it reveals no log data)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import otel_redis
from otel_redis.connection import is_cluster_client

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    redis: bool
    pipeline: dict[str, float]
    #: OTLP receiver and forwarder counters of this process, and the forwarding group's backlog
    collector: dict[str, Any] = {}


@router.get("/healthz", response_model=Health, summary="Liveness: Redis reachable, pipeline counters")
async def healthz(request: Request) -> JSONResponse | Health:
    try:
        redis_ok = await _ping(request.app.state.redis)
    except Exception:  # noqa: BLE001 - health reports, never raises
        redis_ok = False
    body = Health(
        status="ok" if redis_ok else "degraded",
        redis=redis_ok,
        pipeline=otel_redis.stats(),
        collector=await _collector(request, redis_ok),
    )
    if not redis_ok:
        return JSONResponse(status_code=503, content=body.model_dump())
    return body


async def _ping(client: Any) -> bool:
    """PING the server; on a Redis Cluster every master (each holds shards that every read merges,
    so one master down means the reads fail: the service is degraded, not ok)."""
    if is_cluster_client(client):
        return bool(await client.ping(target_nodes=client.PRIMARIES))
    return bool(await client.ping())


async def _collector(request: Request, redis_ok: bool) -> dict[str, Any]:
    from collector.config import load_forwarder_settings
    from collector.counters import collector_stats, forwarder_backlog_async, published_forwarders_async

    out: dict[str, Any] = dict(collector_stats())
    if redis_ok:
        try:
            client = request.app.state.redis
            shards = await request.app.state.layout.get(client)
            out["backlog"] = await forwarder_backlog_async(client, load_forwarder_settings().group, shards)
            out["forwarders"] = await published_forwarders_async(client)
        except Exception:  # noqa: BLE001 - health reports, never raises
            out["backlog"] = out["forwarders"] = None
    return out
