"""GET /logs and its lookups by field: every one an index lookup (see otel_redis.query).

Each route takes the common parameters (hours, event, level, hostname, limit, cursor) and
answers a :class:`~query_api.models.LogPage`: the newest ``limit`` matches, oldest first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from otel_redis import query, schema
from otel_redis.record import entry_to_dict, normalize_trace_id

from .. import deps
from ..deps import MAX_VALUE, CommonDep
from ..models import LogPage, LogRecord
from ..respond import JSONBytes, page_response

router = APIRouter(prefix="/logs", tags=["logs"])

#: attr.<name> filters of one query at most
MAX_ATTR_FILTERS = 16
ATTR_PREFIX = "attr."
_ATTR_DOC = (
    " Attribute filters: `attr.<name>=<value>` (repeatable; every name must match, several values of one"
    " name are alternatives; values compared as text) walk at most OTEL_REDIS_ATTR_SCAN_LIMIT candidate"
    " records newest first: past that the page says `partial: true`, `scanned` the records checked, and"
    " `next_cursor` goes on from the last one."
)
#: read by query_api.strict: the route takes attr.<name> parameters besides its declared ones
ATTR_ROUTE = {"openapi_extra": {"x-attribute-filters": True}}


@dataclass
class Extra:
    """The service and attribute filters of /logs and /logs/search."""

    groups: list[query.Group]
    predicates: list[query.Predicate | None]
    scan_limit: int | None


async def extra_filters(
    request: Request,
    service: Annotated[
        str | None, Query(max_length=MAX_VALUE, description="only records whose resource service.name is this")
    ] = None,
) -> Extra:
    extra = Extra([], [], None)
    if service:
        group, predicate = await query.service_group(deps.redis_client(request), service, await deps.shard_count(request))
        extra.groups.append(group)
        extra.predicates.append(predicate)
    wanted = attribute_filters(request)
    if wanted:
        extra.predicates.append(query.attribute_predicate(wanted))
        extra.scan_limit = deps.settings_of(request).attr_scan_limit
    return extra


def attribute_filters(request: Request) -> dict[str, tuple[str, ...]]:
    """The ``attr.<name>=<value>`` parameters, by name; a malformed one is a 422 naming it."""
    wanted: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if not name.startswith(ATTR_PREFIX):
            continue
        attribute = name[len(ATTR_PREFIX) :]
        if not attribute.strip():
            deps.bad_input("query", name, "an attribute filter needs a name: attr.<name>=<value>")
        if len(attribute) > MAX_VALUE or len(value) > MAX_VALUE:
            deps.bad_input("query", name, f"attribute names and values are at most {MAX_VALUE} characters")
        wanted.setdefault(attribute, []).append(value)
    if len(wanted) > MAX_ATTR_FILTERS:
        deps.bad_input("query", ATTR_PREFIX, f"at most {MAX_ATTR_FILTERS} attribute filters")
    return {name: tuple(values) for name, values in wanted.items()}


ExtraDep = Annotated[Extra, Depends(extra_filters)]

IdPath = Annotated[str, Path(max_length=MAX_VALUE)]
Kind = Literal["log", "request"]
_KIND_GROUP = {"log": query.LOGS, "request": query.REQUESTS}
PAGE = {"response_model": LogPage, "response_class": JSONBytes}


@router.get("", summary="Recent logs (application logs and requests), oldest to newest", description=_ATTR_DOC,
            **PAGE, **ATTR_ROUTE)
async def recent(
    request: Request,
    common: CommonDep,
    extra: ExtraDep,
    kind: Annotated[Kind | None, Query(description="only application logs (log) or only requests (request)")] = None,
) -> JSONBytes:
    common.scan_limit = extra.scan_limit
    groups = [_KIND_GROUP[kind]] if kind else []
    return await page_response(request, common, groups + extra.groups, query.all_of(*extra.predicates))


@router.get(
    "/record/{record_id:path}",
    summary="One stored record by its key (req:... or log:..., the id field of every record; URL-encode it)",
    response_model=LogRecord,
    response_class=JSONBytes,
)
async def record(request: Request, record_id: Annotated[str, Path(max_length=MAX_VALUE)]) -> JSONBytes:
    if not schema.is_well_formed_record_key(record_id):
        deps.bad_input("path", "record_id", "not a record id: expected log:{ms}-{uid} or req:{ms}-{uid}:{ip} "
                       "(the id field of a record)")
    found = await query.fetch(deps.redis_client(request), [record_id])
    if not found:
        raise HTTPException(404, f"no stored record {record_id!r}: it expired, was deleted or never existed")
    return JSONBytes(entry_to_dict(*found[0]))


@router.get("/ip/{ip}", summary="By client IP: requests from it and application logs carrying it", **PAGE)
async def by_ip(request: Request, ip: IdPath, common: CommonDep) -> JSONBytes:
    group, predicate = await query.ip_group(deps.redis_client(request), *deps.check_ip("path", "ip", ip))
    return await page_response(request, common, [group], predicate)


@router.get("/host/{fqdn}", summary="By client FQDN (reverse DNS of the client IP); requests only", **PAGE)
async def by_fqdn(request: Request, fqdn: IdPath, common: CommonDep) -> JSONBytes:
    return await page_response(request, common, [query.group_fqdn(fqdn)])


@router.get("/proxy/{proxy_hostname}", summary="By proxy hostname: requests it served, application logs naming it",
            **PAGE)
async def by_proxy(request: Request, proxy_hostname: IdPath, common: CommonDep) -> JSONBytes:
    return await page_response(request, common, [query.group_hostname(proxy_hostname)])


@router.get("/client/{client_id}", summary="By OAuth client id (requests and application logs)", **PAGE)
async def by_client(request: Request, client_id: IdPath, common: CommonDep) -> JSONBytes:
    return await page_response(request, common, [query.group_client(client_id)])


@router.get("/user/{user_id}", summary="By user id (requests and application logs)", **PAGE)
async def by_user(request: Request, user_id: IdPath, common: CommonDep) -> JSONBytes:
    return await page_response(request, common, [query.group_user(user_id)])


@router.get("/session/{session_id}", summary="By session id (requests and application logs)", **PAGE)
async def by_session(request: Request, session_id: IdPath, common: CommonDep) -> JSONBytes:
    return await page_response(request, common, [query.group_session(session_id)])


@router.get("/method/{method}", summary="Requests by HTTP method", **PAGE)
async def by_method(request: Request, method: IdPath, common: CommonDep) -> JSONBytes:
    return await page_response(request, common, [query.group_method(deps.check_method("path", "method", method))])


@router.get("/status/{code}", summary="Requests by HTTP status code", **PAGE)
async def by_status(request: Request, code: int, common: CommonDep) -> JSONBytes:
    return await page_response(request, common, [query.group_status(deps.check_status("path", "code", code))])


@router.get("/trace/{trace_id}", summary="Everything of one trace (hex trace id or the string given to trace_id=)", **PAGE)
async def by_trace(request: Request, trace_id: IdPath, common: CommonDep) -> JSONBytes:
    keep = deps.settings_of(request).retention.requests
    return await page_response(request, common, [query.group_trace(normalize_trace_id(trace_id), keep)])


@router.get(
    "/path",
    summary="Requests by path pattern (literal substring; * matches anything; matched against the raw path and route)",
    **PAGE,
)
async def by_path(
    request: Request,
    common: CommonDep,
    pattern: Annotated[str, Query(min_length=1, max_length=MAX_VALUE, description="e.g. /api/users or /api/*/orders")],
    method: Annotated[str | None, Query(max_length=16, description="only this HTTP method")] = None,
) -> JSONBytes:
    verb = deps.check_method("query", "method", method) if method else None
    shards = await deps.shard_count(request)
    group = await query.path_group(deps.redis_client(request), pattern, common.since_ms, _now_ms(), verb, shards)
    return await page_response(request, common, [group], query.path_predicate(pattern))


@router.get("/slow", summary="Requests slower than threshold_ms", **PAGE)
async def slow(
    request: Request,
    common: CommonDep,
    threshold_ms: Annotated[
        float | None,
        Query(ge=0, le=86_400_000, description="default: OTEL_REDIS_SLOW_REQUEST_MS (1000); lower values walk all requests"),
    ] = None,
) -> JSONBytes:
    configured = float(deps.settings_of(request).slow_request_ms)
    threshold = configured if threshold_ms is None else threshold_ms
    group = query.group_slow() if threshold >= configured else query.REQUESTS
    return await page_response(request, common, [group], query.slow_predicate(threshold))


@router.get("/search", summary="Search with any combination of filters (all must match)", description=_ATTR_DOC,
            **PAGE, **ATTR_ROUTE)
async def search(
    request: Request,
    common: CommonDep,
    extra: ExtraDep,
    text: Annotated[
        str | None, Query(max_length=MAX_VALUE, description="case-insensitive literal text in message, path, error, attributes")
    ] = None,
    component: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
    status: Annotated[int | None, Query(description="HTTP status code")] = None,
    method: Annotated[str | None, Query(max_length=16)] = None,
    path: Annotated[str | None, Query(max_length=MAX_VALUE, description="path pattern, as /logs/path")] = None,
    user: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
    client: Annotated[str | None, Query(max_length=MAX_VALUE, description="OAuth client id")] = None,
    trace_id: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
    ip: Annotated[str | None, Query(max_length=64)] = None,
    session: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
    kind: Annotated[Kind | None, Query()] = None,
) -> JSONBytes:
    groups: list[query.Group] = list(extra.groups)
    predicates: list[query.Predicate | None] = list(extra.predicates)
    common.scan_limit = extra.scan_limit
    if component:
        groups.append(query.group_component(component))
    if status is not None:
        groups.append(query.group_status(deps.check_status("query", "status", status)))
    if method:
        groups.append(query.group_method(deps.check_method("query", "method", method)))
    if user:
        groups.append(query.group_user(user))
    if client:
        groups.append(query.group_client(client))
    if trace_id:
        groups.append(query.group_trace(normalize_trace_id(trace_id), deps.settings_of(request).retention.requests))
    if ip:
        group, predicate = await query.ip_group(deps.redis_client(request), *deps.check_ip("query", "ip", ip))
        groups.append(group)
        predicates.append(predicate)
    if session:
        groups.append(query.group_session(session))
    if kind:
        groups.append(_KIND_GROUP[kind])
    if path:
        shards = await deps.shard_count(request)
        groups.append(await query.path_group(deps.redis_client(request), path, common.since_ms, _now_ms(), None, shards))
        predicates.append(query.path_predicate(path))
    if text:
        predicates.append(query.text_predicate(text))
    return await page_response(request, common, groups, query.all_of(*predicates))


def _now_ms() -> int:
    return int(time.time() * 1000)



