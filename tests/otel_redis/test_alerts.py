"""The alert engine: firing, cool-down, recovery, storage, pipeline logging and webhook delivery
(real Redis, real pipeline, a real HTTP receiver)."""

from __future__ import annotations

import time

import pytest
import redis

import otel_redis
from otel_redis import alerts, schema
from otel_redis.alert_rules import AlertConfig, ErrorRateRule, LatencyRule, OAuthFailureRule, TrafficRule
from otel_redis.alerts import AlertEngine
from otel_redis.store import RedisStore
from otel_redis.webhooks import WebhookNotifier, safe_url
from tests.traffic import request_entry, spread, write
from tests.webhook_sink import webhook_sink

ONLY_ERRORS = AlertConfig(
    cooldown_s=600,
    error_rate=ErrorRateRule(threshold=0.1, min_requests=10, per_hostname=False),
    latency=LatencyRule(enabled=False),
    traffic=TrafficRule(enabled=False),
    oauth_failures=OAuthFailureRule(enabled=False),
)


@pytest.fixture
def store(settings) -> RedisStore:
    return RedisStore(redis.Redis.from_url(settings.redis_url), settings)


def _errors(store, now: int, n: int = 50, every: int = 2) -> None:
    write(store, [request_entry(t, status=500 if i % every == 0 else 200) for i, t in enumerate(spread(now - 120_000, now, n))])


def test_fires_once_then_cools_down_then_records_recovery(store, r):
    now = int(time.time() * 1000)
    _errors(store, now)
    engine = AlertEngine(r, ONLY_ERRORS)
    (fired,) = engine.evaluate(now)
    assert fired["type"] == "fired" and fired["rule"] == "error_rate" and fired["scope"] == "*"
    assert fired["value"] == pytest.approx(0.5) and "error rate 50.0 %" in fired["message"]
    assert engine.evaluate(now + 1000) == []  # still firing: nothing new
    assert alerts.active(r)[0]["alert_id"] == fired["id"]
    # the errors leave the window: recovery
    later = now + 6 * 60_000
    (resolved,) = engine.evaluate(later)
    assert resolved["type"] == "resolved" and resolved["alert_id"] == fired["id"]
    assert resolved["duration_s"] == pytest.approx(360.0)
    assert alerts.active(r) == []
    # the same condition again within the cool-down: suppressed; after it: fires again
    _errors(store, later)
    assert engine.evaluate(later + 1000) == []
    assert engine.evaluate(now + ONLY_ERRORS.cooldown_s * 1000 + 1)[0]["type"] == "fired"
    events = alerts.list_events(r)
    assert [e["type"] for e in events] == ["fired", "resolved", "fired"]
    assert events[-1]["id"] == fired["id"]
    assert [e["type"] for e in alerts.list_events(r, kind="resolved")] == ["resolved"]
    assert len(alerts.list_events(r, limit=2)) == 2
    # since: by the time an event was recorded (its stream id)
    assert len(alerts.list_events(r, since_ms=int(time.time() * 1000) - 60_000)) == 3
    assert alerts.list_events(r, since_ms=int(time.time() * 1000) + 1000) == []
    assert alerts.list_events(r, rule="latency") == []


def test_normal_traffic_fires_nothing(store, r):
    now = int(time.time() * 1000)
    _errors(store, now, n=100, every=100)  # 1 %
    assert AlertEngine(r, ONLY_ERRORS).evaluate(now) == []
    assert not r.exists(schema.ALERTS_EVENTS)


def test_storage_is_bounded_and_expires(store, r):
    now = int(time.time() * 1000)
    _errors(store, now)
    cfg = AlertConfig(**{**ONLY_ERRORS.__dict__, "retention_days": 2, "max_events": 100})
    AlertEngine(r, cfg).evaluate(now)
    assert 0 < r.ttl(schema.ALERTS_EVENTS) <= 2 * 86400
    assert 0 < r.ttl(schema.ALERTS_STATE) <= 2 * 86400


