from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import otel_redis
from otel_redis import api
from otel_redis.config import Settings
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.pipeline import Pipeline
from tests.redis_cluster import LocalRedisCluster


@pytest.fixture
def counters() -> PipelineCounters:
    return PipelineCounters()


@pytest.fixture
def pipeline(settings: Settings, counters: PipelineCounters) -> Iterator[Pipeline]:
    """The real pipeline (processor, exporter, store) on the test's Redis, with its own counters."""
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    pipe = otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
    yield pipe
    otel_redis.shutdown()


class MemorySink:
    """A sink that keeps what log calls hand it (the api.Sink protocol), for tests of the log API
    itself: what a call builds, without a pipeline."""

    fast = False
    settings = None

    def __init__(self) -> None:
        self.records: list[dict] = []

    def emit(self, timestamp_ns, levelno, body, attributes, event, trace_id, span_id) -> None:
        self.records.append({"ts": timestamp_ns, "levelno": levelno, "body": body, "attributes": attributes,
                             "event": event, "trace_id": trace_id, "span_id": span_id})

    def emit_fields(self, build, fields) -> None:
        raise AssertionError("not a fast sink: request records come as emit calls")


@pytest.fixture
def memory_sink() -> Iterator[MemorySink]:
    """Log calls go to a MemorySink (level gate TRACE) instead of a pipeline, for this test."""
    otel_redis.shutdown()
    sink = MemorySink()
    api.set_sink(sink, level=5)
    yield sink
    api.set_sink(None, level=20)


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    """A fresh 3-master cluster for a test that moves slots or stops a master (the shared one keeps
    its even split and its masters running)."""
    cluster = LocalRedisCluster(tmp_path / "cluster", masters=3)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
