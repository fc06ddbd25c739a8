"""The console's hourly aggregates through the real write path (RedisStore.write) on a real Redis."""

from __future__ import annotations

import time

import orjson

from otel_redis import aggregates, schema
from otel_redis.connection import make_client
from otel_redis.record import LogEntry, RequestFields
from otel_redis.store import RedisStore


def _req(ts_ms: int, status: int = 200, **kw) -> LogEntry:
    fields = {"method": "GET", "path": "/p", "status_code": status, "client_ip": "10.0.0.1", **kw}
    return LogEntry(timestamp_ns=ts_ms * 1_000_000, level="INFO", severity_number=9, body="req",
                    request=RequestFields(**fields))


def _error(ts_ms: int, message: str, kind: str = "ValueError") -> LogEntry:
    return LogEntry(timestamp_ns=ts_ms * 1_000_000, level="ERROR", severity_number=17, body=message,
                    attributes={"exception.type": kind, "exception.message": message})


def test_agents_referrers_ips_bytes_and_routes_are_counted_per_hour(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    store.write([
        _req(now, user_agent="curl/8", referrer="https://a.example/", bytes_sent=100, proxy_hostname="api.example",
             route="/items/{id}", path="/items/1", response_time_ms=10.0),
        _req(now, user_agent="curl/8", bytes_sent=50, proxy_hostname="api.example", route="/items/{id}",
             path="/items/2", response_time_ms=30.0, client_ip="10.0.0.2"),
        _req(now, status=404, path="/wp-login.php?x=1", user_agent="scanner"),
    ])
    assert r.hgetall(schema.stats_agents(hour)) == {"curl/8": "2", "scanner": "1"}
    assert r.hgetall(schema.stats_referrers(hour)) == {"https://a.example/": "1"}
    assert r.hgetall(schema.stats_client_ips(hour)) == {"10.0.0.1": "2", "10.0.0.2": "1"}
    assert r.hgetall(schema.stats_bytes(hour)) == {"_all": "150", "api.example": "150"}
    assert r.hgetall(schema.stats_not_found(hour)) == {"/wp-login.php": "1"}
    assert r.hgetall(schema.stats_route_count(hour)) == {"GET /items/{id}": "2"}
    assert r.hgetall(schema.stats_route_time(hour)) == {"GET /items/{id}": "40000"}
    for key in (schema.stats_agents(hour), schema.stats_bytes(hour)):
        assert settings.retention.stats < r.ttl(key) <= settings.retention.stats + 60


def test_10000_distinct_user_agents_and_referrers_stay_within_the_cap_and_every_request_is_counted(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    n = 10_000
    for start in range(0, n, 1000):  # several batches, as the exporter sends them
        store.write([
            _req(now, user_agent=f"agent-{i}", referrer=f"https://ref{i}.example/", client_ip=f"10.1.{i // 250}.{i % 250}")
            for i in range(start, start + 1000)
        ])
    for key in (schema.stats_agents(hour), schema.stats_referrers(hour), schema.stats_client_ips(hour)):
        counts = {k: int(v) for k, v in r.hgetall(key).items()}
        assert len(counts) == schema.AGG_CAP + 1, key  # the capped fields and _OTHER
        assert counts[schema.AGG_OTHER] == n - schema.AGG_CAP
        assert sum(counts.values()) == n
    assert not [k for k in r.scan_iter("stats:*agent-*")], "a client value became a key"


def test_long_values_are_cut_to_the_field_bound(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    store.write([_req(now, user_agent="x" * 5000)])
    (field,) = r.hkeys(schema.stats_agents(schema.hour_bucket(now)))
    assert field == "x" * schema.AGG_FIELD_MAX


def test_errors_are_grouped_by_type_and_normalised_message_with_the_latest_occurrence(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    store.write([
        _error(now, "user 17 not found"),
        _error(now + 1, "user 4242 not found"),
        _error(now + 2, "user 5 not found", kind="KeyError"),
        _req(now + 3, status=503, error="upstream timeout"),
        LogEntry(timestamp_ns=now * 1_000_000, level="INFO", severity_number=9, body="fine"),
    ])
    groups = {k: int(v) for k, v in r.hgetall(schema.stats_error_groups(hour)).items()}
    value_error = aggregates.fingerprint("ValueError", "user 1 not found")
    assert groups == {
        value_error: 2,
        aggregates.fingerprint("KeyError", "user 1 not found"): 1,
        aggregates.fingerprint("HTTP 503", "upstream timeout"): 1,
    }
    latest = orjson.loads(r.hget(schema.stats_error_latest(hour), value_error))
    assert latest["message"] == "user 4242 not found" and latest["ts"] == now + 1 and latest["type"] == "ValueError"


def test_aggregates_can_be_turned_off(settings, r):
    store = RedisStore(make_client(settings), settings.with_overrides(console_aggregates=False))
    now = int(time.time() * 1000)
    store.write([_req(now, user_agent="curl/8"), _error(now, "boom")])
    assert not [k for k in r.scan_iter("stats:*") if k.startswith(tuple(p[:-1] for p in schema.AGGREGATE_PATTERNS))]
    assert r.exists(schema.stats_requests(schema.hour_bucket(now)))


def test_plan_is_pure_and_counts_what_it_is_given():
    now = int(time.time() * 1000)
    entries = [_req(now, user_agent="a"), _req(now, user_agent="a"), _req(now, user_agent="b")]
    out = aggregates.plan(entries)
    assert out.counts[schema.stats_agents(schema.hour_bucket(now))] == {"a": 2, "b": 1}
    assert aggregates.plan(entries).counts == out.counts
