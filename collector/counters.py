"""Receiver and forwarder counters: what /healthz and /metrics report about the collector bridge.

:func:`collector_stats` returns both as plain dicts (monotonic counts since the process started);
:func:`forwarder_backlog` asks Redis for the consumer group's lag and pending entries, which is the
same from every process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

import redis

from otel_redis import schema


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


RECEIVER = ReceiverCounters()
FORWARDER = ForwarderCounters()


def collector_stats() -> dict[str, dict[str, int]]:
    """This process's receiver and forwarder counters (for /healthz and /metrics)."""
    return {"receiver": RECEIVER.snapshot(), "forwarder": FORWARDER.snapshot()}


def forwarder_backlog(client: redis.Redis, group: str) -> dict[str, dict[str, Any]]:
    """Per stream: ``lag`` (entries not yet delivered to the group; None when Redis cannot tell) and
    ``pending`` (delivered, not yet acknowledged). Streams without the group are left out."""
    out: dict[str, dict[str, Any]] = {}
    for stream in schema.STREAMS:
        try:
            groups = client.xinfo_groups(stream)
        except redis.ResponseError:  # no such stream yet
            continue
        for info in groups:
            name = info.get("name")
            name = name.decode() if isinstance(name, bytes) else name
            if name != group:
                continue
            lag = info.get("lag")
            if "lag" not in info:  # Redis < 7: count what follows the last delivered id
                last = info.get("last-delivered-id")
                last = last.decode() if isinstance(last, bytes) else last
                lag = len(client.xrange(stream, min=f"({last}", count=100_000))
            out[stream] = {"lag": lag, "pending": int(info.get("pending") or 0)}
    return out
