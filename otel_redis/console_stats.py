"""Reads behind the web console's panels: top lists, slowest routes, error groups, time series.

Each read is a window_stats plan over the hourly ``stats:*`` hashes (aggregates.py writes the capped
ones), so its cost depends on the window's hours and the caps, never on how many records are stored.
The merge of a window's settled hours is kept a while (console_cache.py): a polled panel reads the
current hour only, and picks its top rows from the cached merge's ranking and that hour's fields.
Top lists count the whole hours the window touches. The time series reads the response-time
histograms: per minute for windows up to :data:`MINUTE_SERIES_MAX_S`, per hour beyond.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import orjson

from . import console_cache, histogram, schema, window_stats
from .metrics import ScopeMetrics
from .window_stats import Plan, Round, call, counts

T = TypeVar("T")

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


def _now() -> int:
    return int(time.time() * 1000)


def _read(
    what: str, buckets: Sequence[str], keys_of: Callable[[str], list[str]], reduce: Callable[[list[list[Any]]], T],
    now_ms: int,
) -> Plan[tuple[T, list[list[Any]]]]:
    """``reduce`` of the settled buckets' rows (cached) and the rows of the others, one round trip;
    a row is the HGETALL replies of a bucket's ``keys_of``."""
    done = console_cache.settled_prefix(buckets, now_ms)
    cache_key = (what, *(k for b in buckets[:done] for k in keys_of(b)))
    cached = console_cache.TALLIES.get(cache_key) if done else None
    first = done if cached is not None else 0
    keys = [keys_of(b) for b in buckets[first:]]
    replies = yield Round([call("hgetall", k) for ks in keys for k in ks])
    rows, at = [], 0
    for ks in keys:
        rows.append(replies[at : at + len(ks)])
        at += len(ks)
    if cached is None:
        cached = reduce(rows[:done])
        if done:
            console_cache.TALLIES.put(cache_key, cached)
        rows = rows[done:]
    return cached, rows


@dataclass(frozen=True)
class _Tally:
    """Counts summed over hours (``_OTHER`` apart), in first-seen order, with their ranking."""

    counts: dict[str, int]
    other: int
    total: int
    ranked: list[str]  # Counter.most_common order: by count, first seen first
    rank: dict[str, int]  # first-seen position

    @classmethod
    def of(cls, rows: Sequence[Any]) -> "_Tally":
        total: Counter[str] = Counter()
        for row in rows:
            total.update(counts(row))
        other = total.pop(schema.AGG_OTHER, 0)
        ranked = [k for k, _c in total.most_common()]
        return cls(dict(total), other, sum(total.values()), ranked, {k: i for i, k in enumerate(total)})

    def plus(self, rows: Sequence[Any], limit: int) -> tuple[list[tuple[str, int]], int, int]:
        """The ``limit`` most frequent of these counts plus ``rows`` (as ``most_common`` of the
        whole sum would rank them), the total and ``_OTHER``: a value absent from ``rows`` ranks
        by its settled count, so only the settled top ``limit`` and the values of ``rows`` compete."""
        live = _Tally.of(rows)
        base = self.counts
        later = len(self.rank)
        extra = {k: later + i for i, k in enumerate(k for k in live.counts if k not in base)}
        candidates = dict.fromkeys(self.ranked[:limit])
        candidates.update(dict.fromkeys(live.counts))
        both = {k: base.get(k, 0) + live.counts.get(k, 0) for k in candidates}
        order = sorted(both, key=lambda k: (-both[k], self.rank.get(k, extra.get(k, 0))))[:limit]
        return [(k, both[k]) for k in order], self.total + live.total + self.other + live.other, self.other + live.other


def _first_of_each(rows: list[list[Any]]) -> _Tally:
    return _Tally.of([r for (r,) in rows])


def _summed(buckets: list[str], key: Callable[[str], str], now_ms: int) -> Plan[tuple[_Tally, list[Any]]]:
    """The settled hours' tally (cached) and the other hours' rows of the hourly hash ``key``."""
    tally, rows = yield from _read("tally", buckets, lambda b: [key(b)], _first_of_each, now_ms)
    return tally, [r for (r,) in rows]


def _host_key(kind: str, hostname: str) -> Callable[[str], str]:
    return lambda bucket: schema.stats_host_top(kind, hostname, bucket)


