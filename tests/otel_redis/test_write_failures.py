"""Per-record outcome against a real Redis that refuses writes: every record is stored or counted
under a named drop counter, exactly, and the counts match what Redis holds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from otel_redis import schema
from otel_redis.config import load_settings
from otel_redis.counters import PipelineCounters
from otel_redis.embedded import EmbeddedRedis
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.record import LogEntry
from otel_redis.store import RedisStore
from otel_redis.connection import make_client

BATCH = 200


def _entries(start_ms: int, n: int, size: int = 400) -> list[LogEntry]:
    body = "x" * size
    return [LogEntry(timestamp_ns=(start_ms + i) * 1_000_000, level="INFO", severity_number=9, body=f"{i} {body}")
            for i in range(n)]


def _stored_records(client: redis.Redis) -> set[str]:
    return {k.decode() for k in client.scan_iter(match="log:*", count=1000) if schema.is_record_key(k.decode())}


@pytest.fixture
def small_redis(tmp_path: Path):
    """A Redis of its own that the test fills up (``noeviction``: writes are refused, not evicted)."""
    server = EmbeddedRedis(tmp_path / "redis", persist=False, extra_args=("--maxmemory-policy", "noeviction"))
    server.start()
    yield server
    server.stop()


def test_out_of_memory_records_are_counted_by_kind_and_writes_resume(small_redis, tmp_path):
    settings = load_settings({}).with_overrides(redis_url=small_redis.url, data_dir=tmp_path / "data")
    raw = redis.Redis.from_url(small_redis.url)
    used = int(raw.info("memory")["used_memory"])
    raw.config_set("maxmemory", used + 3 * 1024 * 1024)
    counters = PipelineCounters()
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    start = int(time.time() * 1000)
    sent = 0
    try:
        for b in range(40):  # 8000 records of ~0.5 KB: well past the 3 MB left
            exporter.export_entries(_entries(start + sent, BATCH))
            sent += BATCH
        snap = counters.snapshot()
        assert snap["dropped_redis_error_oom"] > 0, snap
        assert snap["exported"] > 0
        # exact: every record either exported or dropped under its named counter
        assert snap["exported"] + snap["dropped"] == sent
        assert snap["dropped"] == snap["dropped_redis_error_oom"] == snap["dropped_redis_error"]
        # what Redis holds is exactly what was counted as exported (each with its stream entry)
        assert len(_stored_records(raw)) == snap["exported"]
        assert raw.xlen(schema.STREAM_LOGS) == snap["exported"]
        # more room: the next batches are stored whole
        raw.config_set("maxmemory", 0)
        exporter.export_entries(_entries(start + sent, BATCH))
        sent += BATCH
        after = counters.snapshot()
        assert after["dropped"] == snap["dropped"]
        assert after["exported"] == snap["exported"] + BATCH
        assert len(_stored_records(raw)) == after["exported"]
    finally:
        exporter.shutdown()
        raw.close()


def test_a_batch_refused_half_way_reports_exactly_the_records_that_failed(settings, r):
    """A stream key of the wrong type makes each record's XADD fail: those records are not stored,
    the result names them (WRONGTYPE, Redis's own text), and the records of another stream are."""
    r.set(schema.STREAM_REQUESTS, "not a stream")
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    from otel_redis.record import RequestFields

    entries = _entries(now, 10, size=10)
    for i in range(0, 10, 2):  # every other one a request record, whose stream is broken
        entries[i] = LogEntry(timestamp_ns=(now + i) * 1_000_000, level="INFO", severity_number=9, body="req",
                              request=RequestFields(method="GET", path="/p", status_code=200, client_ip="10.0.0.1"))
    result = store.write_batch(entries)
    assert sorted(result.failed) == [0, 2, 4, 6, 8]
    assert set(result.failed.values()) == {"wrongtype"}
    assert result.error_texts["wrongtype"].startswith("WRONGTYPE")
    assert result.exported == 5
    assert r.xlen(schema.STREAM_LOGS) == 5
    assert result.stored_keys() == [k for i, k in enumerate(result.keys) if i % 2]


def test_the_warning_quotes_redis_and_the_true_count(settings, r, caplog):
    r.set(schema.STREAM_LOGS, "not a stream")
    counters = PipelineCounters()
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    try:
        with caplog.at_level("WARNING", logger="otel_redis.pipeline"):
            exporter.export_entries(_entries(int(time.time() * 1000), 7, size=10))
    finally:
        exporter.shutdown()
    assert counters.dropped_redis_error_wrongtype == 7 and counters.exported == 0
    text = caplog.text
    assert "7 records wrongtype: WRONGTYPE" in text and "refused by Redis 7" in text


def test_an_index_refused_for_stored_records_is_counted_as_index_errors(settings, r):
    r.set(schema.IDX_LOG_ALL, "not a sorted set")
    counters = PipelineCounters()
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    try:
        exporter.export_entries(_entries(int(time.time() * 1000), 5, size=10))
    finally:
        exporter.shutdown()
    assert counters.exported == 5 and counters.dropped == 0
    assert counters.index_errors == 1  # one ZADD (script) for the batch's idx:log:all members
    assert r.xlen(schema.STREAM_LOGS) == 5
