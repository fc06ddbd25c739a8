"""instrument_app end to end: a real FastAPI app under uvicorn, real HTTP, real Redis.

The app (tests/otel_redis/request_app.py) trusts forwarding headers from 127.0.0.1 only; requests
sent from 127.0.0.2 (another loopback source address) come from an untrusted peer.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import time

import httpx
import pytest
import redis
from websockets.sync.client import connect as ws_connect

from otel_redis import schema
from otel_redis.config import load_settings
from otel_redis.store import RedisStore, trace_keys
from otel_redis.histogram import bucket_of
from tests.servers import free_port, run_service, uvicorn_argv
from tests.waiting import wait_until

pytestmark = [pytest.mark.xdist_group("request_app"), pytest.mark.e2e]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def service(redis_server, tmp_path_factory):
    env = {
        "REDIS_URL": redis_server.url,
        "OTEL_REDIS_TRUSTED_PROXIES": "127.0.0.1/32",
        "OTEL_REDIS_BATCH_DELAY_MS": "10",
        "OTEL_REDIS_SLOW_REQUEST_MS": "150",
        "OTEL_SERVICE_NAME": "request-app",
    }
    port = free_port()
    with run_service(
        # uvicorn's own proxy-header handling off: the middleware alone decides whom to trust
        [*uvicorn_argv("tests.otel_redis.request_app:app"), "--no-proxy-headers"],
        env=env,
        port=port,
        tmp_path=tmp_path_factory.mktemp("request-app"),
        name="request-app",
    ) as svc:
        yield svc


def client_from(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10)


def request_records(r: redis.Redis, trace_id: str) -> list[tuple[str, dict[str, str]]]:
    keys = trace_keys(r, trace_id)
    return [(k, r.hgetall(k)) for k in keys if schema.is_request_key(k)]


def one_request(r: redis.Redis, trace_id: str) -> tuple[str, dict[str, str]]:
    recs = wait_until(lambda: request_records(r, trace_id), message=f"the request record of trace {trace_id}")
    assert len(recs) == 1, recs
    return recs[0]


def test_every_field_index_and_stat_of_a_request(service, r, redis_url):
    traceparent = f"00-{TRACE}-{PARENT}-01"
    before_ms = int(time.time() * 1000)
    with client_from("127.0.0.1") as c:
        resp = c.get(
            service.base_url + "/users/42?x=1",
            headers={
                "traceparent": traceparent,
                "X-Forwarded-For": "198.51.100.77, 203.0.113.9",
                "Host": "api.example.com",
                "User-Agent": "Mozilla/5.0 (test)",
                "Referer": "https://example.com/start?page=1",
            },
        )
    assert resp.status_code == 200
    assert resp.json()["trace_id"] == TRACE  # the app saw the incoming trace
    key, rec = one_request(r, TRACE)
    rec = wait_until(lambda: r.hgetall(key) if r.hget(key, "client_hostname") else None, message="the reverse-DNS name")
    assert key.startswith(f"req:") and key.endswith(":203.0.113.9")
    ts = dt.datetime.fromisoformat(rec["timestamp"].replace("Z", "")[:26]).replace(tzinfo=dt.timezone.utc)
    assert before_ms - 1000 <= ts.timestamp() * 1000 <= time.time() * 1000
    assert rec["client_ip"] == "203.0.113.9"
    assert rec["client_hostname"] == "host-203-0-113-9.test"
    assert rec["proxy_hostname"] == "api.example.com"
    assert rec["method"] == "GET"
    assert rec["path"] == "/users/42"
    assert rec["query"] == "x=1"
    assert rec["route"] == "/users/{user_id}"
    assert rec["status_code"] == "200"
    assert float(rec["response_time_ms"]) > 0
    assert rec["user_id"] == "user-42"
    assert rec["user_agent"] == "Mozilla/5.0 (test)"
    assert rec["referrer"] == "https://example.com/start?page=1"
    assert int(rec["bytes_sent"]) == len(resp.content)
    assert rec.get("error", "") == ""
    assert rec["trace_id"] == TRACE
    assert len(rec["span_id"]) == 16 and rec["span_id"] != PARENT
    # what the request fields already say is left out of the hash, and restored on reading
    assert not {"level", "body", "component", "scope"} & rec.keys()
    # the resource JSON is shared: the record references val:{digest}, readers resolve it
    assert json.loads(r.get(schema.value_key(rec["resource_ref"])))["service.name"] == "request-app"
    assert 0 < r.ttl(schema.value_key(rec["resource_ref"])) <= 90 * 86400 + 60
    store = RedisStore(redis.Redis.from_url(redis_url), load_settings({}))
    ((_k, entry),) = store.fetch([key])
    assert entry.resource["service.name"] == "request-app"
    assert (entry.level, entry.body, entry.component, entry.scope_name) == ("INFO", "GET /users/42 200", "http", "otel_redis")

    # indexes: the record key, scored by its time
    score = r.zscore(schema.IDX_REQ_ALL, key)
    assert score is not None and abs(score - ts.timestamp() * 1000) < 2
    for index in (
        "idx:req:ip:203.0.113.9",
        "idx:req:fqdn:host-203-0-113-9.test",
        "idx:req:host:api.example.com",
        "idx:req:user:user-42",
        "idx:req:status:200",
        "idx:req:method:GET",
        schema.idx_req_path("GET", "/users/{user_id}"),
    ):
        assert r.zscore(index, key) is not None, index
        assert 0 < r.ttl(index) <= 7 * 86400 + 60, index
    assert r.zscore(schema.IDX_REQ_ERRORS, key) is None
    assert r.zscore(schema.IDX_REQ_SLOW, key) is None
    assert 0 < r.ttl(key) <= 7 * 86400
    # the application log emitted inside the handler carries the same trace
    logs = [k for k in trace_keys(r, TRACE) if k.startswith("log:")]
    assert len(logs) == 1 and r.hget(logs[0], "body") == "loading user"
    # the live stream references the record
    assert any(f.get("k") == key for _id, f in r.xrange("stream:requests"))

    # stats
    hour = schema.hour_bucket(int(ts.timestamp() * 1000))
    minute = schema.minute_bucket(int(ts.timestamp() * 1000))
    assert r.hget(f"stats:requests:{hour}", "total") == "1"
    assert r.hget(f"stats:requests:{hour}", "status_200") == "1"
    assert r.pfcount(f"stats:unique_ips:api.example.com:{hour}") == 1
    assert r.hget(f"stats:paths:{hour}", "GET /users/{user_id}") == "1"
    bucket = str(bucket_of(float(rec["response_time_ms"])))
    for rt_key in (f"stats:rt:api.example.com:{minute}", f"stats:rt:api.example.com:{hour}",
                   f"stats:rt_all:{minute}", f"stats:rt_all:{hour}"):
        assert r.hgetall(rt_key) == {bucket: "1"}, rt_key
        assert r.ttl(rt_key) > 0
    assert not r.exists(f"stats:errors:{hour}")


def test_trace_id_without_traceparent_is_new_and_seen_by_the_app(service, r):
    with client_from("127.0.0.1") as c:
        first = c.get(service.base_url + "/trace").json()["trace_id"]
        second = c.get(service.base_url + "/trace").json()["trace_id"]
    assert first != second and len(first) == 32 and int(first, 16)
    _key, rec = one_request(r, first)
    assert rec["trace_id"] == first


def test_spoofed_forwarded_for_is_ignored_from_an_untrusted_peer(service, r):
    with client_from("127.0.0.2") as c:
        tid = c.get(service.base_url + "/trace", headers={"X-Forwarded-For": "1.2.3.4",
                                                           "Forwarded": "for=5.6.7.8"}).json()["trace_id"]
    key, rec = one_request(r, tid)
    assert rec["client_ip"] == "127.0.0.2"
    assert key.endswith(":127.0.0.2")
    assert not r.exists("idx:req:ip:1.2.3.4") and not r.exists("idx:req:ip:5.6.7.8")


def test_forwarded_headers_are_honoured_from_a_trusted_proxy(service, r):
    with client_from("127.0.0.1") as c:
        t1 = c.get(service.base_url + "/trace",
                   headers={"Forwarded": 'for="[2001:db8:cafe::17]:4711";host=shop.example.com'}).json()["trace_id"]
        t2 = c.get(service.base_url + "/trace", headers={"X-Forwarded-For": "not-an-ip"}).json()["trace_id"]
        t3 = c.get(service.base_url + "/trace", headers={"Host": "evil host{x}*:99x"}).json()["trace_id"]
    _k, rec = one_request(r, t1)
    assert rec["client_ip"] == "2001:db8:cafe::17"
    assert rec["proxy_hostname"] == "shop.example.com"
    assert r.zcard("idx:req:ip:2001%3Adb8%3Acafe%3A%3A17") == 1
    _k, rec = one_request(r, t2)
    assert rec["client_ip"] == "127.0.0.1"  # garbage stops the walk at the trusted proxy
    _k, rec = one_request(r, t3)
    assert rec.get("proxy_hostname", "") == ""  # an invalid Host never becomes a key


def test_secrets_are_masked(service, r):
    with client_from("127.0.0.1") as c:
        resp = c.get(
            service.base_url + "/items?page=2&access_token=AT-SECRET&code=CODE-SECRET&state=ST-SECRET"
                               "&client_secret=CS-SECRET&password=PW-SECRET",
            headers={
                "Authorization": "Bearer BEARER-SECRET",
                "Cookie": "session=COOKIE-SECRET",
                "X-Api-Key": "APIKEY-SECRET",
                "X-Request-Id": "req-7",
                "Referer": "https://app.example.com/cb?code=REF-SECRET&ok=1",
            },
        )
    tid = resp.json()["trace_id"]
    key, rec = one_request(r, tid)
    assert rec["query"] == "page=2&access_token=%2A%2A%2A&code=%2A%2A%2A&state=%2A%2A%2A&client_secret=%2A%2A%2A&password=%2A%2A%2A"
    assert rec["referrer"] == "https://app.example.com/cb?code=%2A%2A%2A&ok=1"
    attrs = json.loads(rec["attrs"])
    assert attrs["http.request.header.authorization"] == "***"
    assert attrs["http.request.header.cookie"] == "***"
    assert attrs["http.request.header.x-api-key"] == "***"
    assert attrs["http.request.header.x-request-id"] == "req-7"
    assert attrs["http.response.header.set-cookie"] == "***"
    everything = json.dumps(rec)
    for secret in ("AT-SECRET", "CODE-SECRET", "ST-SECRET", "CS-SECRET", "PW-SECRET", "BEARER-SECRET",
                   "COOKIE-SECRET", "APIKEY-SECRET", "REF-SECRET", "s3cr3t-session-value"):
        assert secret not in everything


def test_streaming_response_is_timed_to_its_last_chunk(service, r):
    with client_from("127.0.0.1") as c:
        resp = c.get(service.base_url + "/stream", headers={"traceparent": f"00-{'1' * 32}-{PARENT}-01"})
    assert resp.status_code == 200
    _k, rec = one_request(r, "1" * 32)
    assert int(rec["bytes_sent"]) == len(resp.content) == 5 * 800
    assert rec["status_code"] == "200" and rec.get("error", "") == ""


def test_exception_is_logged_as_500_with_the_error(service, r):
    with client_from("127.0.0.1") as c:
        resp = c.get(service.base_url + "/boom", headers={"traceparent": f"00-{'2' * 32}-{PARENT}-01"})
    assert resp.status_code == 500
    key, rec = one_request(r, "2" * 32)
    assert rec["status_code"] == "500"
    assert rec["error"] == "RuntimeError: kaboom"
    assert "level" not in rec and schema.decode_entry(rec).level == "ERROR"  # the status says it
    assert r.zscore(schema.IDX_REQ_ERRORS, key) is not None
    assert r.zscore("idx:req:status:500", key) is not None
    hour = schema.hour_bucket(schema.record_time_ms(key))
    assert r.hget(f"stats:errors:{hour}", "500") == "1"
    assert r.ttl(key) > 7 * 86400  # error records are kept for the errors retention


def test_unmatched_paths_share_one_index_key(service, r):
    with client_from("127.0.0.1") as c:
        for i in range(5):
            assert c.get(service.base_url + f"/scanner/{i}/wp-admin.php").status_code == 404
    wait_until(lambda: r.zcard("idx:req:status:404") == 5, message="five 404 records")
    assert r.zcard(schema.idx_req_path("GET", "/{unmatched}")) == 5
    assert list(r.scan_iter("idx:req:path:*")) == [schema.idx_req_path("GET", "/{unmatched}")]


def test_slow_request_is_indexed(service, r):
    with client_from("127.0.0.1") as c:
        c.get(service.base_url + "/slow", headers={"traceparent": f"00-{'3' * 32}-{PARENT}-01"})
    key, rec = one_request(r, "3" * 32)
    assert float(rec["response_time_ms"]) >= 150
    assert r.zscore(schema.IDX_REQ_SLOW, key) is not None


def test_client_disconnect_mid_stream_is_recorded(service, r):
    with client_from("127.0.0.1") as c:
        with c.stream("GET", service.base_url + "/endless", headers={"traceparent": f"00-{'4' * 32}-{PARENT}-01"}) as resp:
            assert next(resp.iter_bytes())
    key, rec = one_request(r, "4" * 32)
    assert rec["status_code"] == "200"
    assert "disconnect" in rec["error"]
    assert 0 < int(rec["bytes_sent"]) < 6000 * 1024


def test_websocket_connection_is_one_record(service, r):
    url = service.base_url.replace("http://", "ws://") + "/ws"
    with ws_connect(url, additional_headers={"traceparent": f"00-{'5' * 32}-{PARENT}-01"}) as ws:
        ws.send("hello")
        assert ws.recv() == "echo:hello"
    _k, rec = one_request(r, "5" * 32)
    assert rec["method"] == "GET" and rec["path"] == "/ws" and rec["route"] == "/ws"
    assert rec["status_code"] == "101"
    assert rec["bytes_sent"] == str(len("echo:hello"))


def test_excluded_paths_are_not_logged(service, r):
    with client_from("127.0.0.1") as c:
        c.get(service.base_url + "/healthz")
        tid = c.get(service.base_url + "/trace").json()["trace_id"]
    one_request(r, tid)
    assert r.zcard(schema.IDX_REQ_ALL) == 1


def test_many_concurrent_requests_from_one_ip_are_all_stored(service, r):
    import concurrent.futures

    def hit(_i: int) -> int:
        with client_from("127.0.0.1") as c:
            return c.get(service.base_url + "/trace").status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(hit, range(40))) == [200] * 40
    wait_until(lambda: r.zcard("idx:req:ip:127.0.0.1") == 40, message="40 records")
    keys = r.zrange("idx:req:ip:127.0.0.1", 0, -1)
    assert len(set(keys)) == 40 and all(r.exists(k) for k in keys)


def test_failing_or_stuck_reverse_dns_does_not_hold_requests(service, r):
    """127.0.0.3's lookup blocks until released: its requests complete and are stored meanwhile;
    the late answer then patches the stored records and the fqdn index. 127.0.0.4's lookup fails:
    the hostname stays empty."""
    with client_from("127.0.0.3") as c:
        tids = [c.get(service.base_url + "/trace").json()["trace_id"] for _ in range(3)]
    keys = [one_request(r, t)[0] for t in tids]
    stats = httpx.get(service.base_url + "/_test/dns").json()
    assert stats["pending"] >= 1  # the resolver is still stuck: the requests did not wait for it
    assert all(r.hget(k, "client_hostname") in (None, "") for k in keys)
    assert not r.exists("idx:req:fqdn:client-3.test")

    httpx.post(service.base_url + "/_test/release-dns")
    wait_until(lambda: r.zcard("idx:req:fqdn:client-3.test") == 3, message="the late hostname patch")
    assert all(r.hget(k, "client_hostname") == "client-3.test" for k in keys)
    assert set(r.zrange("idx:req:fqdn:client-3.test", 0, -1)) == set(keys)

    with client_from("127.0.0.4") as c:
        tid = c.get(service.base_url + "/trace").json()["trace_id"]
    key, _rec = one_request(r, tid)
    wait_until(lambda: httpx.get(service.base_url + "/_test/dns").json()["failed"] >= 1, message="the failed lookup")
    assert r.hget(key, "client_hostname") in (None, "")
    assert not list(r.scan_iter("idx:req:fqdn:*127*"))


def test_loopback_source_addresses_are_usable():
    """The tests above rely on binding 127.0.0.2-4 as source addresses (Linux routes all of 127/8)."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
    finally:
        s.close()
