"""Response models: they document the JSON in OpenAPI. Routes build plain dicts (serialised by orjson)
in exactly these shapes; the record shape is ``otel_redis.record.entry_to_dict``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class LogRecord(BaseModel):
    """One record: an application log (``kind=log``) or an HTTP request (``kind=request``, with the
    specification's Log Entry Schema fields at top level)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="record key (req:... or log:...)")
    kind: Literal["log", "request"]
    timestamp: str = Field(description="RFC 3339 UTC with nanoseconds")
    level: str
    severity_number: int
    body: Any
    component: str | None = None
    event: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    attributes: dict[str, Any] = {}
    resource: dict[str, Any] = {}
    client_ip: str | None = None
    client_hostname: str | None = None
    proxy_hostname: str | None = None
    method: str | None = None
    path: str | None = None
    query: str | None = None
    route: str | None = None
    status_code: int | None = None
    response_time_ms: float | None = None
    user_id: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    bytes_sent: int | None = None
    error: str | None = None
    session_id: str | None = None
    oauth_client_id: str | None = None


class LogPage(BaseModel):
    """The newest ``limit`` matches in the window, oldest first (most recent at the bottom)."""

    records: list[LogRecord]
    count: int
    next_cursor: str | None = Field(description="pass as ?cursor= to get the page before this one; null at the end")
    hours: float
    limit: int
    partial: bool = Field(
        default=False,
        description="true when an attribute filter's bounded scan (OTEL_REDIS_ATTR_SCAN_LIMIT records) stopped before "
        "the window's start: more matches may exist, continue with next_cursor",
    )
    scanned: int | None = Field(default=None, description="records an attribute filter checked (null without one)")


class ErrorPage(LogPage):
    related: dict[str, list[LogRecord]] = Field(
        default={}, description="with details=true: the other records of each error's trace, by trace id"
    )


class HourEvents(BaseModel):
    hour: str
    total: int
    events: dict[str, int]


class EventCount(BaseModel):
    event: str
    count: int
    last_seen_ms: int | None


class EventStats(BaseModel):
    hours: float
    total: int
    events: list[EventCount]
    per_hour: list[HourEvents]


class HourRequests(BaseModel):
    hour: str = Field(description="YYYYMMDD:HH (UTC)")
    requests: int
    errors: int
    by_status: dict[str, int]
    logs: int


class RequestTotals(BaseModel):
    total: int
    errors: int
    error_rate: float
    requests_per_second: float
    by_status: dict[str, int]
    per_hour: list[HourRequests]


class LogTotals(BaseModel):
    total: int
    by_level: dict[str, int]


class UniqueVisitors(BaseModel):
    total: int
    by_hostname: dict[str, int]


class PathCount(BaseModel):
    path: str = Field(description="METHOD route-or-normalised-path")
    count: int


class Percentiles(BaseModel):
    """Response times in milliseconds (within 1 % of exact); None when there were no requests."""

    count: int = Field(description="requests in the window")
    p50: float | None
    p95: float | None
    p99: float | None


class ResponseTimes(BaseModel):
    all: Percentiles
    by_hostname: dict[str, Percentiles]


class Stats(BaseModel):
    hours: float
    requests: RequestTotals
    logs: LogTotals
    unique_visitors: UniqueVisitors
    top_paths: list[PathCount]
    response_times: ResponseTimes


class OAuthSummary(BaseModel):
    ip: str
    hours: float
    total: int = Field(description="OAuth records of this IP in the window (an upper bound when addresses "
                       "beyond the hourly bound were indexed under the IP's network)")
    by_event_type: dict[str, int] = Field(description="over the returned records")
    clients: dict[str, int]
    users: dict[str, int]
    sessions: int
    first_seen: str | None
    last_seen: str | None
    records: list[LogRecord]
    next_cursor: str | None


class OAuthFlow(BaseModel):
    session_id: str | None
    client_ids: list[str]
    users: list[str]
    event_types: list[str]
    started: str
    ended: str
    records: list[LogRecord]
    steps: list[LogRecord] = Field(description="the step records track_oauth_flow appended to oauth:flow:{session_id}")


class OAuthFlows(BaseModel):
    hours: float
    count: int
    flows: list[OAuthFlow]
    next_cursor: str | None


class TestResult(BaseModel):
    ok: bool
    emitted: int
    found: int
    trace_id: str
    elapsed_ms: float
    records: list[LogRecord]


class ClearResult(BaseModel):
    removed: int
    by_pattern: dict[str, int]


class ProblemItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """422: which parameter is wrong and why (``detail`` is one readable line)."""

    detail: str
    errors: list[ProblemItem]


class Problem(BaseModel):
    detail: str


#: the error answers every /logs route may give, documented in OpenAPI
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or wrong token (WWW-Authenticate: Bearer)"},
    422: {"model": ValidationProblem, "description": "bad input: a value that does not validate, or a query parameter this route does not take (named in the message)"},
    503: {"model": Problem, "description": "Redis unavailable"},
}
