"""Pipeline counters: every record accepted, stored, retried or dropped is counted here.

Readable from Python (:func:`otel_redis.stats`), from ``/healthz`` and ``/metrics``. Drops are
also reported on the ``otel_redis`` stdlib logger, at most once a minute (never through the
pipeline that is dropping them).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from . import schema
from .forksafe import renew_in_child
from .write_result import ERROR_KINDS

_log = logging.getLogger("otel_redis.pipeline")


@dataclass
class PipelineCounters:
    """Monotonic counters; increments take a lock because log calls come from any thread."""

    emitted: int = 0
    exported: int = 0
    export_batches: int = 0
    retried: int = 0
    failed_batches: int = 0
    command_errors: int = 0
    dropped_queue_full: int = 0
    dropped_export_failed: int = 0
    dropped_preconfigure: int = 0
    dropped_after_shutdown: int = 0
    #: records Redis refused (their hash, expiry or stream entry), after the retry, by kind
    dropped_redis_error_oom: int = 0
    dropped_redis_error_readonly: int = 0
    dropped_redis_error_wrongtype: int = 0
    dropped_redis_error_noscript: int = 0
    dropped_redis_error_moved: int = 0
    dropped_redis_error_timeout: int = 0
    dropped_redis_error_other: int = 0
    #: index or stats updates of stored records that failed after the retry
    index_errors: int = 0
    internal_errors: int = 0
    #: attributes the OTEL_*ATTRIBUTE_COUNT_LIMIT limits removed from stored records (not a record drop)
    dropped_attributes: int = 0
    stream_unread_trimmed: int = 0
    export_seconds_total: float = 0.0
    warn_interval_s: float = 60.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _last_warning: float = field(default=0.0, repr=False, compare=False)
    _reported_drops: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        renew_in_child(self._after_fork)

    def _after_fork(self) -> None:
        """A child counts its own records from the fork on (the parent's stay the parent's), and a
        fork taken while another thread held the lock must not leave the child's copy held."""
        self._lock = threading.Lock()
        for f in fields(self):
            if not f.name.startswith("_") and f.name != "warn_interval_s":
                setattr(self, f.name, type(getattr(self, f.name))())
        self._last_warning = 0.0
        self._reported_drops = 0

    def add(self, name: str, amount: int | float = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def add_emitted(self) -> None:
        """``add("emitted")`` without the name lookups: once per log call."""
        with self._lock:
            self.emitted += 1

    @property
    def dropped(self) -> int:
        return (
            self.dropped_queue_full
            + self.dropped_export_failed
            + self.dropped_preconfigure
            + self.dropped_after_shutdown
            + self.dropped_redis_error
        )

    @property
    def dropped_redis_error(self) -> int:
        return sum(getattr(self, f"dropped_redis_error_{kind}") for kind in ERROR_KINDS)

    def snapshot(self) -> dict[str, float]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        out.pop("warn_interval_s", None)
        out["dropped"] = self.dropped
        out["dropped_redis_error"] = self.dropped_redis_error
        return out

    def maybe_warn(self, reason: str = "", *, force: bool = False) -> None:
        """Report new drops on the stdlib logger, at most once per ``warn_interval_s`` (``force``:
        now, as flush and shutdown do, so the last report carries the true totals)."""
        now = time.monotonic()
        with self._lock:
            dropped = self.dropped
            if dropped == self._reported_drops or (not force and now - self._last_warning < self.warn_interval_s):
                return
            new = dropped - self._reported_drops
            self._reported_drops = dropped
            self._last_warning = now
        _log.warning(
            "otel-redis dropped %d log records since the last report (%d in all; queue full %d, "
            "export failed %d, before configure %d, after shutdown %d, refused by Redis %d)%s",
            new,
            dropped,
            self.dropped_queue_full,
            self.dropped_export_failed,
            self.dropped_preconfigure,
            self.dropped_after_shutdown,
            self.dropped_redis_error,
            f": {reason}" if reason else "",
        )


#: the process-wide counters used by the default pipeline
COUNTERS = PipelineCounters()


def process_name() -> str:
    """``{host}:{pid}``: this process in the per-process counters (read again after a fork)."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: publish(registry, member, key, counters, ttl_s): RedisStore.publish_counters
Publish = Callable[[str, str, str, dict[str, Any], int], None]


class CounterPublisher:
    """Writes this process's counters to Redis every ``interval_s`` (and when asked, at flush and
    shutdown), so that ``/metrics`` of any process of a prefork server (gunicorn, uvicorn workers)
    sums every live worker: after a fork each worker counts its own records only, and a scrape
    reaches one worker. The hash ``pipeline:counters:{host}:{pid}`` expires ``2 * interval_s``
    after the last write, so a stopped worker leaves the sum by itself."""

    def __init__(self, counters: PipelineCounters, interval_s: float = 15.0) -> None:
        self.counters = counters
        self.interval_s = interval_s
        self._publish: Publish | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        renew_in_child(self._after_fork)

    def _after_fork(self) -> None:
        """The parent's thread does not run in the child; the child starts its own when it writes."""
        self._lock = threading.Lock()
        self._thread = None
        self._publish = None
        self._stop = threading.Event()

    @property
    def ttl_s(self) -> int:
        return max(2, int(2 * self.interval_s + 0.999))

    def attach(self, publish: Publish, interval_s: float | None = None) -> None:
        """Publish through ``publish`` from now on (the exporter's store), starting the timer thread."""
        with self._lock:
            if interval_s is not None and interval_s > 0:
                self.interval_s = interval_s
            self._publish = publish
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="otel-redis-counters", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval_s):
            self.publish_now()

    def publish_now(self) -> bool:
        """Write the snapshot now; never raises (Redis down: the next round tries again)."""
        publish = self._publish
        if publish is None:
            return False
        member = process_name()
        snapshot = {k: v for k, v in self.counters.snapshot().items() if isinstance(v, (int, float))}
        snapshot["updated_ms"] = int(time.time() * 1000)
        try:
            publish(PROCESS_REGISTRY, member, process_key(member), snapshot, self.ttl_s)
        except Exception:  # noqa: BLE001 - counters are best effort, a log call never sees this
            return False
        return True

    def detach(self) -> None:
        """At shutdown: a last write, then no more."""
        self.publish_now()
        with self._lock:
            self._publish = None
            self._stop.set()
            self._thread = None
            self._stop = threading.Event()


