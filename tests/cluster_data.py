"""Test data on a Redis Cluster: through the real write path, or laid out by hand.

:func:`write_path` stores records the way an application does (``RedisStore`` on a
``RedisCluster`` client: the cluster sender, the sharded hot keys, the persisted layout).
:func:`write_records` writes the agreed layout directly through the schema functions (record i goes
to shard ``i % shards``), for reader tests that need records on chosen shards: record hashes, the
hot indexes and hourly stats split into ``shards`` parts, the cold per-value indexes unsplit, the
stream entries on their shard's part, and the persisted layout. Only what the readers under test
look at is written.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Sequence

from otel_redis import levels, schema
from otel_redis.config import load_settings
from otel_redis.connection import make_client
from otel_redis.levels import NAME_TO_SEVERITY
from otel_redis.record import LogEntry, RequestFields
from otel_redis.store import RedisStore


def request_entry(ts_ms: int, status: int = 200, ip: str = "10.0.0.1", path: str = "/api") -> LogEntry:
    level = levels.request_level(status)
    return LogEntry(
        timestamp_ns=ts_ms * 1_000_000,
        level=level,
        severity_number=NAME_TO_SEVERITY[level].value,
        body=schema.request_body("GET", path, status),
        component=levels.REQUEST_COMPONENT,
        scope_name=schema.REQUEST_SCOPE,
        request=RequestFields(method="GET", path=path, status_code=status, client_ip=ip, proxy_hostname="api.test"),
    )


def log_entry(ts_ms: int, level: str = "INFO", body: str = "hello", event: str = "") -> LogEntry:
    severity = NAME_TO_SEVERITY[level].value
    return LogEntry(timestamp_ns=ts_ms * 1_000_000, level=level, severity_number=severity, body=body, event=event)


def write_path(url: str, entries: Sequence[LogEntry], batch: int = 8, **overrides: Any) -> list[str]:
    """Store ``entries`` through the real write path on the cluster ``url`` names, ``batch`` records
    per batch (each batch takes the next shard, so a few dozen records reach every part); asserts
    every record was accepted and returns their record keys in order. ``overrides`` are settings
    (``max_services=1``...) of the writing store."""
    settings = load_settings({}).with_overrides(redis_url=url, **overrides)
    store = RedisStore(make_client(settings), settings)
    keys: list[str] = []
    try:
        for first in range(0, len(entries), batch):
            result = store.write_batch(entries[first : first + batch])
            assert not result.failed and result.index_errors == 0, result.summary()
            keys += result.keys
    finally:
        store.client.close()
    return keys


def write_records(client: Any, entries: Sequence[LogEntry], shards: int) -> list[str]:
    """Store ``entries`` in the sharded layout; returns their record keys in order."""
    client.hset(schema.LAYOUT_KEY, schema.LAYOUT_SHARDS_FIELD, shards)
    keys = []
    for i, entry in enumerate(entries):
        n = i % shards
        keys.append(_write_one(client, entry, n, shards))
    return keys


def _write_one(client: Any, entry: LogEntry, n: int, shards: int) -> str:
    ts = entry.timestamp_ms
    hour = schema.hour_bucket(ts)
    part = lambda key: schema.shard_key(key, n, shards)  # noqa: E731 - this record's shard
    req = entry.request
    if req is not None:
        key = schema.request_record_key(ts, uuid.uuid4().hex[:8], req.client_ip)
        client.hset(key, mapping=schema.encode_entry(entry))
        for index in [part(schema.IDX_REQ_ALL), part(schema.idx_req_status(req.status_code)), schema.idx_req_ip(req.client_ip)]:
            client.zadd(index, {key: ts})
        if req.status_code >= 400:
            client.zadd(part(schema.IDX_REQ_ERRORS), {key: ts})
        client.hincrby(part(schema.stats_requests(hour)), "total", 1)
        client.hincrby(part(schema.stats_requests(hour)), f"status_{req.status_code}", 1)
        client.xadd(part(schema.STREAM_REQUESTS), {"k": key})
    else:
        key = schema.log_record_key(ts, uuid.uuid4().hex[:8])
        client.hset(key, mapping=schema.encode_entry(entry))
        for index in (part(schema.IDX_LOG_ALL), part(schema.idx_log_level(entry.level))):
            client.zadd(index, {key: ts})
        if entry.severity_number >= 17:
            client.zadd(part(schema.IDX_LOG_ERRORS), {key: ts})
        client.hincrby(part(schema.stats_logs(hour)), "total", 1)
        client.hincrby(part(schema.stats_logs(hour)), f"level_{entry.level}", 1)
        if entry.event:
            client.hincrby(part(schema.stats_events(hour)), entry.event, 1)
            client.zadd(schema.idx_log_event(entry.event), {key: ts})
        client.xadd(part(schema.STREAM_LOGS), {"k": key})
    return key


def now_ms() -> int:
    return int(time.time() * 1000)
