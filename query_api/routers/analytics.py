"""GET /logs/metrics and GET /logs/paths: request metrics and path patterns over a window (read token).

Both read the statistics the write path keeps (response-time histograms, HyperLogLogs, path counts),
never the records, so any window up to the stats retention costs a few hash reads per hour.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError

import otel_redis
from otel_redis import metrics
from otel_redis.path_ranking import rank_paths

from ..auth import require_read

router = APIRouter(prefix="/logs", tags=["analytics"], dependencies=[Depends(require_read)])

WindowParam = Annotated[
    str, Query(description="window length: seconds, or a number with s, m, h or d (5m, 1h, 7d)", max_length=16)
]


def _bad(name: str, message: str) -> NoReturn:
    raise RequestValidationError([{"loc": ("query", name), "msg": message, "type": "value_error"}])


def _seconds(window: str, request: Request) -> int:
    try:
        seconds = metrics.parse_duration(window)
    except ValueError as exc:
        _bad("window", str(exc))
    longest = request.app.state.settings.retention.stats
    if seconds > longest:
        _bad("window", f"must be at most {longest // 86400} d (the stats retention)")
    return seconds


@router.get("/metrics", summary="Requests/s, error rate, p50/p95/p99, unique visitors: overall and per hostname")
def window_metrics(
    request: Request,
    window: WindowParam = "5m",
    hostname: Annotated[str | None, Query(description="only this proxy hostname", max_length=256)] = None,
) -> dict[str, Any]:
    seconds = _seconds(window, request)
    client = request.app.state.background.client
    out = metrics.compute(client, seconds, hostname=hostname or None).to_dict()
    out["pipeline"] = otel_redis.stats()
    return out


@router.get("/paths", summary="Path patterns ranked by request count over the window (hour resolution)")
def path_patterns(
    request: Request,
    window: WindowParam = "24h",
    limit: Annotated[int, Query(ge=1, le=1000, description="patterns to return")] = 20,
    method: Annotated[str | None, Query(description="only this HTTP method", max_length=16)] = None,
) -> dict[str, Any]:
    seconds = _seconds(window, request)
    w = metrics.Window.ending(seconds)
    out = rank_paths(request.app.state.background.client, w, limit=limit, method=method)
    out["window"] = w.to_dict()
    return out