PROCESS_REGISTRY: str = schema.PIPELINE_PROCESSES
process_key: Callable[[str], str] = schema.pipeline_counters

#: the publisher of :data:`COUNTERS` (the default pipeline's)
PUBLISHER = CounterPublisher(COUNTERS)


def published_processes(client: Any, ttl_s: int | None = None) -> dict[str, dict[str, float]]:
    """Every live process's published counters, by ``{host}:{pid}`` (sync client)."""
    since = int(time.time() * 1000) - (ttl_s or PUBLISHER.ttl_s) * 1000
    names = [n.decode() if isinstance(n, bytes) else n for n in client.zrangebyscore(PROCESS_REGISTRY, since, "+inf")]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(process_key(name))
    out: dict[str, dict[str, float]] = {}
    for name, data in zip(names, pipe.execute()):
        if data:
            out[name] = {_text(k): _number(v) for k, v in data.items()}
    return out


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _number(value: Any) -> float:
    try:
        number = float(_text(value))
    except ValueError:
        return 0.0
    return int(number) if number.is_integer() else number


def summed(local: dict[str, Any], published: dict[str, dict[str, float]]) -> dict[str, float]:
    """This process's live counters plus every other live process's published ones."""
    me = process_name()
    total: dict[str, float] = {k: v for k, v in local.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for name, counters in published.items():
        if name == me:
            continue
        for key, value in counters.items():
            if key != "updated_ms" and key in total:
                total[key] += value
    return total
