"""OAuth activity: summary and flow debugging for an IP, flows by client and/or user, activity by user.

Served from ``idx:oauth:ip:*``, ``idx:oauth:client:*``, ``idx:oauth:user:*`` and ``oauth:flow:*``
(see otel_redis.query_oauth); nothing is guessed from request paths.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from otel_redis import query, query_oauth, schema

from .. import deps
from ..deps import MAX_VALUE, CommonDep
from ..models import LogPage, OAuthFlows, OAuthSummary
from ..respond import JSONBytes, page_response, run_page
from otel_redis.record import entry_to_dict

router = APIRouter(prefix="/logs/oauth", tags=["oauth"])

IdPath = Annotated[str, Path(max_length=MAX_VALUE)]


async def _ip_group(request: Request, ip: str) -> tuple[query.Group, query.Predicate | None]:
    """The address's OAuth index, and its network's and ``_OTHER``'s with a predicate when an
    address beyond the hourly bound was indexed there (bounds.IpBound, like query.ip_group)."""
    ips = deps.check_ip("path", "ip", ip)
    return await query.bounded_ip_group(deps.redis_client(request), (schema.idx_oauth_ip,), *ips)


@router.get("/ip/{ip}", summary="OAuth activity summary for an IP", response_model=OAuthSummary,
            response_class=JSONBytes)
async def ip_summary(request: Request, ip: IdPath, common: CommonDep) -> JSONBytes:
    group, predicate = await _ip_group(request, ip)
    page = await run_page(request, common, [group], predicate)
    # with a predicate the group holds other addresses of the network too: an upper bound then
    counts = await query.count_groups(deps.redis_client(request), [group], common.since_ms, common.cursor)
    return JSONBytes(
        {
            "ip": ip,
            "hours": common.hours,
            "total": counts[0],
            **query_oauth.summarize(page.records),
            "records": [entry_to_dict(k, e) for k, e in page.records],
            "next_cursor": page.next_cursor,
        }
    )


@router.get("/ip/{ip}/flows", summary="Full OAuth flow debugging for an IP: its flows with every record and step",
            response_model=OAuthFlows, response_class=JSONBytes)
async def ip_flows(request: Request, ip: IdPath, common: CommonDep) -> JSONBytes:
    group, predicate = await _ip_group(request, ip)
    page = await run_page(request, common, [group], predicate)
    return await _flows(request, common, page)


@router.get("/flows", summary="OAuth flows by client id and/or username", response_model=OAuthFlows,
            response_class=JSONBytes)
async def flows(
    request: Request,
    common: CommonDep,
    client_id: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
    username: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
) -> JSONBytes:
    groups: list[query.Group] = []
    if client_id:
        groups.append((schema.idx_oauth_client(client_id),))
    if username:
        groups.append((schema.idx_oauth_user(username),))
    if not groups:
        deps.bad_input("query", "client_id", "give client_id, username or both")
    page = await run_page(request, common, groups)
    return await _flows(request, common, page)


@router.get("/user/{username}", summary="OAuth activity of a username", response_model=LogPage,
            response_class=JSONBytes)
async def by_user(request: Request, username: IdPath, common: CommonDep) -> JSONBytes:
    return await page_response(request, common, [(schema.idx_oauth_user(username),)])


async def _flows(request: Request, common: deps.Common, page: query.Page) -> JSONBytes:
    found = await query_oauth.flows(deps.redis_client(request), page.records)
    return JSONBytes({"hours": common.hours, "count": len(found), "flows": found, "next_cursor": page.next_cursor})
