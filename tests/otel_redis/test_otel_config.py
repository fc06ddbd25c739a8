"""One test per row of docs/opentelemetry-config.md, plus the "nothing vanishes" guarantees.

Environment rows run a fresh Python process per environment (the variables are read at configure()
time, and some by the SDK at import), on the suite's real Redis.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
import redis

import otel_redis
from otel_redis import log_info, log_request, log_response, schema
from otel_redis.config import ConfigError
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.record import LogEntry
from tests.waiting import wait_until

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "opentelemetry-config.md")

_PRELUDE = """
import json, sys
import otel_redis
from otel_redis import log_info
"""


def _run(redis_url: str, env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    for name in list(full):
        if name.startswith("OTEL_") and not name.startswith("OTEL_REDIS_"):
            del full[name]
    full.update({"REDIS_URL": redis_url, **env})
    return subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(code)], env=full, capture_output=True, text=True,
        timeout=120,
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _entries(r: redis.Redis, index: str = schema.IDX_LOG_ALL) -> list[LogEntry]:
    mappings = [r.hgetall(k) for k in r.zrange(index, 0, -1)]
    values = {d: r.get(schema.value_key(d)) for d in schema.missing_values(mappings)}
    return [schema.decode_entry(m, {d: v for d, v in values.items() if v is not None}) for m in mappings]


_LOG_ONE = """
otel_redis.configure()
log_info("hello", component="cfg", **{f"a{i}": "x" * 300 for i in range(201)})
otel_redis.shutdown()
print(json.dumps(otel_redis.stats()))
"""


def test_the_table_lists_every_variable_tested_here():
    text = open(DOC, encoding="utf-8").read()
    rows = [line.split("`")[1] for line in text.splitlines() if line.startswith("| `OTEL_")]
    assert len(rows) == 13 and len(set(rows)) == 13


@pytest.mark.e2e
def test_otel_sdk_disabled_writes_nothing_and_log_calls_do_not_raise(redis_url, r):
    out = _ok(_run(redis_url, {"OTEL_SDK_DISABLED": "true"}, _LOG_ONE + "log_info(object())\n"))
    assert r.zcard(schema.IDX_LOG_ALL) == 0
    assert json.loads(out)["emitted"] == 0
    _ok(_run(redis_url, {"OTEL_SDK_DISABLED": "false"}, _LOG_ONE))
    assert r.zcard(schema.IDX_LOG_ALL) == 1


@pytest.mark.e2e
def test_otel_service_name_wins_over_resource_attributes(redis_url, r):
    _ok(_run(redis_url, {"OTEL_SERVICE_NAME": "billing", "OTEL_RESOURCE_ATTRIBUTES": "service.name=shop"}, _LOG_ONE))
    (entry,) = _entries(r)
    assert entry.resource["service.name"] == "billing"


@pytest.mark.e2e
def test_otel_resource_attributes_service_name_wins_over_our_default(redis_url, r):
    _ok(_run(redis_url, {"OTEL_RESOURCE_ATTRIBUTES": "service.name=shop,deployment.environment=prod"}, _LOG_ONE))
    (entry,) = _entries(r)
    assert entry.resource["service.name"] == "shop"
    assert entry.resource["deployment.environment"] == "prod"


@pytest.mark.e2e
def test_otel_logs_exporter_redis_and_console(redis_url, r):
    out = _ok(_run(redis_url, {"OTEL_LOGS_EXPORTER": "redis,console"}, _LOG_ONE))
    assert r.zcard(schema.IDX_LOG_ALL) == 1
    assert '"body": "hello"' in out
    out = _ok(_run(redis_url, {"OTEL_LOGS_EXPORTER": "console"}, _LOG_ONE))
    assert r.zcard(schema.IDX_LOG_ALL) == 1 and '"body": "hello"' in out
    bad = _run(redis_url, {"OTEL_LOGS_EXPORTER": "redis,kafka"}, _LOG_ONE)
    assert bad.returncode != 0 and "OTEL_LOGS_EXPORTER" in bad.stderr and "'kafka'" in bad.stderr


@pytest.mark.e2e
def test_otel_exporter_otlp_logs_endpoint_reaches_a_real_receiver(redis_server, redis_url, r, tmp_path):
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the otlp exporter is not installed")
    from otel_redis.config import load_settings

    from ..collector.otlp_helpers import start_receiver_on_free_ports

    settings = load_settings({}).with_overrides(redis_url=redis_server.url, data_dir=tmp_path, retry_attempts=0)
    receiver = start_receiver_on_free_ports(settings)
    try:
        port = receiver.http_port
        _ok(_run(redis_url, {
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://127.0.0.1:{port}/v1/logs",
        }, _LOG_ONE))
        wait_until(lambda: r.zcard(schema.IDX_LOG_ALL), message="the record sent over OTLP")
        (entry,) = _entries(r)
        assert entry.body == "hello"
    finally:
        receiver.stop()


@pytest.mark.e2e
@pytest.mark.parametrize("prefix", ["OTEL_ATTRIBUTE", "OTEL_LOGRECORD_ATTRIBUTE"])
def test_attribute_count_limit(redis_url, r, prefix):
    out = json.loads(_ok(_run(redis_url, {f"{prefix}_COUNT_LIMIT": "50"}, _LOG_ONE)))
    (entry,) = _entries(r)
    assert len(entry.attributes) + (1 if entry.component else 0) <= 50
    assert out["dropped_attributes"] == 202 - 50  # 201 attributes and the component


@pytest.mark.e2e
@pytest.mark.parametrize("prefix", ["OTEL_ATTRIBUTE", "OTEL_LOGRECORD_ATTRIBUTE"])
def test_attribute_value_length_limit(redis_url, r, prefix):
    _ok(_run(redis_url, {f"{prefix}_VALUE_LENGTH_LIMIT": "20"}, _LOG_ONE))
    (entry,) = _entries(r)
    assert entry.attributes["a200"] == "x" * 20


@pytest.mark.e2e
def test_logrecord_limit_wins_over_the_general_one(redis_url, r):
    env = {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "20", "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT": "7"}
    _ok(_run(redis_url, env, _LOG_ONE))
    (entry,) = _entries(r)
    assert entry.attributes["a200"] == "x" * 7


@pytest.mark.e2e
def test_otel_blrp_schedule_delay(redis_url, r):
    code = """
    otel_redis.configure()
    log_info("waits")
    import time, redis, os
    time.sleep(1.0)
    print(redis.Redis.from_url(os.environ["REDIS_URL"]).zcard("idx:log:all"))
    otel_redis.force_flush()
    print(redis.Redis.from_url(os.environ["REDIS_URL"]).zcard("idx:log:all"))
    """
    # an hour's delay: nothing is exported until the flush (the default 100 ms would have written it)
    assert _ok(_run(redis_url, {"OTEL_BLRP_SCHEDULE_DELAY": "3600000"}, code)).split() == ["0", "1"]


@pytest.mark.e2e
@pytest.mark.parametrize("writer_process", ["false", "true"])
def test_otel_blrp_max_export_batch_size(redis_url, r, writer_process):
    code = """
    otel_redis.configure()
    for i in range(100):
        log_info(f"r{i}")
    otel_redis.shutdown()
    print(json.dumps(otel_redis.stats()))
    """
    env = {"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "10", "OTEL_BLRP_SCHEDULE_DELAY": "3600000",
           "OTEL_REDIS_WRITER_PROCESS": writer_process}
    out = json.loads(_ok(_run(redis_url, env, code)))
    assert out["exported"] == 100 and out["export_batches"] >= 10
    assert r.zcard(schema.IDX_LOG_ALL) == 100


@pytest.mark.e2e
def test_otel_blrp_max_queue_size_counts_what_it_drops(redis_url, r):
    code = """
    import os, redis
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.execute_command("CLIENT", "PAUSE", 600000, "WRITE")  # Redis stalls: the queue fills
    otel_redis.configure()
    for i in range(500):
        log_info(f"r{i}")
    client.execute_command("CLIENT", "UNPAUSE")
    otel_redis.shutdown()
    print(json.dumps(otel_redis.stats()))
    """
    env = {"OTEL_BLRP_MAX_QUEUE_SIZE": "100", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "50",
           "OTEL_REDIS_SOCKET_TIMEOUT_S": "120"}
    out = json.loads(_ok(_run(redis_url, env, code)))
    stored = r.zcard(schema.IDX_LOG_ALL)
    assert 100 <= stored < 500  # the queue and the batches in flight
    assert out["dropped_queue_full"] == 500 - stored


@pytest.mark.e2e
def test_otel_blrp_export_timeout(redis_url, r):
    code = """
    otel_redis.configure()
    from otel_redis.pipeline import current
    print(current().settings.export_timeout_ms)
    """
    assert _ok(_run(redis_url, {"OTEL_BLRP_EXPORT_TIMEOUT": "1234"}, code)).strip() == "1234"
    bad = _run(redis_url, {"OTEL_BLRP_EXPORT_TIMEOUT": "soon"}, code)
    assert bad.returncode != 0 and "OTEL_BLRP_EXPORT_TIMEOUT" in bad.stderr


# ---------------------------------------------------------------------------- nothing vanishes


def test_configure_with_the_same_provider_twice_stores_each_record_once(settings, r):
    from opentelemetry.sdk._logs import LoggerProvider

    provider = LoggerProvider(shutdown_on_exit=False)
    try:
        otel_redis.configure(settings=settings, provider=provider)
        otel_redis.configure(settings=settings, provider=provider)
        log_info("once")
        assert otel_redis.force_flush()
        assert r.zcard(schema.IDX_LOG_ALL) == 1
    finally:
        otel_redis.shutdown()
        provider.shutdown()


def test_the_specification_example_stores_every_field_it_was_given(pipeline, r):
    log_request("GET", "/api/health", "192.168.1.1", "api.example.com", trace_id="req-123")
    log_response(200, 45.3, trace_id="req-123")
    assert otel_redis.force_flush()
    (rec,) = [r.hgetall(k) for k in r.zrange(schema.IDX_REQ_ALL, 0, -1)]
    assert (rec["method"], rec["path"], rec["client_ip"], rec["proxy_hostname"]) == (
        "GET", "/api/health", "192.168.1.1", "api.example.com")


def test_an_unanswered_request_is_stored_at_shutdown_with_status_0(settings, counters, r):
    otel_redis.configure(settings=settings, exporter=RedisLogRecordExporter(settings=settings, counters=counters))
    log_request("POST", "/never", "10.1.2.3", "api.example.com", trace_id="unanswered-1")
    otel_redis.shutdown()
    (rec,) = [r.hgetall(k) for k in r.zrange(schema.IDX_REQ_ALL, 0, -1)]
    assert rec["status_code"] == "0" and rec["path"] == "/never"
    assert "no response logged" in rec["error"]


@pytest.mark.e2e
def test_a_forked_child_counts_its_own_records(pipeline, r, counters):
    for i in range(5):
        log_info(f"parent {i}")
    assert otel_redis.force_flush()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            for i in range(3):
                log_info(f"child {i}")
            otel_redis.force_flush()
            os.write(write, json.dumps(pipeline.counters.snapshot()).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = json.loads(os.read(read, 1 << 16))
    os.waitpid(pid, 0)
    assert child["emitted"] == 3 and child["exported"] == 3
    assert pipeline.counters.emitted == 5
    assert r.zcard(schema.IDX_LOG_ALL) == 8


def test_the_drop_warning_reports_the_true_count(settings, r, caplog):
    counters = PipelineCounters()
    cfg = settings.with_overrides(max_queue_size=1000, max_export_batch_size=100, socket_timeout_s=120.0,
                                  batch_delay_ms=3_600_000)
    r.execute_command("CLIENT", "PAUSE", 600000, "WRITE")
    try:
        otel_redis.configure(settings=cfg, exporter=RedisLogRecordExporter(settings=cfg, counters=counters))
        with caplog.at_level(logging.WARNING, logger="otel_redis.pipeline"):
            for i in range(1000 + 48_000):
                log_info(f"r{i}")
            r.execute_command("CLIENT", "UNPAUSE")
            otel_redis.shutdown()
    finally:
        r.execute_command("CLIENT", "UNPAUSE")
    stored = r.zcard(schema.IDX_LOG_ALL)
    assert counters.dropped_queue_full == 49_000 - stored
    assert counters.dropped_queue_full >= 48_000 - 10 * 100  # a few batches were in flight
    last = [m for m in caplog.messages if "dropped" in m][-1]
    assert f"({counters.dropped_queue_full} in all; queue full {counters.dropped_queue_full}," in last


def test_unknown_exporter_is_a_config_error_in_process(settings, monkeypatch):
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "nope")
    with pytest.raises(ConfigError, match="OTEL_LOGS_EXPORTER"):
        otel_redis.configure(settings=settings)
