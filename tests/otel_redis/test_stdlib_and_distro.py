"""stdlib logging bridge, and the exporter as the `redis` entry point under opentelemetry-instrument."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import otel_redis
from otel_redis.exporter import RedisLogRecordExporter

ROOT = Path(__file__).resolve().parents[2]


def test_stdlib_records_flow_in_when_opted_in_without_recursion(settings, counters, r):
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    otel_redis.configure(settings=settings, exporter=exporter, capture_stdlib=True, set_global_provider=False)
    try:
        app_log = logging.getLogger("myapp.db")
        app_log.info("connected", extra={"db": "main"})
        try:
            raise KeyError("missing")
        except KeyError:
            app_log.exception("lookup failed")
        logging.getLogger("otel_redis.exporter").warning("internal: must not loop back")
        logging.getLogger("redis.connection").warning("driver noise: must not loop back")
        logging.getLogger("myapp").log(5, "trace level via stdlib")  # below INFO: gated
        assert otel_redis.force_flush()
    finally:
        otel_redis.shutdown()
    keys = r.zrange("idx:log:all", 0, -1)
    recs = [r.hgetall(k) for k in keys]
    assert [rec["body"] for rec in recs] == ["connected", "lookup failed"]
    assert all(rec["component"] == "myapp.db" for rec in recs)
    attrs = json.loads(recs[0]["attrs"])
    assert attrs["db"] == "main" and attrs["code.function.name"].startswith("test_stdlib")
    err = json.loads(recs[1]["attrs"])
    assert recs[1]["level"] == "ERROR" and err["exception.type"] == "KeyError"
    # the handler is removed on shutdown: later stdlib records do not arrive
    assert not any(isinstance(h, logging.Handler) and type(h).__name__ == "OtelRedisHandler"
                   for h in logging.getLogger().handlers)


def test_not_captured_unless_opted_in(pipeline, r):
    logging.getLogger("myapp").warning("stdlib only")
    otel_redis.log_info("ours")
    otel_redis.force_flush()
    assert [r.hget(k, "body") for k in r.zrange("idx:log:all", 0, -1)] == ["ours"]


@pytest.mark.e2e
def test_opentelemetry_instrument_with_otel_logs_exporter_redis(redis_url, r, tmp_path):
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent("""
        import logging
        import otel_redis
        logging.getLogger("distro.app").warning("hello through the distro", extra={"order_id": 42})
        otel_redis.configure()  # attaches to the provider opentelemetry-instrument set up
        otel_redis.log_info("hello through log_info", component="distro-app")
    """))
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "OTEL_LOGS_EXPORTER": "redis",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
        "OTEL_SERVICE_NAME": "distro-test",
    }
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    out = subprocess.run([str(instrument), sys.executable, str(app)], env=env, capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    recs = {rec["body"]: rec for rec in (r.hgetall(k) for k in r.zrange("idx:log:all", 0, -1))}
    assert set(recs) == {"hello through the distro", "hello through log_info"}
    distro = recs["hello through the distro"]
    assert distro["level"] == "WARNING"
    resource = distro.get("resource") or r.get(f"val:{distro['resource_ref']}")  # long values are shared
    assert json.loads(resource)["service.name"] == "distro-test"
    assert json.loads(distro["attrs"])["order_id"] == 42
    assert recs["hello through log_info"]["component"] == "distro-app"
