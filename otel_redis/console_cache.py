"""What the console's reads derived from settled buckets, kept in this process for a while.

A bucket (hour or minute) that ended more than :data:`window_stats.COMPLETE_AFTER_MS` ago no longer
changes, but for late records. The console's panels poll windows of up to days whose older hours
are all settled, so reading and merging them on every request made a panel's cost follow how full
those hours' hashes are (with many records, every capped hash at its cap). Their merged result is
kept :data:`window_stats.CACHE_TTL_S` (late records show within it, as in ``/logs/stats``), so a
request reads the unsettled bucket or two only. Each cache is bounded (least recently used
dropped); :func:`clear` after DELETE /logs.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Hashable, Sequence, TypeVar

from . import schema
from .window_stats import COMPLETE_AFTER_MS, CACHE_TTL_S

T = TypeVar("T")

class SettledCache:
    """Results by key, each used :data:`window_stats.CACHE_TTL_S`; at most ``max_entries``."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[0] <= time.monotonic():
                return None
            self._entries.move_to_end(key)
            return hit[1]

    def put(self, key: Hashable, value: T) -> T:
        with self._lock:
            self._entries[key] = (time.monotonic() + CACHE_TTL_S, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: merged settled hours of one panel and window (each up to a window's hours of capped fields)
TALLIES = SettledCache(64)
#: one time-series point per settled bucket (a few numbers each)
POINTS = SettledCache(8192)


def settled_prefix(buckets: Sequence[str], now_ms: int) -> int:
    """How many of ``buckets`` (oldest first) are settled: they form a prefix."""
    n = 0
    for bucket in buckets:
        if schema.bucket_span_ms(bucket)[1] + COMPLETE_AFTER_MS > now_ms:
            break
        n += 1
    return n


def clear() -> None:
    """Forget every cached result (after DELETE /logs)."""
    TALLIES.clear()
    POINTS.clear()
