"""Metrics, path ranking and alerts through the real service (``otel-redis serve`` subprocess, real
Redis, real HTTP): /metrics parsed with the Prometheus text parser and checked against the records
written; an alert delivered to a real webhook receiver that first fails; the alerts CLI."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from otel_redis import schema
from otel_redis.config import load_settings
from otel_redis.store import RedisStore
from tests.servers import run_service
from tests.traffic import request_entry, spread, write
from tests.webhook_sink import webhook_sink
from tests.waiting import wait_until

READ = {"authorization": "Bearer read-token"}
SCRAPE = {"authorization": "Bearer scrape-token"}
OTEL_REDIS = os.path.join(os.path.dirname(sys.executable), "otel-redis")


@pytest.fixture(scope="module")
def sink():
    with webhook_sink(fail_first=2) as s:
        yield s


@pytest.fixture(scope="module")
def service(redis_server, tmp_path_factory, sink):
    tmp = tmp_path_factory.mktemp("analytics")
    env = {
        "REDIS_URL": redis_server.url,
        "OTEL_REDIS_DATA_DIR": str(tmp / "data"),
        "OTEL_REDIS_API_TOKENS": "read-token",
        "OTEL_REDIS_METRICS_TOKEN": "scrape-token",
        "OTEL_REDIS_METRICS_WINDOWS": "1m,5m",
        "OTEL_REDIS_ALERTS_ENABLED": "true",
        "OTEL_REDIS_ALERT_INTERVAL_S": "0.3",
        "OTEL_REDIS_ALERT_WEBHOOKS": sink.url,
        "OTEL_REDIS_ALERT_WEBHOOK_BACKOFF_S": "0.05",
        "OTEL_REDIS_ALERT_ERROR_RATE_THRESHOLD": "0.2",
        "OTEL_REDIS_ALERT_ERROR_RATE_MIN_REQUESTS": "20",
        "OTEL_REDIS_ALERT_ERROR_RATE_PER_HOSTNAME": "false",
        "OTEL_REDIS_ALERT_LATENCY_ENABLED": "false",
        "OTEL_REDIS_ALERT_TRAFFIC_ENABLED": "false",
        "OTEL_REDIS_BATCH_DELAY_MS": "20",
    }
    argv = [OTEL_REDIS, "serve", "--port", "{port}"]
    with run_service(argv, env=env, tmp_path=tmp, name="serve") as svc:
        yield svc


@pytest.fixture
def store(r, redis_server) -> RedisStore:
    settings = load_settings({}).with_overrides(redis_url=redis_server.url)
    return RedisStore(redis.Redis.from_url(redis_server.url), settings)


def _get(service, path: str, headers=READ, **params) -> httpx.Response:
    return httpx.get(service.base_url + path, headers=headers, params=params, timeout=30)


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(fam, **labels) -> float:
    hits = [s.value for s in fam.samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (fam.name, labels, fam.samples)
    return hits[0]


def _exact_pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def _recent_traffic(store, seed: int = 3):
    """Requests over the last 30 s (inside every window), two hostnames, known response times."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    entries = [
        request_entry(
            t, host=("api.example.com", "www.example.com")[i % 3 == 0], status=404 if i % 10 == 0 else 200,
            rt_ms=round(rng.lognormvariate(3, 1), 3), ip=f"198.51.100.{i % 37}",
            path=f"/orders/{i}" if i % 2 else "/health",
        )
        for i, t in enumerate(spread(now - 30_000, now - 1000, 300))
    ]
    write(store, entries)
    return entries


def test_metrics_and_json_need_tokens(service, r):
    assert _get(service, "/metrics", headers={}).status_code == 401
    assert _get(service, "/metrics", headers={"authorization": "Bearer nope"}).status_code == 401
    assert _get(service, "/metrics", headers=SCRAPE).status_code == 200
    assert _get(service, "/metrics", headers=READ).status_code == 200
    assert _get(service, "/logs/metrics", headers=SCRAPE).status_code == 401  # scrape-only token
    assert _get(service, "/logs/metrics").status_code == 200
    assert _get(service, "/logs/alerts", headers={}).status_code == 401


