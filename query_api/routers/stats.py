"""GET /logs/stats and GET /logs/events: figures from the hourly stats keys, never from records."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from otel_redis import query_stats

from .. import deps
from ..deps import DEFAULT_HOURS, MAX_VALUE, HoursQ
from ..models import EventStats, Stats
from ..respond import JSONBytes

router = APIRouter(prefix="/logs", tags=["stats"])


def _window(request: Request, hours: float) -> tuple[int, int]:
    since = deps.check_hours(hours, deps.max_stats_hours(deps.settings_of(request)), "statistics")
    return since, int(time.time() * 1000)


@router.get(
    "/stats",
    summary="Totals per hour, by status, error rate, requests/s, unique visitors, top paths, p50/p95/p99 per hostname",
    response_model=Stats,
    response_class=JSONBytes,
)
async def stats(
    request: Request,
    hours: HoursQ = DEFAULT_HOURS,
    top: Annotated[int, Query(ge=1, le=100, description="how many top paths")] = 10,
) -> JSONBytes:
    since, now = _window(request, hours)
    body = await query_stats.request_stats(deps.redis_client(request), since, now, top, await deps.shard_count(request))
    return JSONBytes({"hours": hours, **body})


@router.get("/events", summary="Event statistics: count per event name and per hour", response_model=EventStats,
            response_class=JSONBytes)
async def events(
    request: Request,
    hours: HoursQ = DEFAULT_HOURS,
    event: Annotated[str | None, Query(max_length=MAX_VALUE, description="only this event")] = None,
) -> JSONBytes:
    since, now = _window(request, hours)
    body = await query_stats.event_stats(
        deps.redis_client(request), since, now, event or None, await deps.shard_count(request)
    )
    return JSONBytes({"hours": hours, **body})
