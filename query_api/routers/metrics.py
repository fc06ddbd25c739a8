"""GET /metrics: Prometheus text (prometheus-client's exposition of query_api/prometheus.py).

It needs a token: the numbers name every proxy hostname and the traffic they get. Prometheus sends
``Authorization: Bearer <token>`` (``authorization: {credentials: ...}`` in its scrape config); the
token may be a read token, the admin token, or a scrape-only token from ``OTEL_REDIS_METRICS_TOKEN``
that opens nothing else.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..auth import _bearer, _matches, bearer_scheme, require_read
from ..prometheus import MetricsSettings, ServiceCollector

router = APIRouter(tags=["metrics"])


def require_metrics(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme)
) -> None:
    """A metrics token, or any read or admin token."""
    settings: MetricsSettings = request.app.state.metrics_settings
    if settings.tokens and _matches(_bearer(request), settings.tokens):
        return
    require_read(request, credentials)


@router.get(
    "/metrics",
    summary="Prometheus metrics: request rates, error rates, percentiles, unique visitors, pipeline and forwarder",
    dependencies=[Depends(require_metrics)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def prometheus_metrics(request: Request) -> Response:
    state = request.app.state
    bg = state.background
    collector = ServiceCollector(bg.client, state.metrics_settings, jobs=bg.status, firing=bg.firing)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        body = generate_latest(registry)
    except Exception as exc:  # noqa: BLE001 - Redis down: a clear 503, not a traceback
        raise HTTPException(status_code=503, detail=f"metrics unavailable: {type(exc).__name__}: {exc}") from None
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
