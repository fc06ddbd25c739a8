"""JSON endpoints behind the web console's panels (read token): top lists, slowest routes, error
groups and the requests dashboard. All read hourly aggregates (console_stats.py), never records."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from otel_redis import connection, console_stats, metrics, window_stats

from .. import deps
from ..auth import require_read
from .analytics import WindowParam, _seconds

router = APIRouter(prefix="/logs", tags=["console"], dependencies=[Depends(require_read)])

TopKind = Literal["ips", "paths", "agents", "referrers", "not_found", "slow_routes"]
LimitQ = Annotated[int, Query(ge=1, le=500, description="rows to return")]
HostQ = Annotated[str | None, Query(description="only this proxy hostname", max_length=256)]


def _window(request: Request, window: str) -> metrics.Window:
    return metrics.Window.ending(_seconds(window, request))


async def _run(request: Request, plan: window_stats.Plan[Any]) -> Any:
    return await window_stats.run_async(deps.redis_client(request), plan)


@router.get(
    "/top/{kind}",
    summary="Top client IPs, paths, user agents, referrers or 404 paths (counts), or the slowest routes (mean ms)",
)
async def top(
    request: Request, kind: TopKind, window: WindowParam = "24h", limit: LimitQ = 10, hostname: HostQ = None
) -> dict[str, Any]:
    w = _window(request, window)
    host = hostname or None
    if kind == "slow_routes":
        body = await _run(request, console_stats.slow_routes(w.start_ms, w.end_ms, limit, host))
        body["kind"] = kind
    else:
        body = await _run(request, console_stats.top(kind, w.start_ms, w.end_ms, limit, host))
    body["window"] = w.to_dict()
    body["hostname"] = host
    return body


@router.get("/error_groups", summary="Errors grouped by exception type and message fingerprint, counts per hour")
async def error_groups(request: Request, window: WindowParam = "24h", limit: LimitQ = 50) -> dict[str, Any]:
    w = _window(request, window)
    body = await _run(request, console_stats.error_groups(w.start_ms, w.end_ms, limit))
    body["window"] = w.to_dict()
    return body


@router.get(
    "/dashboard",
    summary="Requests dashboard: totals, percentiles, unique visitors, status classes, bytes sent and a time series",
)
def dashboard(request: Request, window: WindowParam = "1h", hostname: HostQ = None) -> dict[str, Any]:
    w = _window(request, window)
    client = request.app.state.background.client
    scope_plan = console_stats.summary(
        w.start_ms, w.end_ms, w.seconds, hostname or None,
        cluster=window_stats.is_cluster(client), shards=connection.read_layout(client),
    )
    (scope, hostnames), series, extra = window_stats.run_sync(client, window_stats.together(
        scope_plan,
        console_stats.series(w.start_ms, w.end_ms, hostname or None),
        console_stats.status_and_bytes(w.start_ms, w.end_ms, hostname or None),
    ))
    if hostname:  # stats:requests has no per-hostname split: the classes the histograms keep
        errors_4xx = scope.errors - scope.server_errors
        extra["status_classes"] = {
            "2xx-3xx": scope.requests - scope.errors, "4xx": errors_4xx, "5xx": scope.server_errors
        }
    return {
        "window": w.to_dict(),
        "hostname": hostname or None,
        "hostnames": hostnames,
        "summary": {**scope.to_dict(), "requests_per_minute": round(scope.requests_per_second * 60, 3)},
        **extra,
        "series": series,
    }

