"""The writer process against a Redis that stops answering: ``force_flush()`` returns only once the
last records are confirmed, and ``shutdown`` gives up within its timeout, counting what it gave up on."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
import redis

import otel_redis
from otel_redis import api, schema
from otel_redis.config import load_settings
from otel_redis.counters import PipelineCounters
from otel_redis.embedded import EmbeddedRedis
from otel_redis.exporter import RedisLogRecordExporter

pytestmark = [pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="stops Redis with SIGSTOP"), pytest.mark.e2e]


@pytest.fixture
def own_redis(tmp_path: Path):
    """A Redis of its own (the tests stop it)."""
    server = EmbeddedRedis(tmp_path / "redis", persist=False)
    server.start()
    yield server
    os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def _pipeline(own_redis: EmbeddedRedis, tmp_path: Path) -> tuple[RedisLogRecordExporter, PipelineCounters]:
    settings = load_settings({}).with_overrides(
        redis_url=own_redis.url, data_dir=tmp_path / "data", socket_timeout_s=0.5,
        retry_attempts=200, retry_backoff_cap_s=0.2, capture_stdlib=False,
    )
    counters = PipelineCounters()
    exporter = RedisLogRecordExporter(settings=settings.with_overrides(writer_process=True), counters=counters)
    otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
    return exporter, counters


@pytest.mark.parametrize("round_", range(3))
def test_force_flush_returns_once_the_last_records_are_confirmed(own_redis, tmp_path, round_):
    _exporter, counters = _pipeline(own_redis, tmp_path)
    pid = own_redis.process.pid
    try:
        for i in range(6000):
            api.log_info(f"record {i}")
            if i == 4000:
                os.kill(pid, signal.SIGSTOP)  # the writer's batches wait on Redis
        resume = threading.Timer(3.0, os.kill, (pid, signal.SIGCONT))
        resume.start()
        assert otel_redis.force_flush(120_000)
        # at the moment it returns: every record emitted is confirmed stored or counted as dropped
        exported, dropped, emitted = counters.exported, counters.dropped, counters.emitted
        resume.join()
        assert emitted == 6000
        assert exported + dropped == emitted, (exported, dropped)
        stored = redis.Redis.from_url(own_redis.url).xlen(schema.STREAM_LOGS)
        assert stored == exported
    finally:
        otel_redis.shutdown()


def test_shutdown_gives_up_within_its_timeout_and_counts_what_it_gave_up(own_redis, tmp_path):
    exporter, counters = _pipeline(own_redis, tmp_path)
    pid = own_redis.process.pid
    pipe = otel_redis.pipeline.current()
    try:
        api.log_info("before")
        assert otel_redis.force_flush()
        os.kill(pid, signal.SIGSTOP)  # and it stays stopped until the test ends
        for i in range(20000):
            api.log_info(f"record {i}")
        pipe.processor.shutdown(timeout_millis=3000)  # returns although Redis never answers
        snap = counters.snapshot()
        assert snap["emitted"] == 20001
        assert snap["exported"] + snap["dropped"] == snap["emitted"], snap
        assert snap["dropped_export_failed"] + snap["dropped_after_shutdown"] > 0, snap
    finally:
        os.kill(pid, signal.SIGCONT)
        otel_redis.shutdown()
