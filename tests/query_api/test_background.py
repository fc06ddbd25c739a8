"""The retention job runs periodically inside the real service (uvicorn subprocess, real Redis)."""

from __future__ import annotations

import time

import pytest
import redis

from otel_redis import schema
from otel_redis.config import load_settings
from otel_redis.store import RedisStore
from tests.servers import run_service, uvicorn_argv
from tests.traffic import request_entry, write
from tests.waiting import wait_until


@pytest.fixture
def service(redis_url, tmp_path):
    env = {
        "REDIS_URL": redis_url,
        "OTEL_REDIS_API_TOKENS": "read-token",
        "OTEL_REDIS_CLEANUP_INTERVAL_S": "1",
        "OTEL_REDIS_DATA_DIR": str(tmp_path / "data"),
    }
    with run_service(uvicorn_argv(), env=env, tmp_path=tmp_path) as svc:
        yield svc


def test_service_removes_dangling_members_periodically(service, redis_url, r):
    settings = load_settings({}).with_overrides(redis_url=redis_url)
    store = RedisStore(redis.Redis.from_url(redis_url), settings)
    now = int(time.time() * 1000)
    keys = write(store, [request_entry(now - i, ip="198.51.100.7") for i in range(10)])
    r.delete(*keys[:4])
    wait_until(lambda: r.zcard(schema.IDX_REQ_ALL) == 6, interval=0.2, message="the cleanup job's pass")
    assert set(r.zrange(schema.IDX_REQ_ALL, 0, -1)) == set(keys[4:])
    assert r.zcard(schema.idx_req_ip("198.51.100.7")) == 6


def test_serve_with_a_bad_job_setting_is_one_line(tmp_path):
    import os
    import subprocess
    import sys

    exe = os.path.join(os.path.dirname(sys.executable), "otel-redis")
    for var, value in (("OTEL_REDIS_ALERT_ERROR_RATE_THRESHOLD", "lots"), ("OTEL_REDIS_CLEANUP_BATCH", "-1"),
                       ("OTEL_REDIS_METRICS_WINDOWS", "forever")):
        env = {**os.environ, "OTEL_REDIS_DATA_DIR": str(tmp_path), "OTEL_REDIS_ALERTS_ENABLED": "true", var: value}
        done = subprocess.run([exe, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert var in done.stderr and "Traceback" not in done.stderr
        assert done.stderr.strip().count("\n") == 0
