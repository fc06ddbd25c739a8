"""log_request / log_response, OAuth tracking and the request write path, in process on a real Redis."""

from __future__ import annotations

import json
import time

import otel_redis
from otel_redis import dns, log_oauth_activity, log_request, log_response, schema, track_oauth_flow
from otel_redis.record import LogEntry, RequestFields, normalize_trace_id
from otel_redis.store import RedisStore, trace_keys


def _requests(r):
    return [(k, r.hgetall(k)) for k in r.zrange(schema.IDX_REQ_ALL, 0, -1)]


def test_log_request_and_log_response_make_one_record(pipeline, r):
    tid = log_request("get", "/api/health?token=abc&x=1", "192.168.1.1", "api.example.com",
                      trace_id="req-123", user_id="github-123",
                      headers={"User-Agent": "curl/8", "Referer": "https://example.com/?code=zzz"})
    assert tid == normalize_trace_id("req-123")
    log_response(200, 45.3, trace_id="req-123", bytes_sent=1234)
    assert otel_redis.force_flush()
    ((key, rec),) = _requests(r)
    assert key.endswith(":192.168.1.1")
    assert rec["method"] == "GET" and rec["path"] == "/api/health" and rec["query"] == "token=%2A%2A%2A&x=1"
    assert rec["client_ip"] == "192.168.1.1" and rec["proxy_hostname"] == "api.example.com"
    assert rec["status_code"] == "200" and rec["response_time_ms"] == "45.3" and rec["bytes_sent"] == "1234"
    assert rec["user_id"] == "github-123" and rec["user_agent"] == "curl/8"
    assert rec["referrer"] == "https://example.com/?code=%2A%2A%2A"
    assert rec["trace_id"] == tid
    assert r.zcard("idx:req:ip:192.168.1.1") == 1
    assert trace_keys(r, tid) == [key]


def test_log_request_starts_the_reverse_lookup_with_the_configured_sinks_settings(pipeline):
    """request_log takes the settings from the sink it hands records to (it does not import the
    pipeline): with reverse DNS on there (the default), the first request creates the resolver."""
    dns.install(None)
    try:
        log_request("GET", "/", "127.0.0.1", trace_id="req-dns")
        assert dns.current() is not None
        log_response(200, 1.0, trace_id="req-dns")
    finally:
        dns.install(None)


def test_log_response_without_trace_id_uses_the_returned_one_and_times_itself(pipeline, r):
    tid = log_request("POST", "/token", "not an ip", "bad host name")
    time.sleep(0.01)
    log_response(502, trace_id=tid, error=ConnectionError("upstream down"))
    otel_redis.force_flush()
    ((key, rec),) = _requests(r)
    assert rec.get("client_ip", "") == "" and rec.get("proxy_hostname", "") == ""
    assert float(rec["response_time_ms"]) >= 10
    assert rec["error"] == "ConnectionError: upstream down"
    assert r.zscore(schema.IDX_REQ_ERRORS, key) is not None
    assert not list(r.scan_iter("idx:req:ip:*"))


def test_two_requests_from_one_ip_in_the_same_millisecond_are_both_stored(settings, r):
    store = RedisStore(otel_redis.connection.make_client(settings), settings)
    ts = time.time_ns()
    entries = [
        LogEntry(ts, "INFO", 9, "GET /a 200", request=RequestFields("GET", "/a", 200, client_ip="10.0.0.1")),
        LogEntry(ts, "INFO", 9, "GET /b 200", request=RequestFields("GET", "/b", 200, client_ip="10.0.0.1")),
    ]
    keys = store.write(entries) + store.write(entries[:1])
    assert len(set(keys)) == 3
    assert sorted(r.hget(k, "path") for k in keys) == ["/a", "/a", "/b"]
    assert r.zcard("idx:req:ip:10.0.0.1") == 3


def test_client_controlled_values_are_bounded_in_keys(settings, r):
    store = RedisStore(otel_redis.connection.make_client(settings), settings.with_overrides(max_hostnames=2))
    ts = time.time_ns()
    entries = [
        LogEntry(ts, "INFO", 9, "x", request=RequestFields(
            "BREW" if i % 2 else "GET", f"/files/{i}", 200, client_ip="999.1.1.1" if i == 0 else "10.0.0.2",
            proxy_hostname=f"h{i}.example.com"))
        for i in range(5)
    ]
    store.write(entries)
    hosts = sorted(r.scan_iter("idx:req:host:*"))
    assert hosts == ["idx:req:host:_OTHER", "idx:req:host:h0.example.com", "idx:req:host:h1.example.com"]
    assert sorted(r.scan_iter("idx:req:method:*")) == ["idx:req:method:GET", "idx:req:method:_OTHER"]
    assert sorted(r.scan_iter("idx:req:ip:*")) == ["idx:req:ip:10.0.0.2"]
    assert sorted(r.scan_iter("idx:req:path:*")) == [schema.idx_req_path("GET", "/files/{id}"),
                                                     schema.idx_req_path("_OTHER", "/files/{id}")]


