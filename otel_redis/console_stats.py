"""Reads behind the web console's panels: top lists, slowest routes, error groups, time series.

Each read is a window_stats plan over the hourly ``stats:*`` hashes (aggregates.py writes the capped
ones), so its cost depends on the window's hours and the caps, never on how many records are stored.
Top lists count the whole hours the window touches. The time series reads the response-time
histograms: per minute for windows up to :data:`MINUTE_SERIES_MAX_S`, per hour beyond.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import orjson

from . import histogram, schema, window_stats
from .window_stats import Plan, Round, call, counts

#: the top lists (name -> hourly hash key), each a capped hash but ``paths`` (stats:paths)
TOP_KEYS: dict[str, Callable[[str], str]] = {
    "ips": schema.stats_client_ips,
    "paths": schema.stats_paths,
    "agents": schema.stats_agents,
    "referrers": schema.stats_referrers,
    "not_found": schema.stats_not_found,
}
#: longest window served per minute (at most 180 minute hashes per scope)
MINUTE_SERIES_MAX_S = 3 * 3600


def _summed(buckets: list[str], key: Callable[[str], str]) -> Plan[Counter[str]]:
    replies = yield Round([call("hgetall", key(b)) for b in buckets])
    total: Counter[str] = Counter()
    for row in replies:
        total.update(counts(row))
    return total


def _host_key(kind: str, hostname: str) -> Callable[[str], str]:
    return lambda bucket: schema.stats_host_top(kind, hostname, bucket)


def top(kind: str, start_ms: int, end_ms: int, limit: int, hostname: str | None = None) -> Plan[dict[str, Any]]:
    """The ``limit`` most frequent values of ``kind`` over the window's hours, with the total and
    what the caps counted under ``_OTHER``; with ``hostname``, of that proxy hostname's requests
    (``paths`` then counts routes, as the slowest routes do: 404 and 405 answers are not among them)."""
    key = TOP_KEYS[kind] if not hostname else _host_key("route_n" if kind == "paths" else kind, hostname)
    total = yield from _summed(schema.hour_buckets(start_ms, end_ms), key)
    other = total.pop(schema.AGG_OTHER, 0)
    return {
        "kind": kind,
        "total": sum(total.values()) + other,
        "other": other,
        "items": [{"value": v, "count": c} for v, c in total.most_common(limit)],
    }


def slow_routes(start_ms: int, end_ms: int, limit: int, hostname: str | None = None) -> Plan[dict[str, Any]]:
    """Routes by mean response time over the window's hours (of one proxy hostname's requests)."""
    buckets = schema.hour_buckets(start_ms, end_ms)
    count_key = schema.stats_route_count if not hostname else _host_key("route_n", hostname)
    time_key = schema.stats_route_time if not hostname else _host_key("route_us", hostname)
    n, us = yield from window_stats.together(_summed(buckets, count_key), _summed(buckets, time_key))
    n.pop(schema.AGG_OTHER, None)
    rows = [
        {"route": route, "requests": c, "mean_ms": round(us.get(route, 0) / c / 1000, 3)}
        for route, c in n.items()
        if c
    ]
    rows.sort(key=lambda r: (-r["mean_ms"], r["route"]))
    return {"items": rows[:limit]}


def error_groups(start_ms: int, end_ms: int, limit: int) -> Plan[dict[str, Any]]:
    """Errors grouped by fingerprint: count per hour, total, and the latest occurrence."""
    buckets = schema.hour_buckets(start_ms, end_ms)
    replies = yield Round(
        [call("hgetall", schema.stats_error_groups(b)) for b in buckets]
        + [call("hgetall", schema.stats_error_latest(b)) for b in buckets]
    )
    per_hour = [counts(r) for r in replies[: len(buckets)]]
    latest: dict[str, dict[str, Any]] = {}
    for row in replies[len(buckets) :]:  # oldest hour first: later hours overwrite
        for fp, raw in row.items():
            try:
                latest[window_stats.text(fp)] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
    totals: Counter[str] = Counter()
    for row in per_hour:
        totals.update(row)
    other = totals.pop(schema.AGG_OTHER, 0)
    groups = [
        {
            "fingerprint": fp,
            "count": c,
            "per_hour": [{"hour": b, "count": row.get(fp, 0)} for b, row in zip(buckets, per_hour)],
            "latest": latest.get(fp),
        }
        for fp, c in totals.most_common(limit)
    ]
    return {"total": sum(totals.values()) + other, "other": other, "groups": groups}


def _series_keys(start_ms: int, end_ms: int, hostname: str | None) -> list[tuple[str, str]]:
    per_minute = end_ms - start_ms <= MINUTE_SERIES_MAX_S * 1000
    buckets = schema.minute_buckets(start_ms, end_ms) if per_minute else schema.hour_buckets(start_ms, end_ms)
    key = schema.stats_rt_all if not hostname else (lambda b: schema.stats_rt(hostname, b))
    return [(b, key(b)) for b in buckets]


def series(start_ms: int, end_ms: int, hostname: str | None) -> Plan[dict[str, Any]]:
    """Requests, 4xx, 5xx and p50/p95/p99 per minute (or hour) from the response-time histograms."""
    keys = _series_keys(start_ms, end_ms, hostname)
    replies = yield Round([call("hgetall", k) for _b, k in keys])
    points = []
    for (bucket, _k), row in zip(keys, replies):
        hist = window_stats.Histogram.of([window_stats.decode_histogram(row)])
        pct = histogram.percentiles(hist.counts, (50, 95, 99))
        points.append({
            "bucket": bucket,
            "start": schema.bucket_span_ms(bucket)[0],
            "requests": hist.count,
            "errors_4xx": hist.errors["4xx"],
            "errors_5xx": hist.errors["5xx"],
            "p50_ms": pct[50], "p95_ms": pct[95], "p99_ms": pct[99],
        })
    step = "minute" if keys and schema.is_minute_bucket(keys[0][0]) else "hour"
    return {"step": step, "points": points}


def status_and_bytes(start_ms: int, end_ms: int, hostname: str | None) -> Plan[dict[str, Any]]:
    """Status-class mix (all hostnames; ``stats:requests``) and bytes sent over the window's hours."""
    buckets = schema.hour_buckets(start_ms, end_ms)
    replies = yield Round(
        [call("hgetall", schema.stats_requests(b)) for b in buckets]
        + [call("hgetall", schema.stats_bytes(b)) for b in buckets]
    )
    classes: Counter[str] = Counter()
    for row in replies[: len(buckets)]:
        for name, n in counts(row).items():
            if name.startswith("status_"):
                classes[f"{name.removeprefix('status_')[:1]}xx"] += n
    field = "_all" if not hostname else hostname[: schema.AGG_FIELD_MAX]
    sent = sum(counts(row).get(field, 0) for row in replies[len(buckets) :])
    return {"status_classes": dict(sorted(classes.items())), "bytes_sent": sent}
