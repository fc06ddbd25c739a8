"""The read path's walking and paging against a real Redis: ties, unions, intersections, cursors."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from otel_redis import query, query_stats, schema, window_stats
from otel_redis.query import CursorError, Position, UnionWalker, decode_cursor, encode_cursor


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url)


def _member(ms: int, n: int) -> str:
    return f"log:{ms}-{n:06x}"


def test_cursor_round_trip_and_rejection():
    pos = Position(1_718_000_000_123, "req:1718000000123-abc1:2001%3Adb8%3A%3A1")
    assert decode_cursor(encode_cursor(pos)) == pos
    for bad in ["", "c1.", "c2.AAAA", "c1.@@@", encode_cursor(pos)[:-3] + "%%%", "c1." + "A" * 700]:
        with pytest.raises(CursorError):
            decode_cursor(bad)


def test_union_walk_pages_through_long_runs_of_equal_scores(redis_url):
    """More members share one millisecond than a chunk holds; the walk still yields each once, in order."""

    async def main() -> list[Position]:
        c = await _client(redis_url)
        a = {_member(1000, i): 1000 for i in range(0, 80, 2)}
        a.update({_member(999, i): 999 for i in range(10)})
        b = {_member(1000, i): 1000 for i in range(1, 80, 2)}
        b.update({_member(1001, 0): 1001})
        await c.zadd("idx:a", a)
        await c.zadd("idx:b", b)
        walker = UnionWalker(["idx:a", "idx:b"], None, 0)
        out: list[Position] = []
        while True:
            batch = await walker.next_batch(c, 7)
            out += batch
            if len(batch) < 7:
                break
        await c.aclose()
        return out

    out = run(main())
    assert len(out) == 1 + 80 + 10 and len(set(out)) == len(out)
    assert out == sorted(out, reverse=True)


def test_search_intersection_with_cursor_pages_is_complete(redis_url):
    rng = random.Random(3)

    async def main() -> tuple[list[str], list[str]]:
        c = await _client(redis_url)
        big, small, other = {}, {}, {}
        expected = []
        for i in range(3000):
            ms = 1_000_000 + i // 3  # runs of equal scores
            key = _member(ms, i)
            await c.hset(key, mapping={"timestamp": "2024-01-01T00:00:00.000000000Z", "level": "INFO", "body": key})
            if rng.random() < 0.5:
                big[key] = ms
            if rng.random() < 0.05:
                small[key] = ms
            if rng.random() < 0.3:
                other[key] = ms
            if key in big and key in small and key in other:
                expected.append(key)
        await c.zadd("idx:big", big)
        await c.zadd("idx:small", small)
        await c.zadd("idx:other1", dict(list(other.items())[::2]))
        await c.zadd("idx:other2", dict(list(other.items())[1::2]))
        got: list[str] = []
        cursor = None
        while True:
            page = await query.search(
                c, [("idx:big",), ("idx:small",), ("idx:other1", "idx:other2")], since_ms=0, limit=3, cursor=cursor
            )
            got = [k for k, _e in page.records] + got
            if page.next_cursor is None:
                break
            cursor = decode_cursor(page.next_cursor)
        await c.aclose()
        return got, expected

    got, expected = run(main())
    assert len(expected) >= 5
    assert got == expected


def test_predicate_walk_never_returns_short(redis_url):
    async def main() -> list[str]:
        c = await _client(redis_url)
        members = {}
        for i in range(2000):
            key = _member(5000 + i, i)
            body = "needle" if i in (3, 10, 1500) else "hay"
            await c.hset(key, mapping={"timestamp": "2024-01-01T00:00:00.000000000Z", "level": "INFO", "body": body})
            members[key] = 5000 + i
        await c.zadd("idx:all", members)
        await c.delete(_member(5000 + 10, 10))  # an index member whose record is gone is skipped
        page = await query.search(c, [("idx:all",)], since_ms=0, limit=5, predicate=query.text_predicate("NEEDLE"))
        await c.aclose()
        return [k for k, _e in page.records]

    assert run(main()) == [_member(5003, 3), _member(6500, 1500)]


def test_hll_union_on_copies_equals_pfcount_and_leaves_nothing(redis_url):
    async def main() -> tuple[list[int], list[int], list[Any]]:
        c = await _client(redis_url)
        keys = []
        for h in range(3):
            for hour in range(4):
                key = schema.stats_unique_ips(f"h{h}.example.com", f"20240101:{hour:02d}")
                await c.pfadd(key, *[f"10.0.{h}.{i}" for i in range(hour * 40, hour * 40 + 300)])
                keys.append(key)
        groups = [keys, keys[:4], keys[4:8], [], keys[8:]]
        sources = [[(k, False) for k in g] for g in groups]
        copies = await window_stats.run_async(c, window_stats.union_counts(sources, cluster=True))
        direct = [int(await c.pfcount(*g)) if g else 0 for g in groups]
        left = [k async for k in c.scan_iter(match="tmp:*")]
        await c.aclose()
        return copies, direct, left

    copies, direct, left = run(main())
    assert copies == direct and direct[0] > direct[1] > 0 and left == []


def test_completed_hours_are_cached_and_the_current_hour_is_not(redis_url, settings):
    import time

    import redis as sync_redis

    from otel_redis import histogram
    from otel_redis.record import LogEntry, RequestFields
    from otel_redis.store import RedisStore

    def entry(ts_ns: int, ms: float) -> LogEntry:
        req = RequestFields(method="GET", path="/", status_code=200, client_ip="10.0.0.1",
                            proxy_hostname="h.example.com", response_time_ms=ms)
        return LogEntry(timestamp_ns=ts_ns, level="INFO", severity_number=9, body="GET /", request=req)

    now_ns = time.time_ns()
    old_ns = now_ns - 5 * 3600 * 10**9
    store = RedisStore(sync_redis.Redis.from_url(redis_url), settings)
    store.write([entry(old_ns, 10.0) for _ in range(5)])
    query_stats.forget_cached()

    async def summary() -> dict[str, Any]:
        c = await _client(redis_url)
        now = int(time.time() * 1000)
        out = await query_stats.request_stats(c, now - 24 * 3_600_000, now)
        await c.aclose()
        return out["response_times"]["by_hostname"]["h.example.com"]

    first = run(summary())
    assert first["count"] == 5 and first["p50"] == pytest.approx(10.0, rel=0.02)
    old_key = schema.stats_rt("h.example.com", schema.hour_bucket(old_ns // 10**6))
    sync_redis.Redis.from_url(redis_url).hincrby(old_key, str(histogram.bucket_of(500.0)), 100)
    assert run(summary())["count"] == 5  # the completed hour was read once
    store.write([entry(now_ns, 900.0) for _ in range(200)])
    assert run(summary())["count"] == 205  # the current hour is always read
    query_stats.forget_cached()
    assert run(summary())["count"] == 305


def test_unique_visitors_of_completed_hours_are_merged_once_and_the_current_hour_is_not(redis_url, settings):
    import time

    import redis as sync_redis

    from otel_redis.record import LogEntry, RequestFields
    from otel_redis.store import RedisStore

    def entry(ts_ns: int, ip: str, host: str) -> LogEntry:
        req = RequestFields(method="GET", path="/", status_code=200, client_ip=ip, proxy_hostname=host,
                            response_time_ms=5.0)
        return LogEntry(timestamp_ns=ts_ns, level="INFO", severity_number=9, body="GET /", request=req)

    sync = sync_redis.Redis.from_url(redis_url)
    store = RedisStore(sync, settings)
    now_ns = time.time_ns()
    hours_ago = [now_ns - h * 3600 * 10**9 for h in (3, 5, 7)]
    store.write([entry(ts, f"10.1.{n}.{i}", "a.example.com") for n, ts in enumerate(hours_ago) for i in range(40)])
    store.write([entry(hours_ago[0], f"10.2.0.{i}", "b.example.com") for i in range(30)])
    query_stats.forget_cached()

    async def visitors() -> dict[str, Any]:
        c = await _client(redis_url)
        now = int(time.time() * 1000)
        out = await query_stats.request_stats(c, now - 24 * 3_600_000, now)
        await c.aclose()
        return out["unique_visitors"]

    def direct() -> dict[str, Any]:
        """PFCOUNT over the hourly keys themselves (one server: the multi-key form)."""
        keys = {h: sorted(k.decode() for k in sync.scan_iter(match=f"stats:unique_ips:{h}.example.com:*")) for h in "ab"}
        by_host = {f"{h}.example.com": int(sync.pfcount(*keys[h])) for h in "ab"}
        return {"total": int(sync.pfcount(*keys["a"], *keys["b"])), "by_hostname": by_host}

    first = direct()
    assert run(visitors()) == first and first["total"] >= 148
    cached = list(sync.scan_iter(match="tmp:hll:*"))
    assert len(cached) == 3  # one union per figure (all, a, b), each with a TTL
    assert all(0 < sync.pttl(k) <= (window_stats.CACHE_TTL_S + 60) * 1000 for k in cached)
    old_key = schema.stats_unique_ips("a.example.com", schema.hour_bucket(hours_ago[1] // 10**6))
    sync.pfadd(old_key, *[f"10.9.9.{i}" for i in range(5)])  # late records into a completed hour
    late = direct()
    assert late["total"] > first["total"]
    assert run(visitors()) == first  # the completed hours were merged once
    store.write([entry(now_ns, f"10.3.0.{i}", "a.example.com") for i in range(10)])
    now_too = direct()
    got = run(visitors())  # the current hour is always counted: first + its 10 (as estimated)
    assert got["total"] > first["total"] and got["by_hostname"]["b.example.com"] == first["by_hostname"]["b.example.com"]
    assert got["total"] < now_too["total"]  # ... but not yet the late ones
    for key in cached:  # the cached unions vanish (another process cleared, eviction): rebuilt, never short
        sync.unlink(key)
    assert run(visitors()) == now_too
    query_stats.forget_cached()
    assert run(visitors()) == now_too


def test_cached_unions_are_bounded_and_counted_on_copies_too(r, monkeypatch):
    now = int(time.time() * 1000)
    keys = []
    for h in range(12):
        key = schema.stats_unique_ips("a.example.com", schema.hour_bucket(now - (h + 2) * 3_600_000))
        r.pfadd(key, *[f"10.{h}.0.{i}" for i in range(20)], *[f"10.0.0.{i}" for i in range(20)])
        keys.append(key)
    current = schema.stats_unique_ips("a.example.com", schema.hour_bucket(now))
    r.pfadd(current, *[f"10.99.0.{i}" for i in range(7)])
    window_stats.forget_cached()
    monkeypatch.setattr(window_stats, "UNION_CACHE_MAX", 4)
    for cluster in (False, True):
        for n in range(1, len(keys) + 1):  # windows of n completed hours plus the current one
            group = [(k, True) for k in keys[:n]] + [(current, False)]
            plan = window_stats.union_counts([group, group[:1]], cluster=cluster, cache=True)
            got = window_stats.run_sync(r, plan)
            assert got == [int(r.pfcount(*keys[:n], current)), int(r.pfcount(keys[0]))]
            assert len(list(r.scan_iter(match="tmp:hll:*"))) <= 4  # least recently used unions unlinked
    window_stats.forget_cached()


def _traced(ts_ms: int, trace: str, level: str = "INFO", body: str = "m") -> Any:
    from otel_redis.record import LogEntry

    sev = {"INFO": 9, "ERROR": 17}[level]
    return LogEntry(timestamp_ns=ts_ms * 1_000_000, level=level, severity_number=sev, body=body, trace_id=trace)


@pytest.fixture
def store(settings: Any) -> Any:
    from otel_redis.connection import make_client
    from otel_redis.store import RedisStore

    return RedisStore(make_client(settings), settings)


def test_a_trace_query_pages_across_hours_and_intersects_both_ways(redis_url, store):
    """The trace group (hourly lexicographic indexes) as the driver, paged by cursor across an hour
    boundary, and as the probed side of an intersection with a smaller group."""
    now = int(time.time() * 1000)
    boundary = now - now % schema.HOUR_MS
    trace, other = "12" * 16, "34" * 16
    entries = [_traced(boundary - 3 + i, trace, "ERROR" if i in (1, 4) else "INFO", f"t{i}") for i in range(7)]
    entries += [_traced(boundary - 2, other, "ERROR", "foreign error"), _traced(boundary + 5, other, "INFO", "foreign")]
    store.write(entries)
    expected = [f"t{i}" for i in range(7)]

    async def main() -> tuple[list[str], list[str], list[int]]:
        c = await _client(redis_url)
        got: list[str] = []
        cursor = None
        while True:  # the trace drives: pages of 2, newest first, across the hour boundary
            page = await query.search(c, [query.group_trace(trace)], since_ms=0, limit=2, cursor=cursor)
            got = [e.body for _k, e in page.records] + got
            if page.next_cursor is None:
                break
            cursor = decode_cursor(page.next_cursor)
        counts = await query.count_groups(c, [query.group_trace(trace), query.group_levels("ERROR")], 0, None)
        # ERROR (3 records) is smaller than the trace (7): it drives and the trace is probed
        page = await query.search(c, [query.group_trace(trace), query.group_levels("ERROR")], since_ms=0, limit=10)
        await c.aclose()
        return got, [e.body for _k, e in page.records], counts

    got, errors, counts = run(main())
    assert got == expected
    assert counts == [7, 3]
    assert errors == ["t1", "t4"]


def test_related_records_of_traces(redis_url, store):
    now = int(time.time() * 1000)
    keys = store.write([_traced(now - 3_600_000 * 2 + i, "56" * 16, body=f"r{i}") for i in range(5)])

    async def main() -> list[list[str]]:
        c = await _client(redis_url)
        out = await query.trace_keys(c, ["56" * 16, "78" * 16], now - 86_400_000, 3)
        await c.aclose()
        return out

    assert run(main()) == [keys[2:], []]