def test_a_hostname_that_goes_quiet_resolves(store, r):
    now = int(time.time() * 1000)
    write(store, [request_entry(t, status=500, host="gone.example.com") for t in spread(now - 60_000, now, 20)])
    cfg = AlertConfig(**{**ONLY_ERRORS.__dict__, "error_rate": ErrorRateRule(threshold=0.1, min_requests=10)})
    engine = AlertEngine(r, cfg)
    assert {e["scope"] for e in engine.evaluate(now)} == {"*", "gone.example.com"}
    later = now + 3 * 3_600_000  # the host is no longer in the window's hostname sets
    resolved = engine.evaluate(later)
    assert {(e["type"], e["scope"]) for e in resolved} == {("resolved", "*"), ("resolved", "gone.example.com")}


def test_firing_and_recovery_are_logged_through_the_pipeline(store, r, pipeline):
    now = int(time.time() * 1000)
    _errors(store, now)
    engine = AlertEngine(r, ONLY_ERRORS)
    (fired,) = engine.evaluate(now)
    engine.evaluate(now + 10 * 60_000)
    assert otel_redis.force_flush()
    (fired_key,) = r.zrange(schema.idx_log_event("alert_fired"), 0, -1)
    rec = r.hgetall(fired_key)
    assert rec["level"] == "WARNING" and rec["component"] == "alerts" and "error rate" in rec["body"]
    assert fired["id"] in rec["attrs"]
    assert r.zcard(schema.idx_log_event("alert_resolved")) == 1


def test_webhook_gets_the_alert_after_it_first_fails(store, r):
    now = int(time.time() * 1000)
    _errors(store, now)
    with webhook_sink(fail_first=2) as sink:
        notifier = WebhookNotifier((sink.url,), attempts=4, backoff_s=0.05)
        engine = AlertEngine(r, ONLY_ERRORS, notifier)
        (fired,) = engine.evaluate(now)
        (got,) = sink.wait_for(1)
        engine.evaluate(now + 10 * 60_000)
        got_all = sink.wait_for(2)
        notifier.close()
    assert got["id"] == fired["id"] and got["type"] == "fired" and got["rule"] == "error_rate"
    assert got_all[1]["type"] == "resolved" and got_all[1]["alert_id"] == fired["id"]
    assert sink.attempts == 4
    assert notifier.counters.snapshot() == {"delivered": 2, "failed": 0, "retried": 2, "dropped": 0}


def test_webhook_gives_up_after_its_attempts_and_reports_it(pipeline, r):
    failures = []
    with webhook_sink(fail_first=100) as sink:
        notifier = WebhookNotifier((sink.url,), attempts=3, backoff_s=0.01, on_failure=lambda u, p, why: failures.append(why))
        assert notifier.deliver(sink.url, {"type": "fired"}) is False
        notifier.close()
    assert sink.attempts == 3 and failures == ["HTTP 500"]
    with webhook_sink(fail_first=100, fail_status=404) as sink:
        notifier = WebhookNotifier((sink.url,), attempts=3, backoff_s=0.01)
        assert notifier.deliver(sink.url, {"type": "fired"}) is False  # a 4xx is final
        notifier.close()
    assert sink.attempts == 1
    alerts.delivery_failed(sink.url, {"id": "1-0", "rule": "traffic"}, "HTTP 404")
    assert otel_redis.force_flush()
    (key,) = r.zrange(schema.IDX_LOG_ERRORS, 0, -1)
    rec = r.hgetall(key)
    assert "s3cr3t" not in str(rec) and "hook" not in rec["attrs"]  # the URL is logged without path or query


def test_unreachable_webhook_is_retried_then_counted():
    notifier = WebhookNotifier(("http://127.0.0.1:9/x",), attempts=2, backoff_s=0.01, timeout_s=1)
    assert notifier.deliver("http://127.0.0.1:9/x", {}) is False
    notifier.close()
    assert notifier.counters.failed == 1 and notifier.counters.retried == 1


def test_safe_url_hides_path_query_and_credentials():
    assert safe_url("https://user:pw@hooks.example.com:8443/T0/B1?token=x") == "https://hooks.example.com:8443/..."