def test_oauth_activity_is_indexed_by_reference_and_masked(pipeline, r):
    log_oauth_activity("token_issued", "client-1", "github-123",
                       {"scope": "read", "access_token": "AT-SECRET", "nested": {"client_secret": "CS"}})
    otel_redis.force_flush()
    (key,) = r.zrange("idx:oauth:token_issued", 0, -1)
    assert key.startswith("log:")
    assert r.zrange("idx:oauth:client:client-1", 0, -1) == [key]
    assert r.zrange("idx:oauth:user:github-123", 0, -1) == [key]
    rec = r.hgetall(key)
    assert rec["event"] == "token_issued" and rec["component"] == "oauth"
    details = json.loads(rec["attrs"])["oauth.details"]
    assert details == {"scope": "read", "access_token": "***", "nested": {"client_secret": "***"}}
    assert r.ttl(key) > 30 * 86400  # OAuth retention (90 d)
    assert 30 * 86400 < r.ttl("idx:oauth:token_issued") <= 90 * 86400 + 60


def test_oauth_flow_is_a_list_of_record_keys_with_a_ttl(pipeline, r):
    track_oauth_flow("sess-1", "authorize", {"client_id": "c1", "state": "ST-SECRET"})
    track_oauth_flow("sess-1", "callback", {"code": "CODE-SECRET"})
    track_oauth_flow("sess-1", "token", {})
    otel_redis.force_flush()
    keys = r.lrange("oauth:flow:sess-1", 0, -1)
    assert len(keys) == 3
    steps = [json.loads(r.hget(k, "attrs"))["oauth.flow.step"] for k in keys]
    assert steps == ["authorize", "callback", "token"]
    assert 0 < r.ttl("oauth:flow:sess-1") <= 3600
    assert "SECRET" not in json.dumps([r.hgetall(k) for k in keys])
    assert r.zcard("idx:log:session:sess-1") == 3


def test_percentiles_over_a_window_sum_minute_and_hour_histograms(settings, r):
    store = RedisStore(otel_redis.connection.make_client(settings), settings)
    now_ns = time.time_ns()
    entries = [
        LogEntry(now_ns - i * 1_000_000, "INFO", 9, "x",
                 request=RequestFields("GET", "/", 200, proxy_hostname="api.example.com", response_time_ms=float(ms)))
        for i, ms in enumerate(range(1, 101))
    ]
    store.write(entries)
    now_ms = now_ns // 1_000_000
    summary = store.response_time_percentiles(now_ms - 3_600_000, now_ms, "api.example.com")
    assert summary["count"] == 100
    assert abs(summary["p50"] - 50) <= 1 and abs(summary["p95"] - 95) <= 1 and abs(summary["p99"] - 99) <= 1
    day = store.response_time_percentiles(now_ms - 86_400_000, now_ms)
    assert day["count"] == 100
    assert store.response_time_percentiles(now_ms - 3_600_000, now_ms, "other.example.com")["p50"] is None


def test_rt_window_keys_use_hours_inside_and_minutes_at_the_edges():
    hour = 3_600_000
    now = 1_800_000_000_000 // hour * hour + 30 * 60_000
    keys = schema.rt_window_keys(now - 3 * hour, now, None, now)
    hours = [k for k in keys if len(k.rsplit(":", 1)[-1]) == 2]  # ...:YYYYMMDD:HH, not ...:HHMM
    assert len(keys) == 30 + 2 + 31  # 30 minutes, 2 whole hours, 31 minutes
    assert len(hours) == 2


def test_long_shared_values_are_stored_once_and_resolved_on_read(settings, r):
    store = RedisStore(otel_redis.connection.make_client(settings), settings)
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
    resource = {"service.name": "svc", "service.instance.id": "x" * 80}
    entries = [LogEntry(time.time_ns(), "INFO", 9, "x", resource=resource,
                        request=RequestFields("GET", "/", 200, client_ip="10.0.0.1", user_agent=ua)) for _ in range(3)]
    keys = store.write(entries)
    raw = r.hgetall(keys[0])
    assert "user_agent" not in raw and "resource" not in raw
    assert r.get(schema.value_key(raw["user_agent_ref"])) == ua
    assert len(list(r.scan_iter("val:*"))) == 2  # one per distinct value, not per record
    assert r.object("encoding", keys[0]) in ("listpack", "ziplist")  # the compact hash encoding
    reader = RedisStore(otel_redis.connection.make_client(settings), settings)  # knows no value yet
    ((_k, entry), *_rest) = reader.fetch(keys)
    assert entry.request.user_agent == ua and entry.resource == resource
    assert set(reader.values) == {raw["user_agent_ref"], raw["resource_ref"]}  # fetched once, kept by this reader
    assert not store.values  # the writer's reader cache is its own: writing filled nothing hidden
