"""The retention job on a real Redis: mixed ages in, exactly the data within retention out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import redis

from otel_redis import schema
from otel_redis.retention import CleanupSettings, run_cleanup
from otel_redis.store import RedisStore
from tests.traffic import DAY_MS, HOUR_MS, log_entry, oauth_entry, request_entry, write


def _all_indexes(r: redis.Redis) -> list[str]:
    return [k for p in schema.INDEX_PATTERNS for k in r.scan_iter(match=p, _type="zset")]


def _records(r: redis.Redis) -> set[str]:
    return {k for k in r.scan_iter(match=schema.RECORD_SCAN_PATTERN) if schema.is_record_key(k)}


def _dangling(r: redis.Redis) -> list[tuple[str, str]]:
    return [(idx, m) for idx in _all_indexes(r) for m in r.zrange(idx, 0, -1) if not r.exists(m)]


@pytest.fixture
def store(settings, r) -> RedisStore:
    return RedisStore(redis.Redis.from_url(settings.redis_url), settings)


def test_mixed_ages_leave_exactly_the_records_within_retention(store, settings, r):
    """Written now, cleaned 'three days later' (the job's clock is a parameter): requests older than
    7 days at that time go, errors (30 d) and OAuth records (90 d) stay, nothing dangles."""
    t0 = int(time.time() * 1000)
    later = t0 + 3 * DAY_MS
    ages = {  # age in days at write time -> age at cleanup = +3
        "req_1d": request_entry(t0 - 1 * DAY_MS, ip="10.0.0.1"),
        "req_3d": request_entry(t0 - 3 * DAY_MS - HOUR_MS, ip="10.0.0.2"),
        "req_5d": request_entry(t0 - 5 * DAY_MS, ip="10.0.0.3"),
        "req_6d": request_entry(t0 - 6 * DAY_MS, ip="10.0.0.1", user="bob"),
        "err_6d": request_entry(t0 - 6 * DAY_MS, status=503, ip="10.0.0.4"),
        "err_1d": request_entry(t0 - 1 * DAY_MS, status=404, ip="10.0.0.4"),
        "log_2d": log_entry(t0 - 2 * DAY_MS, "INFO", ip="10.0.0.9"),
        "log_6d": log_entry(t0 - 6 * DAY_MS, "INFO"),
        "logerr_6d": log_entry(t0 - 6 * DAY_MS, "ERROR"),
        "oauth_6d": oauth_entry(t0 - 6 * DAY_MS, "token_issued"),
    }
    names = list(ages)
    keys = dict(zip(names, write(store, ages.values())))
    assert _records(r) == set(keys.values())

    report = run_cleanup(r, settings, now_ms=later)

    kept = {"req_1d", "req_3d", "err_6d", "err_1d", "log_2d", "logerr_6d", "oauth_6d"}
    assert _records(r) == {keys[n] for n in kept}
    assert report.records_deleted == 3
    assert _dangling(r) == []
    # each index holds exactly its members within the index's own retention at that time
    for idx in _all_indexes(r):
        keep_ms = schema.index_retention(idx, settings.retention) * 1000
        for member, score in r.zrange(idx, 0, -1, withscores=True):
            assert score >= later - keep_ms, (idx, member)
    assert set(r.zrange(schema.IDX_REQ_ALL, 0, -1)) == {keys["req_1d"], keys["req_3d"], keys["err_1d"]}
    assert set(r.zrange(schema.IDX_REQ_ERRORS, 0, -1)) == {keys["err_6d"], keys["err_1d"]}
    assert set(r.zrange(schema.IDX_LOG_ERRORS, 0, -1)) == {keys["logerr_6d"]}
    assert set(r.zrange(schema.idx_oauth_event("token_issued"), 0, -1)) == {keys["oauth_6d"]}
    assert set(r.zrange(schema.IDX_LOG_ALL, 0, -1)) == {keys["log_2d"]}
    assert not r.exists(schema.idx_req_user("bob"))  # its only member was past retention
    assert report.members_past_retention > 0
    # a second run finds nothing more
    again = run_cleanup(r, settings, now_ms=later)
    assert again.removed == 0


def test_dangling_members_are_removed_in_batches(store, settings, r):
    now = int(time.time() * 1000)
    keys = write(store, [request_entry(now - i * 1000, ip=f"10.1.0.{i % 7}") for i in range(60)])
    gone = keys[::3]
    r.delete(*gone)
    report = run_cleanup(r, settings, CleanupSettings(batch=7))
    assert _dangling(r) == []
    assert report.members_dangling >= len(gone) * 4  # idx:req:all, status, method, path, ip, host
    assert r.zcard(schema.IDX_REQ_ALL) == 60 - len(gone)
    assert report.members_past_retention == 0 and report.records_deleted == 0


def test_dangling_check_can_be_turned_off(store, settings, r):
    now = int(time.time() * 1000)
    keys = write(store, [request_entry(now - i, ip="10.1.0.1") for i in range(5)])
    r.delete(keys[0])
    report = run_cleanup(r, settings, CleanupSettings(check_dangling=False))
    assert report.members_dangling == 0
    assert r.zcard(schema.IDX_REQ_ALL) == 5


def test_big_index_is_trimmed_in_chunks_exactly_at_the_cutoff(settings, r):
    """Members scored exactly at the cutoff stay (the write path's exclusive ``(cutoff``)."""
    now = int(time.time() * 1000)
    cutoff = now - settings.retention.requests * 1000
    idx = schema.idx_req_ip("203.0.113.5")
    old = {f"req:{cutoff - 1 - i}-x:203.0.113.5": cutoff - 1 - i for i in range(2500)}
    edge = {f"req:{cutoff}-x:203.0.113.5": cutoff}
    r.zadd(idx, {**old, **edge})
    for member in edge:
        r.hset(member, "status_code", "200")
    report = run_cleanup(r, settings, CleanupSettings(batch=300), now_ms=now)
    assert report.members_past_retention == 2500
    assert r.zrange(idx, 0, -1) == list(edge)
    assert r.ttl(idx) > 0  # an index without TTL gets one


def test_records_past_a_shortened_retention_are_deleted(store, settings, r):
    now = int(time.time() * 1000)
    keys = write(store, [request_entry(now - 3 * DAY_MS), request_entry(now - DAY_MS), request_entry(now - 3 * DAY_MS, status=500)])
    short = settings.with_overrides(retention=type(settings.retention)(requests=2 * 86400, errors=30 * 86400))
    report = run_cleanup(r, short, now_ms=now)
    assert _records(r) == {keys[1], keys[2]}
    assert report.records_deleted == 1
    assert _dangling(r) == []


def test_streams_are_trimmed_by_age_in_limited_steps(settings, r):
    now = int(time.time() * 1000)
    cutoff = now - settings.retention.requests * 1000
    for i in range(3000):
        r.xadd(schema.STREAM_REQUESTS, {"k": f"req:{i}"}, id=f"{cutoff - 3000 + i}-0")
    for i in range(500):
        r.xadd(schema.STREAM_REQUESTS, {"k": f"req:new{i}"}, id=f"{cutoff + i}-0")
    report = run_cleanup(r, settings, CleanupSettings(batch=200), now_ms=now)
    assert report.stream_entries_trimmed[schema.STREAM_REQUESTS] == 3000
    first = r.xrange(schema.STREAM_REQUESTS, count=1)[0][0]
    assert first == f"{cutoff}-0"
    assert r.xlen(schema.STREAM_REQUESTS) == 500


def test_stats_keys_past_retention_go_and_missing_ttls_are_set(store, settings, r):
    now = int(time.time() * 1000)
    write(store, [request_entry(now - 400 * DAY_MS), request_entry(now - 3 * DAY_MS), request_entry(now)])
    old_hour = schema.hour_bucket(now - 400 * DAY_MS)
    old_minute = schema.minute_bucket(now - 3 * DAY_MS)
    this_hour = schema.hour_bucket(now)
    assert r.exists(schema.stats_requests(old_hour), schema.stats_rt_all(old_minute)) == 2
    r.persist(schema.stats_requests(this_hour))
    report = run_cleanup(r, settings, now_ms=now)
    assert not r.exists(schema.stats_requests(old_hour))
    assert not r.exists(schema.stats_unique_ips("api.example.com", old_hour))
    assert not r.exists(schema.stats_rt_all(old_minute))  # minute histograms live two days
    assert r.exists(schema.stats_rt_all(schema.hour_bucket(now - 3 * DAY_MS)))  # hour ones a year
    ttl = r.ttl(schema.stats_requests(this_hour))
    assert 0 < ttl <= settings.retention.stats + 3600 + 60
    assert report.stats_keys_deleted >= 5 and report.expiries_set >= 1


OTEL_REDIS = os.path.join(os.path.dirname(sys.executable), "otel-redis")


def _cli(args: list[str], redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run([OTEL_REDIS, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.e2e
def test_cli_cleanup_reports_what_it_removed(store, settings, r):
    now = int(time.time() * 1000)
    keys = write(store, [request_entry(now - i) for i in range(4)])
    r.delete(keys[0])
    done = _cli(["cleanup", "--json"], settings.redis_url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["members_dangling"] >= 4 and report["removed"] == report["members_dangling"]
    assert _dangling(r) == []
    table = _cli(["cleanup"], settings.redis_url)
    assert table.returncode == 0 and "removed in all" in table.stdout


@pytest.mark.e2e
def test_cli_cleanup_bad_input_is_one_line(settings):
    done = _cli(["cleanup", "--batch", "0"], settings.redis_url)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--batch" in done.stderr
    bad_env = subprocess.run(
        [OTEL_REDIS, "cleanup"],
        env={**os.environ, "REDIS_URL": settings.redis_url, "OTEL_REDIS_CLEANUP_BATCH": "many"},
        capture_output=True, text=True, timeout=60,
    )
    assert bad_env.returncode == 2 and "OTEL_REDIS_CLEANUP_BATCH" in bad_env.stderr
    assert "Traceback" not in bad_env.stderr


def test_the_hourly_trace_indexes_are_left_to_expire_whole(store, settings, r):
    """Their members are scored 0 (a lexicographic index): a trim by score would empty them."""
    import dataclasses

    from otel_redis.store import trace_keys

    now = int(time.time() * 1000)
    trace = "9f" * 16
    keys = write(store, [dataclasses.replace(log_entry(now - i, "INFO"), trace_id=trace) for i in range(3)])
    index = schema.idx_trace(schema.hour_bucket(now))
    before = r.zcard(index)
    run_cleanup(r, settings, now_ms=now)
    assert r.zcard(index) == before >= 3
    assert sorted(trace_keys(r, trace)) == sorted(keys)
