"""Request metrics over a window, per proxy hostname and overall, read from the stats the write path keeps.

- requests, requests/s, error rate (4xx and 5xx; 5xx alone as ``server_error_rate``) and p50/p95/p99
  response time come from the response-time histogram hashes (``stats:rt_all:*``, ``stats:rt:{host}:*``,
  see histogram.py): minute hashes at the window's edges, hour hashes for the whole hours inside
  (:func:`schema.rt_window_keys`). Percentiles are within the histogram's 1 % bucket error.
- unique visitors come from the hourly HyperLogLogs ``stats:unique_ips:{host}:{hour}``, so they count
  the whole hours the window touches; unions are counted Cluster-safe (window_stats.union_counts).
- hostnames come from the hourly sets ``stats:hosts:{hour}`` (no SCAN).

The reads themselves are window_stats' plans, shared with ``/logs/stats``; this module drives them
on a sync client and shapes the figures. A window of ``seconds`` ending at ``end_ms`` starts at the
minute boundary at or before ``end_ms - seconds``; rates divide by the span actually covered
(``end_ms - start_ms``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import redis

from . import histogram, schema, window_stats
from .connection import read_layout
from .record import iso_from_ns
from .window_stats import MERGE_CHUNK, Histogram

__all__ = [
    "MERGE_CHUNK", "MAX_WINDOW_S", "Window", "ScopeMetrics", "WindowMetrics",
    "hostnames", "read_scopes", "count_union", "compute", "parse_duration",
]

MINUTE_MS = 60_000
QUANTILES = (50, 95, 99)
#: longest window the metrics accept (the hour histograms and HLLs live for the stats retention)
MAX_WINDOW_S = 366 * 86400


@dataclass(frozen=True)
class Window:
    start_ms: int
    end_ms: int

    @classmethod
    def ending(cls, seconds: float, end_ms: int | None = None) -> "Window":
        end = int(time.time() * 1000) if end_ms is None else end_ms
        start = end - int(seconds * 1000)
        return cls(start - start % MINUTE_MS, end)

    @property
    def seconds(self) -> float:
        return max(0.001, (self.end_ms - self.start_ms) / 1000.0)

    def hours(self) -> list[str]:
        return schema.hour_buckets(self.start_ms, self.end_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": iso_from_ns(self.start_ms * 1_000_000),
            "end": iso_from_ns(self.end_ms * 1_000_000),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ScopeMetrics:
    """The metrics of one scope (every hostname, or one) over one window."""

    requests: int = 0
    errors: int = 0
    server_errors: int = 0
    requests_per_second: float = 0.0
    error_rate: float = 0.0
    server_error_rate: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    unique_visitors: int = 0
    histogram: dict[int, int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_histogram(cls, hist: Histogram, seconds: float) -> "ScopeMetrics":
        n = hist.count
        pct = histogram.percentiles(hist.counts, QUANTILES)
        total_errors = hist.errors["4xx"] + hist.errors["5xx"]
        return cls(
            requests=n,
            errors=total_errors,
            server_errors=hist.errors["5xx"],
            requests_per_second=n / seconds,
            error_rate=total_errors / n if n else 0.0,
            server_error_rate=hist.errors["5xx"] / n if n else 0.0,
            p50_ms=pct[50],
            p95_ms=pct[95],
            p99_ms=pct[99],
            histogram=hist.counts,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("histogram")
        for name in ("requests_per_second", "error_rate", "server_error_rate", "p50_ms", "p95_ms", "p99_ms"):
            if out[name] is not None:
                out[name] = round(out[name], 6)
        return out


@dataclass
class WindowMetrics:
    window: Window
    overall: ScopeMetrics
    hostnames: dict[str, ScopeMetrics]

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window.to_dict(),
            "overall": self.overall.to_dict(),
            "hostnames": {h: m.to_dict() for h, m in sorted(self.hostnames.items())},
        }


def hostnames(client: redis.Redis, window: Window) -> list[str]:
    """Proxy hostnames with requests in the window's hours (from ``stats:hosts:{hour}``)."""
    by_hour = window_stats.run_sync(client, window_stats.hosts_by_hour(window.hours()))
    return sorted({h for hosts in by_hour.values() for h in hosts})


def _scopes_plan(window: Window, hosts: Iterable[str | None], now_ms: int, shards: int = 1) -> window_stats.Plan[dict]:
    """The scopes' histograms (on a Redis Cluster layout, every part of each, summed)."""
    sources = {
        h: window_stats.histogram_sources(window.start_ms, window.end_ms, h, now_ms, shards=shards) for h in hosts
    }
    hists = yield from window_stats.histograms(sources)
    return {h: ScopeMetrics.from_histogram(hist, window.seconds) for h, hist in hists.items()}


def read_scopes(
    client: redis.Redis, window: Window, hosts: Iterable[str | None], now_ms: int | None = None
) -> dict[str | None, ScopeMetrics]:
    """Histogram metrics (no unique visitors) of each scope (None = every hostname), one round trip."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return window_stats.run_sync(client, _scopes_plan(window, dict.fromkeys(hosts), now, read_layout(client)))


def count_union(client: redis.Redis, keys: list[str]) -> int:
    """Distinct elements over several HyperLogLogs, Cluster-safe (window_stats.union_counts)."""
    plan = window_stats.union_counts([[(k, False) for k in keys]], cluster=window_stats.is_cluster(client))
    return window_stats.run_sync(client, plan)[0]


def _compute_plan(
    window: Window, hostname: str | None, per_hostname: bool, now_ms: int, cluster: bool, shards: int = 1
) -> window_stats.Plan[WindowMetrics]:
    by_hour = yield from window_stats.hosts_by_hour(window.hours())
    known = sorted({h for hosts in by_hour.values() for h in hosts})
    hosts = [hostname] if hostname else (known if per_hostname else [])
    groups = [window_stats.visitor_sources(by_hour, h, now_ms) for h in (None, *hosts)]
    scopes, visitors = yield from window_stats.together(
        _scopes_plan(window, [None, *hosts], now_ms, shards), window_stats.union_counts(groups, cluster=cluster)
    )
    for scope, count in zip((None, *hosts), visitors):
        scopes[scope].unique_visitors = count
    overall = scopes.pop(None)
    return WindowMetrics(window, overall, scopes)


def compute(
    client: redis.Redis,
    seconds: float,
    *,
    end_ms: int | None = None,
    hostname: str | None = None,
    per_hostname: bool = True,
) -> WindowMetrics:
    """Metrics of the window of ``seconds`` ending at ``end_ms`` (now): overall and per hostname
    (only ``hostname`` when given). Two round trips (three on Redis Cluster)."""
    now = int(time.time() * 1000)
    window = Window.ending(seconds, end_ms if end_ms is not None else now)
    plan = _compute_plan(window, hostname, per_hostname, now, window_stats.is_cluster(client), read_layout(client))
    return window_stats.run_sync(client, plan)


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``5m``, ``2h``, ``7d`` -> seconds; ValueError with the accepted forms."""
    raw = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    mult = units.get(raw[-1:], None)
    number = raw[:-1] if mult else raw
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"invalid duration {text!r}: use seconds or a number with s, m, h or d (5m, 1h)")
    seconds = int(value * (mult or 1))
    if seconds <= 0 or seconds > MAX_WINDOW_S:
        raise ValueError(f"invalid duration {text!r}: must be between 1 s and {MAX_WINDOW_S // 86400} d")
    return seconds
