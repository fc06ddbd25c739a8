"""JSON responses serialised by orjson (never raises on odd values), and the page builder."""

from __future__ import annotations

from typing import Any, Sequence

from fastapi import Request
from fastapi.responses import JSONResponse

from otel_redis import query
from otel_redis.record import dumps, entry_to_dict

from .deps import Common, redis_client, shard_count


class JSONBytes(JSONResponse):
    """A JSONResponse (so OpenAPI shows the route's response model) rendered by orjson."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


async def run_page(
    request: Request,
    common: Common,
    groups: Sequence[query.Group] = (),
    predicate: query.Predicate | None = None,
    scan_limit: int | None = None,
) -> query.Page:
    chosen = [*groups, *common.groups] or [query.ALL]
    return await query.search(
        redis_client(request),
        chosen,
        since_ms=common.since_ms,
        limit=common.limit,
        cursor=common.cursor,
        predicate=predicate,
        shards=await shard_count(request),
        scan_limit=scan_limit,
    )


def page_body(common: Common, page: query.Page) -> dict[str, Any]:
    records = [entry_to_dict(key, entry) for key, entry in page.records]
    return {
        "records": records,
        "count": len(records),
        "next_cursor": page.next_cursor,
        "hours": common.hours,
        "limit": common.limit,
        "partial": page.partial,
        "scanned": page.scanned if common.scan_limit is not None else None,
    }


async def page_response(
    request: Request,
    common: Common,
    groups: Sequence[query.Group] = (),
    predicate: query.Predicate | None = None,
) -> JSONBytes:
    """Run the query and answer with a LogPage (a bounded scan when ``common.scan_limit`` is set)."""
    return JSONBytes(page_body(common, await run_page(request, common, groups, predicate, common.scan_limit)))
