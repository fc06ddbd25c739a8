"""Crafted traffic for analytics, alert and retention tests: LogEntry values with chosen timestamps,
written through the real write path (RedisStore.write), as the exporter and the OTLP receiver do."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from otel_redis.levels import NAME_TO_SEVERITY
from otel_redis.record import LogEntry, RequestFields
from otel_redis.store import RedisStore

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def request_entry(
    ts_ms: int,
    *,
    status: int = 200,
    rt_ms: float = 20.0,
    host: str = "api.example.com",
    ip: str = "192.0.2.1",
    method: str = "GET",
    path: str = "/items",
    route: str = "",
    user: str = "",
) -> LogEntry:
    level = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
    return LogEntry(
        timestamp_ns=ts_ms * 1_000_000,
        level=level,
        severity_number=NAME_TO_SEVERITY[level].value,
        severity_text=level,
        body=f"{method} {path} {status}",
        request=RequestFields(
            method=method,
            path=path,
            route=route,
            status_code=status,
            client_ip=ip,
            proxy_hostname=host,
            response_time_ms=rt_ms,
            user_id=user,
        ),
    )


def log_entry(ts_ms: int, level: str = "INFO", body: str = "hello", **attributes: object) -> LogEntry:
    return LogEntry(
        timestamp_ns=ts_ms * 1_000_000,
        level=level,
        severity_number=NAME_TO_SEVERITY[level].value,
        severity_text=level,
        body=body,
        component="test",
        attributes=dict(attributes),
    )


def oauth_entry(ts_ms: int, event_type: str, client_id: str = "client-1", user: str = "alice") -> LogEntry:
    """An OAuth activity record as log_oauth_activity stores it (attribute ``oauth.event_type``)."""
    return log_entry(
        ts_ms,
        "WARNING" if "fail" in event_type or "error" in event_type else "INFO",
        f"oauth {event_type}",
        **{"oauth.event_type": event_type, "oauth.client_id": client_id, "enduser.id": user},
    )


def write(store: RedisStore, entries: Iterable[LogEntry], batch: int = 512) -> list[str]:
    """Write through the real store in batches, as the exporter does; returns the record keys."""
    keys: list[str] = []
    chunk: list[LogEntry] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= batch:
            keys += _stored(store, chunk)
            chunk = []
    if chunk:
        keys += _stored(store, chunk)
    return keys


def _stored(store: Any, chunk: list) -> list[str]:
    """Write one chunk; every record and index update must be accepted."""
    result = store.write_batch(chunk)
    assert not result.failed and not result.index_errors, result.summary()
    return result.keys


def spread(start_ms: int, end_ms: int, n: int) -> Sequence[int]:
    """``n`` timestamps evenly spread over [start_ms, end_ms)."""
    if n <= 0:
        return []
    step = (end_ms - start_ms) / n
    return [int(start_ms + i * step) for i in range(n)]
