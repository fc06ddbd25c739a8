"""``otel-redis serve --demo``: the query API logs its own requests and a demo client sends it traffic."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from otel_redis import schema
from tests.servers import free_port, run_service
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_demo_sends_http_traffic_that_is_stored_as_request_records(redis_url, r, tmp_path):
    port = free_port()
    argv = [str(Path(sys.executable).with_name("otel-redis")), "serve", "--demo", "--demo-interval", "0.05",
            "--port", "{port}", "--no-otlp"]
    env = {"REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data"), "OTEL_REDIS_BATCH_DELAY_MS": "20"}
    with run_service(argv, env=env, port=port, tmp_path=tmp_path, name="serve-demo") as svc:
        wait_until(lambda: r.zcard(schema.IDX_REQ_ALL) >= 5, interval=0.1, message=svc.output)
        output = svc.output()
    keys = r.zrange(schema.IDX_REQ_ALL, 0, -1)
    assert len(keys) >= 5, output
    paths = {r.hget(k, "path") for k in keys}
    assert "/healthz" not in paths  # excluded
    assert all(p.startswith(("/logs", "/wp-admin")) for p in paths), paths
    referrers = {r.hget(k, "referrer") for k in keys}
    assert all("demo-secret" not in (ref or "") for ref in referrers)  # masked
    assert "stored " in output and " GET " in output  # the console shows requests flowing


@pytest.mark.cluster
def test_demo_on_a_cluster_stores_and_prints_the_records(redis_cluster, tmp_path):
    """On a Redis Cluster the demo's records are written in the sharded layout and the console tail
    reads every stream part."""
    port = free_port()
    argv = [str(Path(sys.executable).with_name("otel-redis")), "serve", "--demo", "--demo-interval", "0.05",
            "--port", "{port}", "--no-otlp"]
    env = {"REDIS_URL": redis_cluster.url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data"), "OTEL_REDIS_BATCH_DELAY_MS": "20"}
    with RedisCluster.from_url(redis_cluster.url, decode_responses=True) as rc:
        parts = schema.sharded(schema.IDX_REQ_ALL, 12)
        with run_service(argv, env=env, port=port, tmp_path=tmp_path, name="serve-demo-cluster") as svc:
            wait_until(lambda: sum(rc.zcard(p) for p in parts) >= 5 and "stored " in svc.output(), interval=0.1,
                       message=svc.output)
            output = svc.output()
        assert sum(rc.zcard(p) for p in parts) >= 5, output
        assert rc.exists(schema.IDX_REQ_ALL) == 0
    assert "stored " in output and " GET " in output, output
