"""GET /logs/alerts: alert events (fired, resolved) newest first, and the conditions firing now."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from otel_redis import alerts, metrics
from otel_redis.alert_rules import RULES

from ..auth import require_read

router = APIRouter(prefix="/logs", tags=["alerts"], dependencies=[Depends(require_read)])


@router.get("/alerts", summary="Alert events, newest first, and the alert conditions firing now")
def list_alerts(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="events to return")] = 100,
    since: Annotated[str | None, Query(description="only events of this last period: 90s, 30m, 24h, 7d", max_length=16)] = None,
    type: Annotated[Literal["fired", "resolved"] | None, Query(description="only this kind of event")] = None,
    rule: Annotated[str | None, Query(description=f"only this rule: {', '.join(RULES)}", max_length=32)] = None,
) -> dict[str, Any]:
    since_ms = None
    if since:
        try:
            since_ms = int(time.time() * 1000) - metrics.parse_duration(since) * 1000
        except ValueError as exc:
            raise RequestValidationError([{"loc": ("query", "since"), "msg": str(exc), "type": "value_error"}]) from None
    if rule is not None and rule not in RULES:
        raise RequestValidationError(
            [{"loc": ("query", "rule"), "msg": f"unknown rule {rule!r}: use one of {', '.join(RULES)}", "type": "value_error"}]
        )
    client = request.app.state.background.client
    return {
        "active": alerts.active(client),
        "events": alerts.list_events(client, limit=limit, since_ms=since_ms, kind=type, rule=rule),
    }
