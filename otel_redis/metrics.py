"""Request metrics over a window, per proxy hostname and overall, read from the stats the write path keeps.

- requests, requests/s, error rate (4xx and 5xx; 5xx alone as ``server_error_rate``) and p50/p95/p99
  response time come from the response-time histogram hashes (``stats:rt_all:*``, ``stats:rt:{host}:*``,
  see histogram.py): minute hashes at the window's edges, hour hashes for the whole hours inside
  (:func:`schema.rt_window_keys`). Percentiles are within the histogram's 1 % bucket error.
- unique visitors come from the hourly HyperLogLogs ``stats:unique_ips:{host}:{hour}``, so they count
  the whole hours the window touches. A union of several HyperLogLogs is counted without a
  multi-key command on the originals (they live in different Cluster slots): each is copied
  (``DUMP``/``RESTORE``, 30 s TTL) to a scratch key :func:`schema.tmp_hll`, whose ``{token}`` hash
  tag puts all copies of one count in one slot, merged with ``PFMERGE`` in chunks of :data:`MERGE_CHUNK` (so no single command
  merges hundreds of HyperLogLogs) and counted with ``PFCOUNT``; the copies are then unlinked.
- hostnames come from the hourly sets ``stats:hosts:{hour}`` (no SCAN).

A window of ``seconds`` ending at ``end_ms`` starts at the minute boundary at or before
``end_ms - seconds``; rates divide by the span actually covered (``end_ms - start_ms``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

import redis

from . import histogram, schema
from .record import iso_from_ns

MINUTE_MS = 60_000
QUANTILES = (50, 95, 99)
#: HyperLogLogs merged per PFMERGE (bounds how long one command runs)
MERGE_CHUNK = 32
#: longest window the metrics accept (the hour histograms and HLLs live for the stats retention)
MAX_WINDOW_S = 366 * 86400


def _s(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


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
    def from_hashes(cls, hashes: list[Mapping[Any, Any]], seconds: float) -> "ScopeMetrics":
        counts = histogram.merge(hashes)
        errors = histogram.error_counts(hashes)
        n = histogram.count(counts)
        pct = histogram.percentiles(counts, QUANTILES)
        total_errors = errors["4xx"] + errors["5xx"]
        return cls(
            requests=n,
            errors=total_errors,
            server_errors=errors["5xx"],
            requests_per_second=n / seconds,
            error_rate=total_errors / n if n else 0.0,
            server_error_rate=errors["5xx"] / n if n else 0.0,
            p50_ms=pct[50],
            p95_ms=pct[95],
            p99_ms=pct[99],
            histogram=counts,
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
    pipe = client.pipeline(transaction=False)
    for bucket in window.hours():
        pipe.smembers(schema.stats_hosts(bucket))
    names: set[str] = set()
    for members in pipe.execute():
        names.update(_s(m) for m in members)
    return sorted(names)


def read_scopes(
    client: redis.Redis, window: Window, hosts: Iterable[str | None], now_ms: int | None = None
) -> dict[str | None, ScopeMetrics]:
    """Histogram metrics (no unique visitors) of each scope (None = every hostname), one round trip."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    scopes = list(dict.fromkeys(hosts))
    plan: list[tuple[str | None, int]] = []
    pipe = client.pipeline(transaction=False)
    for host in scopes:
        keys = schema.rt_window_keys(window.start_ms, window.end_ms, host, now)
        for key in keys:
            pipe.hgetall(key)
        plan.append((host, len(keys)))
    results = pipe.execute()
    out: dict[str | None, ScopeMetrics] = {}
    at = 0
    for host, n in plan:
        out[host] = ScopeMetrics.from_hashes(results[at : at + n], window.seconds)
        at += n
    return out


def count_union(client: redis.Redis, keys: list[str]) -> int:
    """Distinct elements over several HyperLogLogs, Cluster-safe (see the module docstring)."""
    if not keys:
        return 0
    if len(keys) == 1:
        return int(client.pfcount(keys[0]))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.dump(key)
    dumps = [d for d in pipe.execute() if d is not None]
    if not dumps:
        return 0
    token = secrets.token_hex(8)
    dest = schema.tmp_hll(token, "union")
    copies = [schema.tmp_hll(token, str(i)) for i in range(len(dumps))]
    pipe = client.pipeline(transaction=False)
    for copy, payload in zip(copies, dumps):
        pipe.restore(copy, 30_000, payload, replace=True)
    for i in range(0, len(copies), MERGE_CHUNK):
        pipe.pfmerge(dest, *copies[i : i + MERGE_CHUNK])
    pipe.expire(dest, 30)
    pipe.pfcount(dest)
    pipe.unlink(dest, *copies)
    return int(pipe.execute()[-2])


def unique_visitors(client: redis.Redis, window: Window, hosts: Iterable[str]) -> int:
    """Distinct client IPs of ``hosts`` over the hours the window touches."""
    return count_union(client, [schema.stats_unique_ips(h, b) for h in hosts for b in window.hours()])


def compute(
    client: redis.Redis,
    seconds: float,
    *,
    end_ms: int | None = None,
    hostname: str | None = None,
    per_hostname: bool = True,
) -> WindowMetrics:
    """Metrics of the window of ``seconds`` ending at ``end_ms`` (now): overall and per hostname
    (only ``hostname`` when given)."""
    now = int(time.time() * 1000)
    window = Window.ending(seconds, end_ms if end_ms is not None else now)
    known = hostnames(client, window)
    hosts = [hostname] if hostname else (known if per_hostname else [])
    scopes = read_scopes(client, window, [None, *hosts], now)
    overall = scopes.pop(None)
    overall.unique_visitors = unique_visitors(client, window, known)
    per: dict[str, ScopeMetrics] = {}
    for host in hosts:
        metrics = scopes[host]
        metrics.unique_visitors = unique_visitors(client, window, [host])
        per[host] = metrics
    return WindowMetrics(window, overall, per)


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``5m``, ``2h``, ``7d`` -> seconds; ValueError with the accepted forms."""
    raw = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    mult = units.get(raw[-1:], None)
    number = raw[:-1] if mult else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"invalid duration {text!r}: use seconds or a number with s, m, h or d (5m, 1h)") from None
    seconds = int(value * (mult or 1))
    if seconds <= 0 or seconds > MAX_WINDOW_S:
        raise ValueError(f"invalid duration {text!r}: must be between 1 s and {MAX_WINDOW_S // 86400} d")
    return seconds
