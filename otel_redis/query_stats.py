"""Aggregate reads for /logs/stats and /logs/events: hourly hashes, HyperLogLogs, histograms.

Nothing here touches records: every figure comes from the per-hour (and per-minute) ``stats:*``
keys, so the cost depends on the window length and the number of hostnames, not on how many
records are stored. Counts use the hour buckets that overlap the window (hour granularity);
response-time percentiles for windows up to two hours use ``schema.rt_window_keys`` (minute
histograms at the edges, so they slide by the minute) and the overlapping hour histograms beyond.
Histograms, hostnames and unique visitors are window_stats' plans (shared with metrics.py), with
its cache of settled hours: the hour histograms of completed hours are decoded once and kept a few
minutes in this process, and the union of their HyperLogLogs is merged once into a cache key, so a
dashboard polling a day's statistics reads the current hour's histograms and merges two
HyperLogLogs per figure instead of 25.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any, Sequence

from . import histogram, schema, window_stats
from .window_stats import Histogram, forget_cached, text

__all__ = ["MAX_HOSTNAMES", "MINUTE_PRECISION_MS", "request_stats", "event_stats", "forget_cached"]

HOUR_MS = 3_600_000
#: hostnames reported individually (the busiest); the rest only count in the totals
MAX_HOSTNAMES = 50
#: windows up to this long get minute-precise response times; longer ones whole hours
MINUTE_PRECISION_MS = 2 * HOUR_MS


async def request_stats(client: Any, since_ms: int, now_ms: int, top: int = 10, shards: int = 1) -> dict[str, Any]:
    """Totals per hour, by status, error rate, requests/s, unique visitors, top paths, percentiles
    (``shards``: the Cluster layout's shard count; each counter hash is the sum of its parts)."""
    plan = _request_stats(since_ms, now_ms, top, window_stats.is_cluster(client), shards)
    return await window_stats.run_async(client, plan)


#: the hourly hashes /logs/stats reads, in the order _request_stats takes them
_HOURLY = (schema.stats_requests, schema.stats_errors, schema.stats_paths, schema.stats_logs)


def _request_stats(
    since_ms: int, now_ms: int, top: int, cluster: bool, shards: int = 1
) -> window_stats.Plan[dict[str, Any]]:
    buckets = schema.hour_buckets(since_ms, now_ms)
    hashes = [(b, key(b)) for b in buckets for key in _HOURLY]
    counted_from = since_ms - since_ms % HOUR_MS  # the counts are of whole hours
    firsts = [window_stats.call("zrangebyscore", part, counted_from, now_ms, start=0, num=1, withscores=True)
              for part in schema.sharded(schema.IDX_REQ_ALL, shards)]
    replies = iter((yield window_stats.Round(
        [window_stats.call("smembers", schema.stats_hosts(b)) for b in buckets]
        + [window_stats.call("hgetall", part) for _b, key in hashes for part in schema.sharded(key, shards)]
        + firsts
    )))  # fmt: skip
    host_rows = [next(replies) for _b in buckets]
    merged = [window_stats.summed_counts([next(replies) for _p in schema.sharded(key, shards)]) for _b, key in hashes]
    first_ms = min((int(row[0][1]) for row in (next(replies) for _f in firsts) if row), default=now_ms)
    rows = iter(merged)
    per_hour = []
    by_status: Counter[str] = Counter()
    hosts_by_bucket: dict[str, list[str]] = {}
    paths: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    total = errors = logs_total = 0
    for b, hosts in zip(buckets, host_rows):
        req, err, pth, lg = next(rows), next(rows), next(rows), next(rows)
        hosts_by_bucket[b] = sorted(text(h) for h in hosts)
        hour_total = req.get(schema.STATS_TOTAL_FIELD, 0)
        hour_errors = sum(err.values())
        statuses = {code: v for k, v in req.items() if (code := schema.status_of_field(k)) is not None}
        total += hour_total
        errors += hour_errors
        by_status.update(statuses)
        paths.update(pth)
        logs_total += lg.get(schema.STATS_TOTAL_FIELD, 0)
        levels.update({lvl: v for k, v in lg.items() if (lvl := schema.level_of_field(k)) is not None})
        per_hour.append(
            {"hour": b, "requests": hour_total, "errors": hour_errors, "by_status": statuses, "logs": lg.get("total", 0)}
        )

    hostnames = sorted({h for hs in hosts_by_bucket.values() for h in hs})
    shown = yield from _busiest(hostnames, since_ms)
    histograms = functools.partial(_histograms, shards=shards)
    groups = [window_stats.visitor_sources(hosts_by_bucket, h, now_ms) for h in (None, *shown)]
    rt, visitors = yield from window_stats.together(
        histograms(since_ms, now_ms, shown), window_stats.union_counts(groups, cluster=cluster, cache=True)
    )
    # the overall histogram is the sum of the hostnames' when every request had one (the usual
    # case): one series less to read; otherwise stats:rt_all is read as well
    whole_hours = now_ms - since_ms > MINUTE_PRECISION_MS
    if whole_hours and len(shown) == len(hostnames) and sum(h.count for h in rt.values()) == total:
        rt[None] = Histogram.total(rt.values())
    else:
        rt.update((yield from histograms(since_ms, now_ms, [None])))

    # the rate is over the part of the window that had requests: from the first request counted
    # (the oldest member of idx:req:all in the counted hours) to now, so 85 requests in the last
    # minute read as about 1.4 req/s, not as 85 divided by the whole hour
    seconds = max(1.0, (now_ms - max(counted_from, first_ms)) / 1000.0)
    return {
        "requests": {
            "total": total,
            "errors": errors,
            "error_rate": (errors / total) if total else 0.0,
            "requests_per_second": total / seconds,
            "by_status": dict(sorted(by_status.items())),
            "per_hour": per_hour,
        },
        "logs": {"total": logs_total, "by_level": dict(levels)},
        "unique_visitors": {"total": visitors[0], "by_hostname": dict(zip(shown, visitors[1:]))},
        "top_paths": [{"path": p, "count": c} for p, c in paths.most_common(top)],
        "response_times": {
            "all": histogram.summary(rt[None].counts),
            "by_hostname": {h: histogram.summary(rt[h].counts) for h in shown},
        },
    }


def _busiest(hostnames: list[str], since_ms: int) -> window_stats.Plan[list[str]]:
    """The hostnames reported one by one: all, or the :data:`MAX_HOSTNAMES` with most requests in
    the window (``ZCOUNT`` of their ``idx:req:host`` index)."""
    if len(hostnames) <= MAX_HOSTNAMES:
        return hostnames
    replies = yield window_stats.Round([window_stats.call("zcount", schema.idx_req_host(h), since_ms, "+inf") for h in hostnames])
    found = dict(zip(hostnames, replies))
    return sorted(hostnames, key=lambda h: (-int(found[h]), h))[:MAX_HOSTNAMES]


def _histograms(
    since_ms: int, now_ms: int, hostnames: Sequence[str | None], shards: int = 1
) -> window_stats.Plan[dict[str | None, Histogram]]:
    """Merged response-time histogram of the window per hostname (None: all requests): minute
    precision up to :data:`MINUTE_PRECISION_MS`, whole hours beyond (a day's window reads 25 hashes
    per hostname instead of up to 140), hours that are over from the cache."""
    minute_edges = now_ms - since_ms <= MINUTE_PRECISION_MS
    plan = {
        h: window_stats.histogram_sources(since_ms, now_ms, h, now_ms, minute_edges=minute_edges, shards=shards)
        for h in hostnames
    }
    return (yield from window_stats.histograms(plan, cache=not minute_edges))


async def event_stats(
    client: Any, since_ms: int, now_ms: int, event: str | None = None, shards: int = 1
) -> dict[str, Any]:
    """Count per event name (from ``stats:events:{hour}``, every part summed on a Cluster layout),
    per hour, with each event's last time."""
    buckets = schema.hour_buckets(since_ms, now_ms)
    pipe = client.pipeline(transaction=False)
    for b in buckets:
        for part in schema.sharded(schema.stats_events(b), shards):
            pipe.hgetall(part)
    replies = iter(await pipe.execute())
    totals: Counter[str] = Counter()
    per_hour = []
    for b in buckets:
        found = window_stats.summed_counts([next(replies) for _p in schema.sharded(schema.stats_events(b), shards)])
        if event is not None:
            found = {event: found[event]} if event in found else {}
        totals.update(found)
        per_hour.append({"hour": b, "total": sum(found.values()), "events": found})
    names = [name for name, _ in totals.most_common()]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.zrevrangebyscore(schema.idx_log_event(name), "+inf", since_ms, start=0, num=1, withscores=True)
    last = {}
    for name, rows in zip(names, await pipe.execute() if names else []):
        last[name] = int(rows[0][1]) if rows else None
    return {
        "total": sum(totals.values()),
        "events": [{"event": n, "count": totals[n], "last_seen_ms": last.get(n)} for n in names],
        "per_hour": per_hour,
    }