def top(
    kind: str, start_ms: int, end_ms: int, limit: int, hostname: str | None = None, now_ms: int | None = None
) -> Plan[dict[str, Any]]:
    """The ``limit`` most frequent values of ``kind`` over the window's hours, with the total and
    what the caps counted under ``_OTHER``; with ``hostname``, of that proxy hostname's requests
    (``paths`` then counts routes, as the slowest routes do: 404 and 405 answers are not among them)."""
    key = TOP_KEYS[kind] if not hostname else _host_key("route_n" if kind == "paths" else kind, hostname)
    buckets = schema.hour_buckets(start_ms, end_ms)
    settled, rows = yield from _summed(buckets, key, _now() if now_ms is None else now_ms)
    items, total, other = settled.plus(rows, limit)
    return {
        "kind": kind,
        "total": total,
        "other": other,
        "items": [{"value": v, "count": c} for v, c in items],
    }


def _whole(settled: _Tally, rows: list[Any]) -> Counter[str]:
    out = Counter(settled.counts)
    for row in rows:
        out.update(counts(row))
    out.pop(schema.AGG_OTHER, None)
    return out


def slow_routes(
    start_ms: int, end_ms: int, limit: int, hostname: str | None = None, now_ms: int | None = None
) -> Plan[dict[str, Any]]:
    """Routes by mean response time over the window's hours (of one proxy hostname's requests)."""
    buckets = schema.hour_buckets(start_ms, end_ms)
    count_key = schema.stats_route_count if not hostname else _host_key("route_n", hostname)
    time_key = schema.stats_route_time if not hostname else _host_key("route_us", hostname)
    now = _now() if now_ms is None else now_ms
    (n_settled, n_rows), (us_settled, us_rows) = yield from window_stats.together(
        _summed(buckets, count_key, now), _summed(buckets, time_key, now)
    )
    n, us = _whole(n_settled, n_rows), _whole(us_settled, us_rows)
    rows = [
        {"route": route, "requests": c, "mean_ms": round(us.get(route, 0) / c / 1000, 3)}
        for route, c in n.items()
        if c
    ]
    rows.sort(key=lambda r: (-r["mean_ms"], r["route"]))
    return {"items": rows[:limit]}


def _errors_of(rows: list[list[Any]]) -> tuple[_Tally, list[dict[str, int]], dict[str, Any]]:
    """Hours' (groups, latest) rows: their tally, the counts per hour and the latest occurrences."""
    per_hour = [counts(groups) for groups, _latest in rows]
    latest: dict[str, Any] = {}
    for _groups, row in rows:  # oldest hour first: later hours overwrite
        for fp, raw in row.items():
            try:
                latest[window_stats.text(fp)] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
    return _Tally.of(per_hour), per_hour, latest


def error_groups(start_ms: int, end_ms: int, limit: int, now_ms: int | None = None) -> Plan[dict[str, Any]]:
    """Errors grouped by fingerprint: count per hour, total, and the latest occurrence."""
    buckets = schema.hour_buckets(start_ms, end_ms)
    (settled, settled_hours, settled_latest), rows = yield from _read(
        "errors", buckets, lambda b: [schema.stats_error_groups(b), schema.stats_error_latest(b)], _errors_of,
        _now() if now_ms is None else now_ms,
    )
    _live, live_hours, live_latest = _errors_of(rows)
    per_hour = settled_hours + live_hours
    latest = {**settled_latest, **live_latest}
    top_groups, total, other = settled.plus(live_hours, limit)
    groups = [
        {
            "fingerprint": fp,
            "count": c,
            "per_hour": [{"hour": b, "count": row.get(fp, 0)} for b, row in zip(buckets, per_hour)],
            "latest": latest.get(fp),
        }
        for fp, c in top_groups
    ]
    return {"total": total, "other": other, "groups": groups}


def _series_keys(start_ms: int, end_ms: int, hostname: str | None) -> list[tuple[str, str]]:
    per_minute = end_ms - start_ms <= MINUTE_SERIES_MAX_S * 1000
    buckets = schema.minute_buckets(start_ms, end_ms) if per_minute else schema.hour_buckets(start_ms, end_ms)
    key = schema.stats_rt_all if not hostname else (lambda b: schema.stats_rt(hostname, b))
    return [(b, key(b)) for b in buckets]


def _point(bucket: str, row: Any) -> dict[str, Any]:
    hist = window_stats.Histogram.of([window_stats.decode_histogram(row)])
    pct = histogram.percentiles(hist.counts, (50, 95, 99))
    return {
        "bucket": bucket,
        "start": schema.bucket_span_ms(bucket)[0],
        "requests": hist.count,
        "errors_4xx": hist.errors["4xx"],
        "errors_5xx": hist.errors["5xx"],
        "p50_ms": pct[50], "p95_ms": pct[95], "p99_ms": pct[99],
    }