def test_prometheus_metrics_match_the_stored_records(service, store, r):
    entries = _recent_traffic(store)
    r.xgroup_create(schema.STREAM_REQUESTS, "forwarder", id="0")
    r.xreadgroup("forwarder", "c1", {schema.STREAM_REQUESTS: ">"}, count=100)
    before = _get(service, "/healthz").json()["pipeline"]
    resp = _get(service, "/metrics", headers=SCRAPE)
    after = _get(service, "/healthz").json()["pipeline"]
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    fams = _families(resp.text)
    for window in ("60", "300"):
        for host in ("", "api.example.com", "www.example.com"):
            mine = [e.request for e in entries if not host or e.request.proxy_hostname == host]
            labels = {"window": window, "hostname": host}
            assert _value(fams["otel_redis_window_requests"], **labels) == len(mine)
            errors = sum(q.status_code >= 400 for q in mine)
            assert _value(fams["otel_redis_error_rate"], **labels) == pytest.approx(errors / len(mine))
            for q in (50, 95, 99):
                got = _value(fams["otel_redis_response_time_ms"], quantile=str(q / 100), **labels)
                want = _exact_pct([m.response_time_ms for m in mine], q)
                assert abs(got - want) <= 0.01 * want, (host, q, got, want)
            ips = len({m.client_ip for m in mine})
            assert abs(_value(fams["otel_redis_unique_visitors"], **labels) - ips) <= 1
            assert _value(fams["otel_redis_requests_per_second"], **labels) > 0
    exported = _value(fams["otel_redis_records_exported"])
    assert before["exported"] <= exported <= after["exported"]
    assert _value(fams["otel_redis_records_dropped"], reason="queue_full") == 0
    assert "otel_redis_export_seconds" in fams and "otel_redis_queue_length" in fams
    # the forwarder's lag, from the consumer group: newest entry time minus last delivered time
    newest = int(r.xrevrange(schema.STREAM_REQUESTS, count=1)[0][0].split("-")[0])
    delivered = int(r.xinfo_groups(schema.STREAM_REQUESTS)[0]["last-delivered-id"].split("-")[0])
    lag = _value(fams["otel_redis_stream_group_lag_seconds"], stream=schema.STREAM_REQUESTS, group="forwarder")
    assert lag == pytest.approx((newest - delivered) / 1000)
    assert _value(fams["otel_redis_stream_group_pending"], stream=schema.STREAM_REQUESTS, group="forwarder") == 100
    assert _value(fams["otel_redis_stream_length"], stream=schema.STREAM_REQUESTS) == 300
    # the first alerts run starts 0.3 s after the service (it may be younger)
    fams = wait_until(lambda: f if _value((f := _families(_get(service, "/metrics", headers=SCRAPE).text))
                                             ["otel_redis_job_runs"], job="alerts") >= 1 else None,
                      interval=0.1, message="a first run of the alerts job")
    assert "otel_redis_receiver_accepted_records" in fams


def test_prometheus_reports_the_forwarder_backlog_and_published_counters(service, store, r):
    from collector.config import DEFAULT_GROUP

    _recent_traffic(store, seed=11)
    r.xgroup_create(schema.STREAM_REQUESTS, DEFAULT_GROUP, id="0")
    r.xreadgroup(DEFAULT_GROUP, "fw-1", {schema.STREAM_REQUESTS: ">"}, count=120)
    store.publish_counters(schema.FORWARDERS, "fw-1", schema.forwarder_stats("fw-1"),
                           {"group": DEFAULT_GROUP, "forwarded": 110, "retried": 3, "updated_ms": 1}, 60)
    fams = _families(_get(service, "/metrics", headers=SCRAPE).text)
    assert _value(fams["otel_redis_forwarder_backlog"], stream=schema.STREAM_REQUESTS) == 300 - 120
    assert _value(fams["otel_redis_forwarder_forwarded"], consumer="fw-1") == 110
    assert _value(fams["otel_redis_forwarder_retried"], consumer="fw-1") == 3
    assert "otel_redis_forwarder_updated_ms" not in fams


