"""Each alert rule fires on a crafted traffic pattern and stays quiet on normal traffic (real store,
real Redis); the configuration comes from defaults, a file and the environment."""

from __future__ import annotations

import json
import random
import time

import pytest
import redis

from otel_redis import metrics
from otel_redis.alert_rules import (
    AlertConfig,
    ErrorRateRule,
    LatencyRule,
    OAuthFailureRule,
    TrafficRule,
    eval_error_rate,
    eval_latency,
    eval_oauth_failures,
    eval_traffic,
    evaluate,
    load_alert_config,
)
from otel_redis.config import ConfigError
from otel_redis.store import RedisStore
from tests.traffic import oauth_entry, request_entry, spread, write


@pytest.fixture
def store(settings) -> RedisStore:
    return RedisStore(redis.Redis.from_url(settings.redis_url), settings)


@pytest.fixture
def now() -> int:
    return int(time.time() * 1000)


def _window(now: int, seconds: int = 300) -> metrics.Window:
    return metrics.Window.ending(seconds, now)


def _by_scope(conditions) -> dict:
    return {c.scope: c for c in conditions}


def _baseline(store, now: int, n: int = 600, rt: float = 20.0, host: str = "api.example.com", seed: int = 1) -> None:
    """``n`` requests over the hour before the current 5-minute window, response times around ``rt``."""
    rng = random.Random(seed)
    cur = _window(now)
    times = spread(cur.start_ms - 3_600_000, cur.start_ms - 1, n)
    write(store, [request_entry(t, rt_ms=rt * rng.uniform(0.8, 1.2), host=host) for t in times])


def _current(store, now: int, n: int, rt: float = 20.0, status=lambda i: 200, host: str = "api.example.com", seed: int = 2):
    rng = random.Random(seed)
    cur = _window(now)
    times = spread(cur.start_ms, now, n)
    write(store, [request_entry(t, rt_ms=rt * rng.uniform(0.8, 1.2), status=status(i), host=host) for i, t in enumerate(times)])


# ---------------------------------------------------------------------------- error rate


def test_error_rate_fires_above_threshold_per_hostname_and_overall(store, r, now):
    _current(store, now, 100, host="api.example.com", status=lambda i: 500 if i % 50 == 0 else 200)  # 2 %
    _current(store, now, 100, host="auth.example.com", status=lambda i: 503 if i % 4 == 0 else 200)  # 25 %
    got = _by_scope(eval_error_rate(r, ErrorRateRule(threshold=0.05), now))
    assert not got["api.example.com"].firing
    assert got["auth.example.com"].firing and got["auth.example.com"].value == pytest.approx(0.25)
    assert got["*"].firing and got["*"].value == pytest.approx(27 / 200)
    assert got["auth.example.com"].details["errors"] == 25


def test_error_rate_is_quiet_on_normal_traffic_and_on_too_few_requests(store, r, now):
    _current(store, now, 200, status=lambda i: 404 if i % 100 == 0 else 200)  # 1 %
    assert not any(c.firing for c in eval_error_rate(r, ErrorRateRule(), now))
    r.flushdb()
    _current(store, now, 10, status=lambda i: 500)  # all errors, but only 10 requests
    assert not any(c.firing for c in eval_error_rate(r, ErrorRateRule(min_requests=20), now))


def test_old_errors_do_not_count(store, r, now):
    write(store, [request_entry(now - 3_600_000, status=500) for _ in range(100)])
    _current(store, now, 50)
    assert not any(c.firing for c in eval_error_rate(r, ErrorRateRule(), now))


# ---------------------------------------------------------------------------- latency


def test_latency_fires_when_p95_degrades_against_its_baseline(store, r, now):
    _baseline(store, now, rt=20.0)
    _current(store, now, 60, rt=200.0)
    got = _by_scope(eval_latency(r, LatencyRule(), now))
    cond = got["*"]
    assert cond.firing
    assert cond.details["baseline_p95"] == pytest.approx(24.0, rel=0.05)
    assert cond.value == pytest.approx(240.0, rel=0.05)
    assert got["api.example.com"].firing