def series(start_ms: int, end_ms: int, hostname: str | None, now_ms: int | None = None) -> Plan[dict[str, Any]]:
    """Requests, 4xx, 5xx and p50/p95/p99 per minute (or hour) from the response-time histograms;
    the points of settled buckets from the cache."""
    keys = _series_keys(start_ms, end_ms, hostname)
    done = console_cache.settled_prefix([b for b, _k in keys], _now() if now_ms is None else now_ms)
    points: list[Any] = [console_cache.POINTS.get(k) for _b, k in keys[:done]] + [None] * (len(keys) - done)
    missing = [i for i, p in enumerate(points) if p is None]
    replies = yield Round([call("hgetall", keys[i][1]) for i in missing])
    for i, row in zip(missing, replies):
        points[i] = _point(keys[i][0], row)
        if i < done:
            console_cache.POINTS.put(keys[i][1], points[i])
    step = "minute" if keys and schema.is_minute_bucket(keys[0][0]) else "hour"
    return {"step": step, "points": points}


def _classes_and_bytes(rows: list[list[Any]]) -> tuple[Counter[str], Counter[str]]:
    classes: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    for requests, sent_row in rows:
        for name, n in counts(requests).items():
            if name.startswith("status_"):
                classes[f"{name.removeprefix('status_')[:1]}xx"] += n
        sent.update(counts(sent_row))
    return classes, sent


def status_and_bytes(
    start_ms: int, end_ms: int, hostname: str | None, now_ms: int | None = None
) -> Plan[dict[str, Any]]:
    """Status-class mix (all hostnames; ``stats:requests``) and bytes sent over the window's hours."""
    (classes, sent), rows = yield from _read(
        "status_bytes", schema.hour_buckets(start_ms, end_ms),
        lambda b: [schema.stats_requests(b), schema.stats_bytes(b)], _classes_and_bytes,
        _now() if now_ms is None else now_ms,
    )
    live_classes, live_sent = _classes_and_bytes(rows)
    field = "_all" if not hostname else hostname[: schema.AGG_FIELD_MAX]
    all_classes = Counter(classes)
    all_classes.update(live_classes)  # (zero counts kept, as the reply had them)
    return {"status_classes": dict(sorted(all_classes.items())), "bytes_sent": sent.get(field, 0) + live_sent.get(field, 0)}


def _settled_bucket(key: str, now_ms: int) -> bool:
    """Whether the hour or minute bucket ending ``key`` (a response-time histogram) is settled."""
    return console_cache.settled_prefix([":".join(key.rsplit(":", 2)[1:])], now_ms) == 1


def summary(
    start_ms: int, end_ms: int, seconds: float, hostname: str | None, *, cluster: bool, shards: int = 1,
    now_ms: int | None = None,
) -> Plan[tuple[Any, list[str]]]:
    """The dashboard's figures (metrics.ScopeMetrics, as ``/logs/metrics`` computes them for the
    window) and the window's proxy hostnames. The histograms of settled buckets, the hours inside
    and the minutes at both edges alike, are merged once and cached (the window slides by a
    minute, so the merge is redone about once a minute); a request reads the last minutes only."""
    now = _now() if now_ms is None else now_ms
    by_hour = yield from window_stats.hosts_by_hour(schema.hour_buckets(start_ms, end_ms))
    keys = schema.rt_window_keys(start_ms, end_ms, hostname, now)
    done = [part for k in keys if _settled_bucket(k, now) for part in schema.sharded(k, shards)]
    live = [part for k in keys if not _settled_bucket(k, now) for part in schema.sharded(k, shards)]
    cache_key = ("histogram", *done)
    merged = console_cache.TALLIES.get(cache_key)
    read = live if merged is not None else done + live
    groups = [window_stats.visitor_sources(by_hour, hostname, now)]
    replies, visitors = yield from window_stats.together(
        _rows_of(read), window_stats.union_counts(groups, cluster=cluster, cache=True)
    )
    decoded = [window_stats.decode_histogram(row) for row in replies]
    if merged is None:
        merged = console_cache.TALLIES.put(cache_key, window_stats.Histogram.of(decoded[: len(done)]))
        decoded = decoded[len(done) :]
    scope = ScopeMetrics.from_histogram(window_stats.Histogram.total([merged, window_stats.Histogram.of(decoded)]), seconds)
    scope.unique_visitors = visitors[0]
    return scope, sorted({h for hosts in by_hour.values() for h in hosts})


def _rows_of(keys: list[str]) -> Plan[list[Any]]:
    replies = yield Round([call("hgetall", k) for k in keys])
    return replies
