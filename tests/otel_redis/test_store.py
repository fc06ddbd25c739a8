"""The write path against a real Redis: TTLs, trimming, round trips, uniqueness."""

from __future__ import annotations

import dataclasses
import time

import redis

from otel_redis import histogram, schema
from otel_redis.connection import make_client
from otel_redis.record import LogEntry, RequestFields
from otel_redis.store import EARLY_SEND_RECORDS, REFRESH_INTERVAL_S, RedisStore

DAY_MS = 86_400_000


def _log(ts_ms: int, body: str = "m", **kw) -> LogEntry:
    return LogEntry(timestamp_ns=ts_ms * 1_000_000, level=kw.pop("level", "INFO"), severity_number=kw.pop("sev", 9),
                    body=body, **kw)


def _req(ts_ms: int, ip: str = "10.0.0.1", status: int = 200, **kw) -> LogEntry:
    return LogEntry(timestamp_ns=ts_ms * 1_000_000, level="INFO", severity_number=9, body="req",
                    request=RequestFields(method="GET", path="/p", status_code=status, client_ip=ip, **kw))


def test_every_key_written_has_a_ttl(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    store.write([
        _log(now, component="c", event="e", level="ERROR", sev=17, trace_id="ab" * 16,
             attributes={"client_ip": "1.2.3.4", "user_id": "u", "session_id": "s", "client_id": "cid",
                         "hostname": "h.example", "oauth.event_type": "token_issued"}),
        _req(now, status=503, proxy_hostname="api.example.com", user_id="u", client_hostname="c.example",
             response_time_ms=5000, oauth_client_id="cid", session_id="s"),
    ])
    keys = r.keys("*")
    assert len(keys) > 25
    for key in keys:
        assert r.ttl(key) > 0, f"{key} has no TTL"


def test_record_ttls_follow_the_retention_classes(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    info, error, oauth, req_ok, req_err = store.write([
        _log(now), _log(now, level="ERROR", sev=17), _log(now, attributes={"oauth.event_type": "login"}),
        _req(now), _req(now, status=500),
    ])
    day = 86400
    assert 6 * day < r.ttl(info) <= 7 * day
    assert 29 * day < r.ttl(error) <= 30 * day
    assert 89 * day < r.ttl(oauth) <= 90 * day
    assert 6 * day < r.ttl(req_ok) <= 7 * day
    assert 29 * day < r.ttl(req_err) <= 30 * day
    assert 29 * day < r.ttl("idx:req:errors") <= 30 * day + REFRESH_INTERVAL_S
    assert 6 * day < r.ttl("idx:req:all") <= 7 * day + REFRESH_INTERVAL_S


def test_same_millisecond_same_ip_records_both_survive(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    keys = store.write([_req(now, ip="192.168.1.1"), _req(now, ip="192.168.1.1")])
    assert len(set(keys)) == 2
    assert r.zcard("idx:req:ip:192.168.1.1") == 2
    assert all(r.exists(k) for k in keys)


def test_hostile_values_cannot_break_or_collide_keys(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    store.write([
        _log(now, body="a", component="x:y"),
        _log(now, body="b", component="x"),
        _log(now, body="c", component="*"),
        _log(now, body="d", component="a b\nc"),
        _req(now, ip="2001:db8::1"),
    ])
    assert r.zcard("idx:log:component:x%3Ay") == 1
    assert r.zcard("idx:log:component:x") == 1
    assert r.zcard("idx:log:component:%2A") == 1
    assert r.zcard("idx:log:component:a%20b%0Ac") == 1
    assert r.zcard("idx:req:ip:2001%3Adb8%3A%3A1") == 1
    assert not any(k.startswith("idx:log:component:y") for k in r.keys("*"))


def test_members_older_than_retention_are_removed_on_write(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    (old,) = store.write([_log(now - 8 * DAY_MS, body="old")])
    pttl = r.pttl(old)  # already past retention on arrival: kept for at most a second (or gone already)
    assert pttl == -2 or 0 < pttl <= 1000
    store._refresh.clear()  # the next write to the index is due for its trim
    (new,) = store.write([_log(now, body="new")])
    assert r.zrange("idx:log:all", 0, -1) == [new]
    assert r.zrange("idx:log:level:INFO", 0, -1) == [new]


def test_one_round_trip_per_batch_and_one_expire_per_key(settings, redis_url):
    client = make_client(settings)
    store = RedisStore(client, settings)
    observer = redis.Redis.from_url(redis_url)
    observer.config_resetstat()
    now = int(time.time() * 1000)
    store.write([_log(now + i, component="same", body=str(i)) for i in range(200)])
    stats = {k.removeprefix("cmdstat_"): v["calls"] for k, v in observer.info("commandstats").items()}
    assert stats["hset"] == 200 and stats["xadd"] == 200
    # idx:log:all, level:INFO, component:same: one ZADD each per slice of EARLY_SEND_RECORDS records,
    # and one EXPIRE each (plus the stream's)
    slices = -(-200 // EARLY_SEND_RECORDS)
    assert slices > 1 and stats["zadd"] == 3 * slices
    assert stats["expire"] == 3 + 1 + 1  # three indexes, the stats hash, the stream
    client_list = [c for c in observer.client_list() if c.get("name") == "otel-redis"]
    assert client_list, "the store's connection should be named"
    # a second batch within the refresh interval re-uses the TTLs: no new EXPIREs
    observer.config_resetstat()
    store.write([_log(now + 500 + i, component="same") for i in range(50)])
    stats = {k.removeprefix("cmdstat_"): v["calls"] for k, v in observer.info("commandstats").items()}
    assert "expire" not in stats and stats["zadd"] == 3  # 50 records: one slice


def test_round_trip_through_fetch_and_recent(settings):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    keys = store.write([_log(now + i, body=f"m{i}") for i in range(5)])
    fetched = store.fetch(reversed(keys))
    assert [e.body for _, e in fetched] == ["m4", "m3", "m2", "m1", "m0"]
    recent = store.recent(schema.IDX_LOG_ALL, limit=3)
    assert [e.body for _, e in recent] == ["m2", "m3", "m4"]
    entries = store.stream_entries(schema.STREAM_LOGS)
    assert [k for _, k in entries] == keys


def test_request_stats_and_histograms(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    store.write([
        _req(now, ip="1.1.1.1", proxy_hostname="api.example.com", response_time_ms=10),
        _req(now, ip="1.1.1.2", proxy_hostname="api.example.com", response_time_ms=20, status=404),
        _req(now, ip="1.1.1.1", proxy_hostname="api.example.com", response_time_ms=1500, status=500),
    ])
    hour = schema.hour_bucket(now)
    assert r.hgetall(schema.stats_requests(hour)) == {"total": "3", "status_200": "1", "status_404": "1", "status_500": "1"}
    assert r.hgetall(schema.stats_errors(hour)) == {"404": "1", "500": "1"}
    assert r.pfcount(schema.stats_unique_ips("api.example.com", hour)) == 2
    assert r.zcard("idx:req:slow") == 1 and r.zcard("idx:req:errors") == 2
    hist = r.hgetall(schema.stats_rt("api.example.com", schema.minute_bucket(now)))
    assert histogram.count(histogram.merge([hist])) == 3
    assert histogram.error_counts([hist]) == {"4xx": 1, "5xx": 1}
    assert r.smembers(schema.stats_hosts(hour)) == {"api.example.com"}
    paths = r.hgetall(schema.stats_paths(hour))
    assert paths == {"GET /p": "2", "GET /{unmatched}": "1"}


def test_a_busy_index_is_trimmed_in_bounded_steps_one_per_batch(settings, r):
    from otel_redis.store import TRIM_STEP

    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    old = 2 * TRIM_STEP + TRIM_STEP // 2
    r.zadd("idx:log:all", {f"log:{now - 8 * DAY_MS + i}-gone": now - 8 * DAY_MS + i for i in range(old)})
    sizes = []
    for i in range(4):
        store.write([_log(now + i, body=f"new {i}")])
        sizes.append(r.zcard("idx:log:all"))
    # each batch removes at most TRIM_STEP expired members, and is due again until it caught up
    assert sizes == [old - TRIM_STEP + 1, old - 2 * TRIM_STEP + 2, 3, 4]
    store.write([_log(now + 10, body="later")])  # caught up: not due again within the minute
    assert r.zcard("idx:log:all") == 5


def test_index_script_survives_a_script_flush(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    store.write([_log(now, body="a")])
    r.script_flush()
    r.zadd("idx:log:all", {"log:1-gone": now - 8 * DAY_MS})
    store.forget_refreshes()
    # NOSCRIPT: the script is loaded again and the indexes it carried are sent again, in this write
    result = store.write_batch([_log(now + 1, body="b")])
    assert result.failed == {} and result.index_errors == 0 and result.resent >= 1
    (b,) = result.keys
    members = r.zrange("idx:log:all", 0, -1)
    assert b in members and "log:1-gone" not in members and len(members) == 2
    assert r.ttl("idx:log:all") > 0
    store.write([_log(now + 2, body="c")])
    assert r.zcard("idx:log:all") == 3


def test_histogram_increments_survive_a_script_flush(settings, r):
    """A batch's histogram increments go in one script call per hash: after SCRIPT FLUSH (or a
    restart) the write loads the script again and resends them, so no request goes uncounted."""
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    store.write([_req(now, proxy_hostname="a.example", response_time_ms=10)])
    r.script_flush()
    result = store.write_batch([_req(now + 1, proxy_hostname="a.example", response_time_ms=10, status=500)])
    assert result.failed == {} and result.index_errors == 0 and result.resent >= 1
    ten = str(histogram.bucket_of(10))
    for key in (schema.stats_rt("a.example", schema.minute_bucket(now)), schema.stats_rt_all(schema.hour_bucket(now))):
        assert r.hget(key, ten) == "2" and r.hget(key, "5xx") == "1"


def test_length_trim_keeps_what_a_consumer_group_has_not_read(settings, r):
    cfg = settings.with_overrides(stream_maxlen=10, stream_unread_maxlen=40)
    store = RedisStore(make_client(cfg), cfg)
    now = int(time.time() * 1000)

    def write(n: int, start: int) -> int:
        """Write ``n`` batches of one; the unread entries their trims removed."""
        trimmed = 0
        for i in range(n):
            store.forget_refreshes()  # every batch is due for its stream trim
            trimmed += store.write_batch([_log(now + start + i, body=f"m{start + i}")]).unread_trimmed
        return trimmed

    # no consumer group: the stream is cut to the length cap (approximately: whole nodes of 100 go)
    write(250, 0)
    assert r.xlen("stream:logs") <= 100
    r.delete("stream:logs")
    r.xgroup_create("stream:logs", "forwarder", id="0", mkstream=True)
    write(25, 1000)
    assert r.xlen("stream:logs") == 25  # nothing read yet: nothing trimmed
    read = r.xreadgroup("forwarder", "c1", {"stream:logs": ">"}, count=15)[0][1]
    r.xack("stream:logs", "forwarder", *[sid for sid, _ in read[:10]])  # 10 acknowledged, 5 pending
    assert write(1, 2000) == 0
    first_left = r.xrange("stream:logs", count=1)[0][0]
    assert first_left == read[10][0]  # consumed entries went, the oldest pending one stayed
    assert r.xlen("stream:logs") == 16
    # a forwarder that stays away: the unread hard cap trims the oldest unread entries, counted
    assert write(40, 3000) == 16
    assert r.xlen("stream:logs") == 40


def test_a_trace_is_indexed_by_hour_and_each_hour_expires_after_its_last_possible_member(settings, r):
    from otel_redis.store import trace_keys

    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.HOUR_MS
    earlier = now - now % hour - 1  # the last millisecond of the previous hour
    trace = "ab" * 16
    keys = store.write([
        _log(earlier, body="before", trace_id=trace),
        dataclasses.replace(_req(now), trace_id=trace),
        _log(now + 1, body="other", trace_id="cd" * 16),
        _log(now + 2, body="untraced"),
    ])
    assert trace_keys(r, trace) == keys[:2]
    assert trace_keys(r, "cd" * 16) == [keys[2]]
    old_index, new_index = schema.idx_trace(schema.hour_bucket(earlier)), schema.idx_trace(schema.hour_bucket(now))
    assert old_index != new_index
    assert r.zrange(old_index, 0, -1) == [f"{trace}:{earlier:013d}:{keys[0]}"]
    assert set(r.zrange(new_index, 0, -1)) == {f"{trace}:{now:013d}:{keys[1]}", f"{'cd' * 16}:{now + 1:013d}:{keys[2]}"}
    assert r.zscore(new_index, f"{trace}:{now:013d}:{keys[1]}") == 0
    # an hour's index lives until its last millisecond is past retention (plus the refresh margin)
    for index, end_ms in ((old_index, earlier + 1), (new_index, now - now % hour + hour)):
        expected = end_ms / 1000 + settings.retention.requests + REFRESH_INTERVAL_S - time.time()
        assert abs(r.ttl(index) - expected) <= 2, index
    # an hour already past retention is not kept (its members' records are gone too)
    store.write([_log(now - 9 * DAY_MS, body="late", trace_id=trace)])
    assert r.pttl(schema.idx_trace(schema.hour_bucket(now - 9 * DAY_MS))) in (-2, *range(1, 1001))


def test_response_time_histograms_per_minute_hour_and_hostname(settings, r):
    """One batch over two minutes and two hostnames (and a request without one): each minute and
    hour histogram, overall and per hostname, counts exactly its requests, errors by class."""
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    start = now - now % schema.HOUR_MS + 60_000 * (now % schema.HOUR_MS // 60_000 // 2)  # a minute start, same hour
    first, second = start, start + 60_000
    batch = [
        _req(first, proxy_hostname="a.example", response_time_ms=10),
        _req(first + 1, proxy_hostname="b.example", response_time_ms=10, status=503),
        _req(first + 2, proxy_hostname="a.example", response_time_ms=250, status=404),
        _req(second, proxy_hostname="a.example", response_time_ms=10),
        _req(second + 1, proxy_hostname="", response_time_ms=10),
    ]
    store.write(batch)

    def hist(key: str) -> tuple[int, dict[str, int]]:
        data = r.hgetall(key)
        return histogram.count(histogram.merge([data])), histogram.error_counts([data])

    m1, m2, hour = schema.minute_bucket(first), schema.minute_bucket(second), schema.hour_bucket(first)
    assert hist(schema.stats_rt_all(m1)) == (3, {"4xx": 1, "5xx": 1})
    assert hist(schema.stats_rt_all(m2)) == (2, {"4xx": 0, "5xx": 0})
    assert hist(schema.stats_rt_all(hour)) == (5, {"4xx": 1, "5xx": 1})
    assert hist(schema.stats_rt("a.example", m1)) == (2, {"4xx": 1, "5xx": 0})
    assert hist(schema.stats_rt("a.example", hour)) == (3, {"4xx": 1, "5xx": 0})
    assert hist(schema.stats_rt("b.example", hour)) == (1, {"4xx": 0, "5xx": 1})
    ten = str(histogram.bucket_of(10))
    assert r.hget(schema.stats_rt_all(hour), ten) == "4"
    for key in (schema.stats_rt_all(m1), schema.stats_rt("a.example", m2)):
        assert 0 < r.ttl(key) <= schema.RT_MINUTE_TTL_S
    assert r.ttl(schema.stats_rt_all(hour)) > schema.RT_MINUTE_TTL_S


def test_a_late_hostname_patches_live_records_even_after_redis_lost_its_scripts(settings, r):
    """patch_hostname runs its scripts through redis-py's Script: a SCRIPT FLUSH (or a restart)
    between two calls is answered NOSCRIPT, and the script is loaded and run again."""
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    keys = store.write([_req(now + i) for i in range(6)])
    r.delete(keys[0])  # expired meanwhile: skipped, not recreated
    assert store.patch_hostname("h1.example", [(k, now + i) for i, k in enumerate(keys[:3])]) == 2
    r.script_flush()
    store.forget_refreshes()  # the index's trim script is due again too
    assert store.patch_hostname("h1.example", [(k, now + i) for i, k in enumerate(keys[3:], 3)]) == 3
    assert r.exists(keys[0]) == 0
    assert all(r.hget(k, "client_hostname") == "h1.example" for k in keys[1:])
    assert set(r.zrange(schema.idx_req_fqdn("h1.example"), 0, -1)) == set(keys[1:])
    assert r.ttl(schema.idx_req_fqdn("h1.example")) > 0