def test_latency_is_quiet_when_p95_holds(store, r, now):
    _baseline(store, now, rt=20.0)
    _current(store, now, 60, rt=22.0)
    assert not any(c.firing for c in eval_latency(r, LatencyRule(), now))


def test_latency_needs_a_baseline_and_an_absolute_increase(store, r, now):
    _current(store, now, 60, rt=500.0)  # slow, but no baseline to compare with
    assert not any(c.firing for c in eval_latency(r, LatencyRule(), now))
    r.flushdb()
    _baseline(store, now, rt=1.0)
    _current(store, now, 60, rt=5.0)  # 5x, but only 4 ms slower
    assert not any(c.firing for c in eval_latency(r, LatencyRule(min_increase_ms=50), now))


# ---------------------------------------------------------------------------- traffic


def test_traffic_spike_fires(store, r, now):
    _baseline(store, now, n=600)  # 10 per minute
    _current(store, now, 600)  # ~100 per minute
    (cond,) = eval_traffic(r, TrafficRule(), now)
    assert cond.firing and cond.details["kind"] == "spike"
    assert cond.value > 3


def test_traffic_drop_fires(store, r, now):
    _baseline(store, now, n=600)
    _current(store, now, 2)
    (cond,) = eval_traffic(r, TrafficRule(), now)
    assert cond.firing and cond.details["kind"] == "drop"


def test_traffic_is_quiet_on_its_usual_rate(store, r, now):
    _baseline(store, now, n=600)
    cur = _window(now)
    usual = round(600 / 3600 * cur.seconds)
    _current(store, now, usual)
    (cond,) = eval_traffic(r, TrafficRule(), now)
    assert not cond.firing and cond.details["kind"] == "normal"
    assert cond.value == pytest.approx(1.0, rel=0.1)


def test_traffic_needs_a_baseline(store, r, now):
    _current(store, now, 500)
    (cond,) = eval_traffic(r, TrafficRule(min_baseline_requests=100), now)
    assert not cond.firing


# ---------------------------------------------------------------------------- oauth failures


def test_oauth_failures_fire_at_the_threshold(store, r, now):
    cur = _window(now)
    write(store, [oauth_entry(t, "login_failed", user=f"u{i}") for i, t in enumerate(spread(cur.start_ms, now, 8))])
    write(store, [oauth_entry(t, "token_error") for t in spread(cur.start_ms, now, 4)])
    write(store, [oauth_entry(t, "token_issued") for t in spread(cur.start_ms, now, 50)])
    (cond,) = eval_oauth_failures(r, OAuthFailureRule(threshold=10), now)
    assert cond.firing and cond.value == 12
    assert cond.details["by_event_type"] == {"login_failed": 8, "token_error": 4}


def test_oauth_failures_quiet_below_threshold_and_outside_the_window(store, r, now):
    cur = _window(now)
    write(store, [oauth_entry(t, "login_failed") for t in spread(cur.start_ms, now, 5)])
    write(store, [oauth_entry(now - 2 * 3_600_000, "login_failed") for _ in range(30)])
    write(store, [oauth_entry(t, "token_issued") for t in spread(cur.start_ms, now, 100)])
    (cond,) = eval_oauth_failures(r, OAuthFailureRule(threshold=10), now)
    assert not cond.firing and cond.value == 5


def test_disabled_rules_are_not_evaluated(store, r, now):
    config = AlertConfig(
        error_rate=ErrorRateRule(enabled=False), latency=LatencyRule(enabled=False),
        traffic=TrafficRule(enabled=False),
    )
    assert [c.rule for c in evaluate(r, config, now)] == ["oauth_failures"]


# ---------------------------------------------------------------------------- configuration


