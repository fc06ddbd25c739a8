"""GET /logs/errors: failing requests (4xx/5xx) and ERROR/CRITICAL logs, optionally warnings and full
details (stack traces and the other records of each error's trace)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from otel_redis import query
from otel_redis.record import entry_to_dict

from ..deps import CommonDep, redis_client, settings_of
from ..models import ErrorPage
from ..respond import JSONBytes, page_body, run_page

router = APIRouter(prefix="/logs", tags=["logs"])

#: traces whose related records are returned with details=true, and records per trace
RELATED_TRACES = 20
RELATED_PER_TRACE = 50
STACKTRACE = "exception.stacktrace"


@router.get("/errors", summary="Recent errors: 4xx/5xx requests, ERROR and CRITICAL logs", response_model=ErrorPage,
            response_class=JSONBytes)
async def errors(
    request: Request,
    common: CommonDep,
    include_warnings: Annotated[bool, Query(description="also WARNING logs")] = False,
    details: Annotated[
        bool, Query(description="keep stack traces and add the other records of each error's trace")
    ] = False,
) -> JSONBytes:
    page = await run_page(request, common, [query.group_errors(include_warnings)])
    body = page_body(common, page)
    if not details:
        for record in body["records"]:
            if STACKTRACE in record["attributes"]:
                record["attributes"] = {k: v for k, v in record["attributes"].items() if k != STACKTRACE}
        body["related"] = {}
        return JSONBytes(body)
    body["related"] = await _related(request, common.since_ms, body["records"])
    return JSONBytes(body)


async def _related(request: Request, since_ms: int, records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The other records of the newest errors' traces, two round trips for all of them."""
    traces: list[str] = []
    for record in reversed(records):
        trace = record.get("trace_id")
        if trace and trace not in traces:
            traces.append(trace)
        if len(traces) >= RELATED_TRACES:
            break
    if not traces:
        return {}
    client = redis_client(request)
    shown = {r["id"] for r in records}
    wanted: dict[str, list[str]] = {}
    keep = settings_of(request).retention.requests
    for trace, keys in zip(traces, await query.trace_keys(client, traces, since_ms, RELATED_PER_TRACE, keep)):
        wanted[trace] = [k for k in keys if k not in shown]
    fetched = dict(await query.fetch(client, [k for keys in wanted.values() for k in keys]))
    return {
        trace: [entry_to_dict(k, fetched[k]) for k in keys if k in fetched]
        for trace, keys in wanted.items()
    }
