"""The console's reads over settled hours kept in this process (console_cache.py): the same answers
as a merge of every hour read afresh, on a real Redis with the real write path."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from otel_redis import console_cache, console_stats, metrics, schema
from otel_redis.connection import make_client
from otel_redis.record import LogEntry, RequestFields
from otel_redis.store import RedisStore
from otel_redis.window_stats import counts, run_sync

HOUR = 3_600_000


def _req(ts_ms: int, ip: str, status: int = 200, host: str = "a.example") -> LogEntry:
    return LogEntry(timestamp_ns=ts_ms * 1_000_000, level="ERROR" if status >= 500 else "INFO", severity_number=9,
                    body="req", request=RequestFields(method="GET", path=f"/p/{ip}", status_code=status,
                                                      client_ip=ip, proxy_hostname=host, route="/p/{x}",
                                                      response_time_ms=float(len(ip)), bytes_sent=10))


def _fresh_top(r, kind: str, buckets: list[str], limit: int) -> list[tuple[str, int]]:
    """The ranking of one merge of every hour (what the reads gave before any caching)."""
    total: Counter[str] = Counter()
    for b in buckets:
        total.update(counts(r.hgetall(console_stats.TOP_KEYS[kind](b))))
    total.pop(schema.AGG_OTHER, None)
    return total.most_common(limit)


@pytest.fixture
def three_hours(settings, r):
    """Requests in the two hours before this one (settled) and in this one, with ties and values
    that are frequent in one hour only."""
    console_cache.clear()
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    start = now - now % HOUR - 2 * HOUR
    batches = [
        [_req(start + 10, f"10.0.0.{i % 7}") for i in range(70)] + [_req(start + 20, "10.9.9.9")] * 12,
        [_req(start + HOUR + 10, f"10.0.0.{i % 5}") for i in range(40)] + [_req(start + HOUR, "10.8.8.8", 404)] * 3,
        [_req(now, "10.9.9.9")] * 9 + [_req(now, "10.7.7.7", 500)] * 21 + [_req(now, f"10.0.0.{i}") for i in range(3)],
    ]
    for batch in batches:
        store.write(batch)
    yield start, now
    console_cache.clear()


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 50])
def test_top_lists_over_settled_hours_rank_as_one_fresh_merge_cached_or_not(r, three_hours, limit):
    start, now = three_hours
    buckets = schema.hour_buckets(start, now)
    expected = _fresh_top(r, "ips", buckets, limit)
    for _ in range(2):  # the first fills the cache, the second uses it
        body = run_sync(r, console_stats.top("ips", start, now, limit))
        assert [(i["value"], i["count"]) for i in body["items"]] == expected
        assert body["total"] == 70 + 12 + 40 + 3 + 9 + 21 + 3


def test_settled_hours_come_from_the_cache_until_it_is_cleared(r, three_hours):
    start, now = three_hours
    first = run_sync(r, console_stats.top("ips", start, now, 10))
    series = run_sync(r, console_stats.status_and_bytes(start, now, None))
    r.delete(schema.stats_client_ips(schema.hour_bucket(start)), schema.stats_bytes(schema.hour_bucket(start)))
    assert run_sync(r, console_stats.top("ips", start, now, 10)) == first
    assert run_sync(r, console_stats.status_and_bytes(start, now, None)) == series
    console_cache.clear()
    again = run_sync(r, console_stats.top("ips", start, now, 10))
    assert again["total"] == first["total"] - 82
    assert run_sync(r, console_stats.status_and_bytes(start, now, None))["bytes_sent"] == series["bytes_sent"] - 820


def test_the_current_hour_is_read_on_every_request(settings, r, three_hours):
    start, now = three_hours
    before = run_sync(r, console_stats.top("ips", start, now, 3))
    errors = run_sync(r, console_stats.error_groups(start, now, 5))
    RedisStore(make_client(settings), settings).write([_req(now, "10.6.6.6", 500)] * 30)
    after = run_sync(r, console_stats.top("ips", start, now, 3))
    assert after["items"][0] == {"value": "10.6.6.6", "count": 30}
    assert after["total"] == before["total"] + 30
    assert run_sync(r, console_stats.error_groups(start, now, 5))["total"] == errors["total"] + 30


def test_error_groups_and_series_over_settled_hours_are_the_same_cached_or_not(r, three_hours):
    start, now = three_hours
    plans = [
        lambda: console_stats.error_groups(start, now, 5),
        lambda: console_stats.slow_routes(start, now, 5),
        lambda: console_stats.series(start, now, None),
        lambda: console_stats.series(now - 3 * 60_000, now, "a.example"),
    ]
    for make in plans:
        console_cache.clear()
        fresh = run_sync(r, make())
        assert run_sync(r, make()) == fresh
    assert sum(p["requests"] for p in fresh["points"]) == 33


@pytest.mark.parametrize("hostname", [None, "a.example"])
def test_the_dashboard_summary_equals_the_metrics_of_the_window_cached_or_not(r, three_hours, hostname):
    start, now = three_hours
    window = metrics.Window(start + 30 * 60_000, now)  # minute hashes at the start edge, settled
    expected = metrics.compute(r, window.seconds, end_ms=now, hostname=hostname, per_hostname=False)
    want = expected.hostnames[hostname] if hostname else expected.overall
    assert want.requests == (33 if hostname is None else 33) + 40 + 3
    for _ in range(2):
        scope, hosts = run_sync(r, console_stats.summary(window.start_ms, now, window.seconds, hostname,
                                                         cluster=False, now_ms=now))
        assert scope.to_dict() == want.to_dict()
        assert hosts == ["a.example"]