def test_config_from_file_then_environment(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text(
        'cooldown_s = 120\nwebhooks = ["https://hooks.example.com/a"]\n'
        "[error_rate]\nthreshold = 0.2\nper_hostname = false\n"
        '[oauth_failures]\nevent_types = ["bad_login"]\n'
    )
    cfg = load_alert_config({
        "OTEL_REDIS_ALERTS_FILE": str(path),
        "OTEL_REDIS_ALERT_ERROR_RATE_THRESHOLD": "0.3",
        "OTEL_REDIS_ALERT_TRAFFIC_ENABLED": "false",
        "OTEL_REDIS_ALERT_LATENCY_FACTOR": "1.5",
        "OTEL_REDIS_ALERT_WEBHOOKS": "http://127.0.0.1:9/x, https://b.example/y",
    })
    assert cfg.cooldown_s == 120
    assert cfg.error_rate.threshold == 0.3 and cfg.error_rate.per_hostname is False
    assert cfg.traffic.enabled is False and cfg.latency.factor == 1.5
    assert cfg.oauth_failures.event_types == ("bad_login",)
    assert cfg.webhooks == ("http://127.0.0.1:9/x", "https://b.example/y")
    j = tmp_path / "alerts.json"
    j.write_text(json.dumps({"interval_s": 5, "latency": {"quantile": 99}}))
    cfg = load_alert_config({"OTEL_REDIS_ALERTS_FILE": str(j)})
    assert cfg.interval_s == 5 and cfg.latency.quantile == 99
    assert load_alert_config({}) == AlertConfig()


@pytest.mark.parametrize(
    "env,match",
    [
        ({"OTEL_REDIS_ALERT_ERROR_RATE_THRESHOLD": "high"}, "OTEL_REDIS_ALERT_ERROR_RATE_THRESHOLD"),
        ({"OTEL_REDIS_ALERT_COOLDOWN_S": "-5"}, "OTEL_REDIS_ALERT_COOLDOWN_S"),
        ({"OTEL_REDIS_ALERT_TRAFFIC_ENABLED": "maybe"}, "OTEL_REDIS_ALERT_TRAFFIC_ENABLED"),
        ({"OTEL_REDIS_ALERT_WEBHOOKS": "ftp://x"}, "OTEL_REDIS_ALERT_WEBHOOKS"),
        ({"OTEL_REDIS_ALERT_INTERVAL_S": "0"}, "OTEL_REDIS_ALERT_INTERVAL_S"),
        ({"OTEL_REDIS_ALERTS_FILE": "/nonexistent/alerts.toml"}, "OTEL_REDIS_ALERTS_FILE"),
    ],
)
def test_bad_configuration_names_the_variable(env, match):
    with pytest.raises(ConfigError, match=match):
        load_alert_config(env)


def test_bad_file_names_the_setting(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text("[error_rate]\nthreshhold = 0.2\n")
    with pytest.raises(ConfigError, match="unknown setting 'threshhold'"):
        load_alert_config({"OTEL_REDIS_ALERTS_FILE": str(path)})
    path.write_text("cooldown_s = [")
    with pytest.raises(ConfigError, match="OTEL_REDIS_ALERTS_FILE"):
        load_alert_config({"OTEL_REDIS_ALERTS_FILE": str(path)})


def test_oauth_failures_logged_with_log_oauth_activity_fire(pipeline, r):
    """The rule reads the keys the OAuth writer (otel_redis.oauth) indexes, through the real pipeline."""
    import otel_redis
    from otel_redis.oauth import log_oauth_activity

    for i in range(10):
        log_oauth_activity("login_failed", "client-1", f"user-{i}", {"reason": "bad password"}, level="WARNING")
    log_oauth_activity("token_issued", "client-1", "user-0")
    assert otel_redis.force_flush()
    (cond,) = eval_oauth_failures(r, OAuthFailureRule(threshold=10), int(time.time() * 1000) + 1000)
    assert cond.firing and cond.details["by_event_type"] == {"login_failed": 10}
