"""Aggregate reads for /logs/stats and /logs/events: hourly hashes, HyperLogLogs, histograms.

Nothing here touches records: every figure comes from the per-hour (and per-minute) ``stats:*``
keys, so the cost depends on the window length and the number of hostnames, not on how many
records are stored. Counts use the hour buckets that overlap the window (hour granularity);
response-time percentiles for windows up to two hours use ``schema.rt_window_keys`` (minute
histograms at the edges, so they slide by the minute) and the overlapping hour histograms beyond;
the hour histograms of completed hours are decoded once and kept a few minutes in this process, so
a dashboard polling a day's statistics reads the current hour's histograms only.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter, OrderedDict
from typing import Any, Sequence

from . import histogram, schema

HOUR_MS = 3_600_000
#: hostnames reported individually (the busiest); the rest only count in the totals
MAX_HOSTNAMES = 50
#: windows up to this long get minute-precise response times; longer ones whole hours
MINUTE_PRECISION_MS = 2 * HOUR_MS


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _counts(mapping: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in mapping.items():
        try:
            out[_text(k)] = int(v)
        except (TypeError, ValueError):
            continue
    return out


async def request_stats(client: Any, since_ms: int, now_ms: int, top: int = 10) -> dict[str, Any]:
    """Totals per hour, by status, error rate, requests/s, unique visitors, top paths, percentiles."""
    buckets = schema.hour_buckets(since_ms, now_ms)
    pipe = client.pipeline(transaction=False)
    for b in buckets:
        pipe.hgetall(schema.stats_requests(b))
        pipe.hgetall(schema.stats_errors(b))
        pipe.smembers(schema.stats_hosts(b))
        pipe.hgetall(schema.stats_paths(b))
        pipe.hgetall(schema.stats_logs(b))
    rows = iter(await pipe.execute())
    per_hour = []
    by_status: Counter[str] = Counter()
    hosts_by_bucket: dict[str, list[str]] = {}
    paths: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    total = errors = logs_total = 0
    for b in buckets:
        req, err = _counts(next(rows)), _counts(next(rows))
        hosts_by_bucket[b] = sorted(_text(h) for h in next(rows))
        pth, lg = _counts(next(rows)), _counts(next(rows))
        hour_total = req.get("total", 0)
        hour_errors = sum(err.values())
        statuses = {k.removeprefix("status_"): v for k, v in req.items() if k.startswith("status_")}
        total += hour_total
        errors += hour_errors
        by_status.update(statuses)
        paths.update(pth)
        logs_total += lg.get("total", 0)
        levels.update({k.removeprefix("level_"): v for k, v in lg.items() if k.startswith("level_")})
        per_hour.append(
            {"hour": b, "requests": hour_total, "errors": hour_errors, "by_status": statuses, "logs": lg.get("total", 0)}
        )

    hostnames = sorted({h for hs in hosts_by_bucket.values() for h in hs})
    shown = await _busiest(client, hostnames, since_ms)
    # the overall histogram is the sum of the hostnames' when every request had one (the usual
    # case): one series less to read; otherwise stats:rt_all is read as well
    whole_hours = now_ms - since_ms > MINUTE_PRECISION_MS
    rt = await _histograms(client, since_ms, now_ms, shown)
    if whole_hours and len(shown) == len(hostnames) and sum(histogram.count(h) for h in rt.values()) == total:
        rt[None] = histogram.merge(rt.values())
    else:
        rt.update(await _histograms(client, since_ms, now_ms, [None]))
    hll_keys = [(h, schema.stats_unique_ips(h, b)) for b in buckets for h in hosts_by_bucket[b]]
    unique_total, unique_hosts = await unique_visitors(client, hll_keys, shown)

    seconds = max(1.0, (now_ms - (since_ms - since_ms % HOUR_MS)) / 1000.0)
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
        "unique_visitors": {"total": unique_total, "by_hostname": unique_hosts},
        "top_paths": [{"path": p, "count": c} for p, c in paths.most_common(top)],
        "response_times": {
            "all": histogram.summary(rt[None]),
            "by_hostname": {h: histogram.summary(rt[h]) for h in shown},
        },
    }


async def _busiest(client: Any, hostnames: list[str], since_ms: int) -> list[str]:
    """The hostnames reported one by one: all, or the :data:`MAX_HOSTNAMES` with most requests in
    the window (``ZCOUNT`` of their ``idx:req:host`` index)."""
    if len(hostnames) <= MAX_HOSTNAMES:
        return hostnames
    pipe = client.pipeline(transaction=False)
    for h in hostnames:
        pipe.zcount(schema.idx_req_host(h), since_ms, "+inf")
    counts = dict(zip(hostnames, await pipe.execute()))
    return sorted(hostnames, key=lambda h: (-int(counts[h]), h))[:MAX_HOSTNAMES]


async def _histograms(
    client: Any, since_ms: int, now_ms: int, hostnames: Sequence[str | None]
) -> dict[str | None, dict[int, int]]:
    """Merged response-time histogram of the window per hostname (None: all requests); hour
    histograms of completed hours come from the cache when it has them."""
    plan = {h: _rt_keys(since_ms, now_ms, h) for h in hostnames}
    clock = time.monotonic()
    known: dict[str, dict[int, int]] = {}
    for group in plan.values():
        for key, complete in group:
            hit = _cache.get(key) if complete else None
            if hit is not None and hit[0] > clock:
                known[key] = hit[1]
    to_read = list(dict.fromkeys(key for group in plan.values() for key, _c in group if key not in known))
    if to_read:
        pipe = client.pipeline(transaction=False)
        for key in to_read:
            pipe.hgetall(key)
        for key, row in zip(to_read, await pipe.execute()):
            known[key] = histogram.merge([row])
    for group in plan.values():
        for key, complete in group:
            if complete and key in to_read:
                _remember(key, known[key], clock)
    return {h: histogram.merge([known[key] for key, _c in group]) for h, group in plan.items()}


#: decoded hour histograms of completed hours, by key: an hour that is over no longer changes,
#: except for records that arrive late (an OTLP sender's backlog), which show within the TTL
_cache: OrderedDict[str, tuple[float, dict[int, int]]] = OrderedDict()
CACHE_TTL_S = 300.0
CACHE_MAX = 4096
#: an hour bucket counts as complete this long after its end (batches in flight have landed)
COMPLETE_AFTER_MS = 120_000


def _remember(key: str, hist: dict[int, int], clock: float) -> None:
    _cache[key] = (clock + CACHE_TTL_S, hist)
    _cache.move_to_end(key)
    while len(_cache) > CACHE_MAX:
        _cache.popitem(last=False)


def forget_cached() -> None:
    """Drop cached histograms (after DELETE /logs)."""
    _cache.clear()


def _rt_keys(since_ms: int, now_ms: int, hostname: str | None) -> list[tuple[str, bool]]:
    """Histogram hashes of the window, each with whether its hour is complete (cacheable): minute
    precision up to :data:`MINUTE_PRECISION_MS` (never cached), whole hours beyond (a day's window
    reads 25 hashes per hostname instead of up to 140)."""
    if now_ms - since_ms <= MINUTE_PRECISION_MS:
        return [(key, False) for key in schema.rt_window_keys(since_ms, now_ms, hostname, now_ms)]
    key = schema.stats_rt_all if hostname is None else (lambda b: schema.stats_rt(hostname, b))
    first = since_ms - since_ms % HOUR_MS
    return [
        (key(b), first + (i + 1) * HOUR_MS + COMPLETE_AFTER_MS <= now_ms)
        for i, b in enumerate(schema.hour_buckets(since_ms, now_ms))
    ]


def is_cluster(client: Any) -> bool:
    return type(client).__name__ == "RedisCluster"


async def unique_visitors(
    client: Any, hll_keys: Sequence[tuple[str, str]], shown: Sequence[str]
) -> tuple[int, dict[str, int]]:
    """Union counts of hourly HyperLogLogs ``(hostname, key)``: over all, and per shown hostname.

    On one Redis server ``PFCOUNT key1 key2 ...`` merges them where they are. On Redis Cluster
    the keys live in different slots, so they are counted on copies under one hash tag
    (:func:`_pfcount_copies`).
    """
    groups = [[key for _h, key in hll_keys]] + [[key for h, key in hll_keys if h == host] for host in shown]
    if is_cluster(client):
        counts = await _pfcount_copies(client, groups)
    else:
        pipe = client.pipeline(transaction=False)
        for keys in groups:
            if keys:
                pipe.pfcount(*keys)
        results = iter(await pipe.execute())
        counts = [int(next(results)) if keys else 0 for keys in groups]
    return counts[0], dict(zip(shown, counts[1:]))


async def _pfcount_copies(client: Any, groups: Sequence[Sequence[str]]) -> list[int]:
    """PFCOUNT of each group of keys, on copies (GET, then SET under ``schema.tmp_hll``: one hash
    tag, so one slot); the copies are deleted at once and expire in 30 s anyway."""
    keys = list(dict.fromkeys(k for group in groups for k in group))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    token = secrets.token_hex(6)
    copies = {k: (schema.tmp_hll(token, str(i)), blob) for i, (k, blob) in enumerate(zip(keys, await pipe.execute())) if blob}
    pipe = client.pipeline(transaction=False)
    for copy, blob in copies.values():
        pipe.set(copy, blob, ex=30)
    counted = [[copies[k][0] for k in group if k in copies] for group in groups]
    for group in counted:
        if group:
            pipe.pfcount(*group)
    for copy, _blob in copies.values():
        pipe.delete(copy)
    results = iter((await pipe.execute(raise_on_error=False))[len(copies) :])
    out = []
    for group in counted:
        value = next(results) if group else 0
        out.append(value if isinstance(value, int) else 0)
    return out


async def event_stats(client: Any, since_ms: int, now_ms: int, event: str | None = None) -> dict[str, Any]:
    """Count per event name (from ``stats:events:{hour}``), per hour, with each event's last time."""
    buckets = schema.hour_buckets(since_ms, now_ms)
    pipe = client.pipeline(transaction=False)
    for b in buckets:
        pipe.hgetall(schema.stats_events(b))
    totals: Counter[str] = Counter()
    per_hour = []
    for b, row in zip(buckets, await pipe.execute()):
        counts = _counts(row)
        if event is not None:
            counts = {event: counts[event]} if event in counts else {}
        totals.update(counts)
        per_hour.append({"hour": b, "total": sum(counts.values()), "events": counts})
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
