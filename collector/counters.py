"""Receiver and forwarder counters: what /healthz and /metrics report about the collector bridge.

:func:`collector_stats` returns both as plain dicts (monotonic counts since the process started);
:func:`forwarder_backlog` asks Redis for the consumer group's lag and pending entries, which is the
same from every process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any

import redis

from otel_redis import schema
from otel_redis.connection import read_layout


@dataclass
class _Counters:
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


@dataclass
class ReceiverCounters(_Counters):
    """Requests and records seen by the OTLP receiver (HTTP and gRPC together)."""

    requests: int = 0
    accepted_records: int = 0
    rejected_records: int = 0
    malformed: int = 0
    too_large: int = 0
    unsupported_media_type: int = 0
    unauthorized: int = 0
    overloaded: int = 0
    unavailable: int = 0


@dataclass
class ForwarderCounters(_Counters):
    """Records moved from the Redis streams to the upstream collector by this process."""

    forwarded: int = 0
    batches: int = 0
    retried: int = 0
    failed: int = 0
    redelivered: int = 0
    expired: int = 0
    split: int = 0


RECEIVER = ReceiverCounters()
FORWARDER = ForwarderCounters()


def collector_stats() -> dict[str, dict[str, int]]:
    """This process's receiver and forwarder counters (for /healthz and /metrics)."""
    return {"receiver": RECEIVER.snapshot(), "forwarder": FORWARDER.snapshot()}


def _group_info(groups: list[dict[Any, Any]], group: str) -> dict[str, Any] | None:
    for info in groups:
        name = info.get("name")
        if (name.decode() if isinstance(name, bytes) else name) == group:
            last = info.get("last-delivered-id")
            return {
                "lag": info.get("lag"),
                "has_lag": "lag" in info,  # Redis < 7 does not report it
                "pending": int(info.get("pending") or 0),
                "last": last.decode() if isinstance(last, bytes) else last,
            }
    return None


#: on Redis < 7 the lag is counted with XRANGE, up to this many entries
LAG_COUNT_LIMIT = 100_000


def forwarder_backlog(client: redis.Redis, group: str, shards: int | None = None) -> dict[str, dict[str, Any]]:
    """Per stream: ``lag`` (entries not yet delivered to the group; None when Redis cannot tell) and
    ``pending`` (delivered, not yet acknowledged). Streams without the group are left out. On a
    Redis Cluster layout (``shards``, else the persisted one) each figure is summed over the parts."""
    out: dict[str, dict[str, Any]] = {}
    for stream in schema.STREAMS:
        for part in schema.sharded(stream, read_layout(client) if shards is None else shards):
            try:
                info = _group_info(client.xinfo_groups(part), group)
            except redis.ResponseError:  # no such stream yet
                continue
            if info is None:
                continue
            lag = info["lag"]
            if not info["has_lag"]:
                lag = len(client.xrange(part, min=f"({info['last']}", count=LAG_COUNT_LIMIT))
            _add_backlog(out, stream, lag, info["pending"])
    return out


async def forwarder_backlog_async(client: Any, group: str, shards: int = 1) -> dict[str, dict[str, Any]]:
    """:func:`forwarder_backlog` for a ``redis.asyncio`` client (the query API's)."""
    out: dict[str, dict[str, Any]] = {}
    for stream in schema.STREAMS:
        for part in schema.sharded(stream, shards):
            try:
                info = _group_info(await client.xinfo_groups(part), group)
            except redis.ResponseError:
                continue
            if info is None:
                continue
            lag = info["lag"]
            if not info["has_lag"]:
                lag = len(await client.xrange(part, min=f"({info['last']}", count=LAG_COUNT_LIMIT))
            _add_backlog(out, stream, lag, info["pending"])
    return out


def _add_backlog(out: dict[str, dict[str, Any]], stream: str, lag: int | None, pending: int) -> None:
    """Add one stream part's figures to its stream's (a lag unknown for one part is unknown)."""
    seen = out.get(stream)
    if seen is None:
        out[stream] = {"lag": lag, "pending": pending}
        return
    seen["lag"] = None if seen["lag"] is None or lag is None else seen["lag"] + lag
    seen["pending"] += pending


def _decode_published(name: Any, data: dict[Any, Any]) -> tuple[str, dict[str, Any]]:
    text = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in data.items()}
    consumer = name.decode() if isinstance(name, bytes) else name
    return consumer, {k: (v if k == "group" else int(float(v))) for k, v in text.items()}


def _live_since_ms() -> int:
    return int(time.time() * 1000) - schema.FORWARDER_STATS_TTL_S * 1000


def published_forwarders(client: redis.Redis) -> dict[str, dict[str, Any]]:
    """Every live forwarder's counters as it last published them (within FORWARDER_STATS_TTL_S),
    by consumer name: this is how a process that does not forward (the query API) reports them.
    Forwarders are listed from the ``schema.FORWARDERS`` registry, never by scanning the keyspace."""
    names = client.zrangebyscore(schema.FORWARDERS, _live_since_ms(), "+inf")
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(schema.forwarder_stats(name.decode() if isinstance(name, bytes) else name))
    return dict(_decode_published(n, d) for n, d in zip(names, pipe.execute()) if d)


async def published_forwarders_async(client: Any) -> dict[str, dict[str, Any]]:
    """:func:`published_forwarders` for a ``redis.asyncio`` client."""
    names = await client.zrangebyscore(schema.FORWARDERS, _live_since_ms(), "+inf")
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(schema.forwarder_stats(name.decode() if isinstance(name, bytes) else name))
    return dict(_decode_published(n, d) for n, d in zip(names, await pipe.execute()) if d)
