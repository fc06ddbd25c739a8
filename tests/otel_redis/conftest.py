from __future__ import annotations

from typing import Iterator

import pytest

import otel_redis
from otel_redis import api
from otel_redis.config import Settings
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.pipeline import Pipeline


@pytest.fixture
def counters() -> PipelineCounters:
    return PipelineCounters()


@pytest.fixture
def pipeline(settings: Settings, counters: PipelineCounters) -> Iterator[Pipeline]:
    """The real pipeline (processor, exporter, store) on the test's Redis, with its own counters."""
    api._pending.clear()
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    pipe = otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
    yield pipe
    otel_redis.shutdown()
    api._pending.clear()
    api._set_gate(20)
