from __future__ import annotations

import pytest

from otel_redis.config import ConfigError, load_settings
from otel_redis.levels import parse_level, severity_to_name


def test_defaults():
    s = load_settings({})
    assert s.redis_url is None and s.log_level == "INFO" and s.batch_delay_ms == 100
    assert s.retention.requests == 7 * 86400 and s.retention.errors == 30 * 86400
    assert s.retention.oauth == 90 * 86400 and s.retention.stats == 365 * 86400


def test_environment_overrides():
    s = load_settings({"REDIS_URL": "rediss://h:6380/2", "LOG_LEVEL": "trace", "LOG_RETENTION_ERRORS_DAYS": "5",
                       "OTEL_BLRP_SCHEDULE_DELAY": "250", "OTEL_REDIS_CAPTURE_STDLIB": "yes"})
    assert s.redis_url == "rediss://h:6380/2" and s.log_level == "TRACE" and s.retention.errors == 5 * 86400
    assert s.batch_delay_ms == 250 and s.capture_stdlib is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"OTEL_REDIS_MAX_QUEUE_SIZE": "lots"}, "OTEL_REDIS_MAX_QUEUE_SIZE"),
        ({"LOG_RETENTION_REQUESTS_DAYS": "0"}, "LOG_RETENTION_REQUESTS_DAYS"),
        ({"OTEL_REDIS_CAPTURE_STDLIB": "maybe"}, "OTEL_REDIS_CAPTURE_STDLIB"),
        ({"OTEL_REDIS_SOCKET_TIMEOUT_S": "-1"}, "OTEL_REDIS_SOCKET_TIMEOUT_S"),
    ],
)
def test_invalid_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_level_parsing_and_severity_mapping():
    assert parse_level("warn") == "WARNING" and parse_level(" fatal ") == "CRITICAL" and parse_level(None) == "INFO"
    assert [severity_to_name(n) for n in (1, 5, 9, 13, 17, 21, 0)] == [
        "TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "INFO"]
