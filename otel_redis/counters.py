"""Pipeline counters: every record accepted, stored, retried or dropped is counted here.

Readable from Python (:func:`otel_redis.stats`), from ``/healthz`` and ``/metrics``. Drops are
also reported on the ``otel_redis`` stdlib logger, at most once a minute (never through the
pipeline that is dropping them).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, fields

from . import forksafe
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
        forksafe.renew_in_child(self._after_fork)

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