def test_json_metrics_and_paths(service, store, r):
    entries = _recent_traffic(store, seed=5)
    body = _get(service, "/logs/metrics", window="5m").json()
    assert body["overall"]["requests"] == 300
    assert body["overall"]["errors"] == sum(e.request.status_code >= 400 for e in entries)
    assert set(body["hostnames"]) == {"api.example.com", "www.example.com"}
    assert body["window"]["seconds"] >= 300 and "exported" in body["pipeline"]
    one = _get(service, "/logs/metrics", window="1h", hostname="www.example.com").json()
    assert list(one["hostnames"]) == ["www.example.com"]
    assert one["hostnames"]["www.example.com"]["requests"] == sum(e.request.proxy_hostname == "www.example.com" for e in entries)
    paths = _get(service, "/logs/paths", window="1h", limit=3).json()
    assert paths["total"] == 300
    assert [(p["method"], p["pattern"], p["count"]) for p in paths["patterns"]] == [
        ("GET", "/orders/{id}", 150), ("GET", "/health", 120), ("GET", "/{unmatched}", 30)]  # 404s share one key


@pytest.mark.parametrize(
    "path,params,name",
    [
        ("/logs/metrics", {"window": "soon"}, "window"),
        ("/logs/metrics", {"window": "999d"}, "window"),
        ("/logs/paths", {"window": "Inf"}, "window"),
        ("/logs/metrics", {"window": "nan"}, "window"),
        ("/logs/paths", {"limit": "0"}, "limit"),
        ("/logs/alerts", {"since": "yesterday"}, "since"),
        ("/logs/alerts", {"rule": "nope"}, "rule"),
        ("/logs/alerts", {"type": "exploded"}, "type"),
    ],
)
def test_bad_input_is_a_clear_422(service, path, params, name):
    resp = _get(service, path, **params)
    assert resp.status_code == 422
    assert name in resp.json()["detail"]


def test_error_rate_alert_reaches_the_webhook_after_failures_and_recovers(service, store, r, sink, redis_server):
    now = int(time.time() * 1000)
    write(store, [request_entry(t, status=500 if i % 2 else 200) for i, t in enumerate(spread(now - 20_000, now, 60))])
    (fired,) = sink.wait_for(1)
    assert sink.attempts >= 3  # two failed deliveries first
    assert fired["type"] == "fired" and fired["rule"] == "error_rate" and fired["scope"] == "*"
    assert fired["value"] == pytest.approx(0.5)
    listed = _get(service, "/logs/alerts").json()
    assert listed["active"][0]["condition"] == "error_rate:*"
    assert listed["events"][0]["id"] == fired["id"]
    # logged through the service's pipeline
    wait_until(lambda: r.zcard(schema.idx_log_event("alert_fired")), interval=0.1, message="the alert_fired event")
    assert r.zcard(schema.idx_log_event("alert_fired")) == 1
    # recovery: enough good requests bring the rate under the threshold
    now = int(time.time() * 1000)
    write(store, [request_entry(t) for t in spread(now - 5000, now, 300)])
    got = sink.wait_for(2)
    assert got[1]["type"] == "resolved" and got[1]["alert_id"] == fired["id"]
    events = _get(service, "/logs/alerts", type="resolved").json()["events"]
    assert [e["alert_id"] for e in events] == [fired["id"]]
    assert _get(service, "/logs/alerts").json()["active"] == []
    # the CLI reads the same
    env = {**os.environ, "REDIS_URL": redis_server.url}
    out = subprocess.run([OTEL_REDIS, "alerts", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [e["type"] for e in data["events"]] == ["resolved", "fired"]
    table = subprocess.run([OTEL_REDIS, "alerts", "--since", "1h"], env=env, capture_output=True, text=True, timeout=60)
    assert "RESOLVED  error_rate:*" in table.stdout and "firing now: 0" in table.stdout
    bad = subprocess.run([OTEL_REDIS, "alerts", "--since", "later"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr
    # and its HTTP twin, `otel-redis logs alerts`, through the query API
    http_env = {**os.environ, "OTEL_REDIS_API_URL": service.base_url, "OTEL_REDIS_API_TOKEN": "read-token"}
    over_http = subprocess.run([OTEL_REDIS, "logs", "alerts", "--type", "fired", "--json"], env=http_env,
                               capture_output=True, text=True, timeout=60)
    assert over_http.returncode == 0, over_http.stderr
    payload = json.loads(over_http.stdout)
    assert [e["id"] for e in payload["events"]] == [fired["id"]] and payload["active"] == []
    wrong = subprocess.run([OTEL_REDIS, "logs", "alerts", "--rule", "nope"], env=http_env, capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0 and "rule" in wrong.stderr and wrong.stderr.count("\n") == 1
