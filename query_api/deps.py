"""Shared request parameters and input validation of the /logs routes.

Every bad value becomes a 422 with a message naming the parameter (through the app's
RequestValidationError handler), never a 500.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from otel_redis import query
from otel_redis.config import Settings
from otel_redis.levels import LEVEL_NAMES, parse_level
from otel_redis.query import CursorError, Group, Position, decode_cursor
from otel_redis.store import KNOWN_METHODS, OTHER

#: the largest page a query returns
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
DEFAULT_HOURS = 24.0
#: longest accepted free-text value (search text, path pattern, ids in the path)
MAX_VALUE = 512

#: the methods the store indexes by name (any other is indexed as ``_OTHER``)
HTTP_METHODS = (*sorted(KNOWN_METHODS), OTHER)


def bad_input(where: str, name: str, message: str) -> NoReturn:
    """Raise the same 422 FastAPI gives for a failed validation."""
    raise RequestValidationError([{"loc": (where, name), "msg": message, "type": "value_error"}])


def redis_client(request: Request) -> Any:
    return request.app.state.redis


async def shard_count(request: Request) -> int:
    """The cluster layout's shard count (1 on a standalone Redis), see connection.LayoutCache."""
    return int(await request.app.state.layout.get(request.app.state.redis))


def stopping(request: Request) -> bool:
    """True once the server has begun to shut down (see ``app.state.stopping``)."""
    event = getattr(request.app.state, "stopping", None)
    return event is not None and event.is_set()


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def max_record_hours(settings: Settings) -> float:
    """Records live at most the longest record retention (requests, errors, oauth)."""
    r = settings.retention
    return max(r.requests, r.errors, r.oauth) / 3600


def max_stats_hours(settings: Settings) -> float:
    return settings.retention.stats / 3600


def check_hours(hours: float, limit_hours: float, what: str) -> int:
    """The window start in epoch ms for ``hours`` back from now, or a 422."""
    if not hours > 0:
        bad_input("query", "hours", "must be greater than 0")
    if hours > limit_hours:
        bad_input("query", "hours", f"must be at most {limit_hours:g} (the retention of {what})")
    return int(time.time() * 1000 - hours * 3_600_000)


def check_value(where: str, name: str, value: str) -> str:
    if not value:
        bad_input(where, name, "must not be empty")
    if len(value) > MAX_VALUE:
        bad_input(where, name, f"must be at most {MAX_VALUE} characters")
    return value


def check_ip(where: str, name: str, value: str) -> tuple[str, ...]:
    """The IP as given and in canonical form (``2001:DB8::1`` -> ``2001:db8::1``)."""
    try:
        canonical = str(ipaddress.ip_address(value.strip()))
    except ValueError:
        bad_input(where, name, f"{value[:64]!r} is not an IPv4 or IPv6 address")
    return tuple(dict.fromkeys((canonical, value)))


def check_level(where: str, name: str, value: str) -> str:
    try:
        return parse_level(value)
    except ValueError:
        bad_input(where, name, f"{value[:32]!r} is not a level: use one of {', '.join(LEVEL_NAMES)}")


def check_method(where: str, name: str, value: str) -> str:
    method = value if value == OTHER else value.upper()
    if method not in HTTP_METHODS:
        bad_input(where, name, f"{value[:32]!r} is not an HTTP method: use one of {', '.join(HTTP_METHODS)}")
    return method


def check_status(where: str, name: str, value: int) -> int:
    if not 100 <= value <= 599:
        bad_input(where, name, "must be an HTTP status code between 100 and 599")
    return value


@dataclass
class Common:
    """The parameters every record query takes, validated."""

    hours: float
    since_ms: int
    limit: int
    cursor: Position | None
    groups: list[Group]
    #: set by an attribute filter (attr.<name>=<value>): the records a query checks at most
    scan_limit: int | None = None


HoursQ = Annotated[
    float,
    Query(description="How many hours back to search (default 24; at most the retention, 2160 h with the defaults)."),
]
LimitQ = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Maximum records (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).")
]
CursorQ = Annotated[
    str | None,
    Query(max_length=600, description="The next_cursor of the previous page: continue further back in time."),
]
EventQ = Annotated[str | None, Query(max_length=MAX_VALUE, description="Only application logs with this event name.")]
LevelQ = Annotated[
    str | None,
    Query(
        max_length=32,
        description="Only records of this level (TRACE ... CRITICAL): application logs of the level, and requests "
        "whose status maps to it (INFO below 400, WARNING 4xx, ERROR 5xx).",
    ),
]
HostnameQ = Annotated[
    str | None,
    Query(max_length=MAX_VALUE, description="Only records of this proxy hostname (requests it served, logs naming it)."),
]


async def filter_groups(
    request: Request, since_ms: int, event: str | None, level: str | None, hostname: str | None
) -> list[Group]:
    """The index groups of the event, level and hostname filters (the level group names the status
    indexes of the window, so it reads Redis: see query.level_group)."""
    groups: list[Group] = []
    if event:
        groups.append(query.group_event(event))
    if level:
        name = check_level("query", "level", level)
        now_ms = int(time.time() * 1000)
        groups.append(await query.level_group(redis_client(request), name, since_ms, now_ms, await shard_count(request)))
    if hostname:
        groups.append(query.group_hostname(hostname))
    return groups


def paging(request: Request, hours: float, limit: int, cursor: str | None) -> Common:
    since = check_hours(hours, max_record_hours(settings_of(request)), "records")
    pos = None
    if cursor:
        try:
            pos = decode_cursor(cursor)
        except CursorError as exc:
            bad_input("query", "cursor", str(exc))
    return Common(hours=hours, since_ms=since, limit=limit, cursor=pos, groups=[])


async def common_params(
    request: Request,
    hours: HoursQ = DEFAULT_HOURS,
    event: EventQ = None,
    level: LevelQ = None,
    hostname: HostnameQ = None,
    limit: LimitQ = DEFAULT_LIMIT,
    cursor: CursorQ = None,
) -> Common:
    """hours, event, level, hostname, limit, cursor: the specification's query parameters."""
    common = paging(request, hours, limit, cursor)
    common.groups = await filter_groups(request, common.since_ms, event, level, hostname)
    return common


CommonDep = Annotated[Common, Depends(common_params)]
