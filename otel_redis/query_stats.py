"""Aggregate reads for /logs/stats and /logs/events: hourly hashes, HyperLogLogs, histograms.

Nothing here touches records: every figure comes from the per-hour (and per-minute) ``stats:*``
keys, so the cost depends on the window length and the number of hostnames, not on how many
records are stored. Counts use the hour buckets that overlap the window (hour granularity);
response-time percentiles and per-hostname request counts use ``schema.rt_window_keys`` (minute
histograms at the edges of the window while they are kept, hour histograms inside), so they slide
by the minute.
"""

from __future__ import annotations

import secrets
from collections import Counter
from typing import Any, Sequence

from . import histogram, schema

HOUR_MS = 3_600_000
#: hostnames reported individually (the busiest); the rest only count in the totals
MAX_HOSTNAMES = 50


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
    rt_keys = {h: schema.rt_window_keys(since_ms, now_ms, h, now_ms) for h in [None, *hostnames]}
    hll_keys = [(h, schema.stats_unique_ips(h, b)) for b in buckets for h in hosts_by_bucket[b]]
    pipe = client.pipeline(transaction=False)
    for keys in rt_keys.values():
        for key in keys:
            pipe.hgetall(key)
    for _h, key in hll_keys:
        pipe.get(key)
    res = iter(await pipe.execute())
    rt = {h: histogram.merge([next(res) for _ in keys]) for h, keys in rt_keys.items()}
    blobs = [next(res) for _ in hll_keys]
    shown = sorted(hostnames, key=lambda h: -histogram.count(rt[h]))[:MAX_HOSTNAMES]
    unique_total, unique_hosts = await _unique_visitors(client, hll_keys, blobs, shown)

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


async def _unique_visitors(
    client: Any, hll_keys: Sequence[tuple[str, str]], blobs: Sequence[bytes | None], shown: Sequence[str]
) -> tuple[int, dict[str, int]]:
    """Union of hourly HyperLogLogs without a cross-slot PFCOUNT: copy them under one hash tag."""
    present = [(h, blob) for (h, _key), blob in zip(hll_keys, blobs) if blob]
    if not present:
        return 0, {h: 0 for h in shown}
    token = secrets.token_hex(6)
    pipe = client.pipeline(transaction=False)
    tmp: dict[str, list[str]] = {}
    all_tmp: list[str] = []
    for i, (h, blob) in enumerate(present):
        key = schema.tmp_hll(token, str(i))
        pipe.set(key, blob, ex=30)
        tmp.setdefault(h, []).append(key)
        all_tmp.append(key)
    pipe.pfcount(*all_tmp)
    for h in shown:
        if h in tmp:
            pipe.pfcount(*tmp[h])
    for key in all_tmp:
        pipe.delete(key)
    res = await pipe.execute(raise_on_error=False)
    offset = len(all_tmp)
    total = res[offset] if isinstance(res[offset], int) else 0
    out: dict[str, int] = {}
    j = offset + 1
    for h in shown:
        if h in tmp:
            out[h] = res[j] if isinstance(res[j], int) else 0
            j += 1
        else:
            out[h] = 0
    return total, out


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
