"""The exporter's own duties around the store: one bad record does not lose its batch, and every
record is counted."""

from __future__ import annotations

import time

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter


def _readable(body: str, timestamp: object) -> ReadableLogRecord:
    record = LogRecord(timestamp=timestamp, severity_number=SeverityNumber.INFO, severity_text="INFO", body=body)  # type: ignore[arg-type]
    return ReadableLogRecord(record, Resource.create({"service.name": "t"}), None, None)


def test_an_unreadable_record_is_counted_and_the_rest_of_its_batch_stored(settings, r):
    counters = PipelineCounters()
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    now = time.time_ns()
    batch = [_readable(f"ok {i}", now + i) for i in range(100)]
    batch.insert(70, _readable("broken", "not a timestamp"))  # int() of it fails in normalisation
    try:
        assert exporter.export(batch) == LogRecordExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert counters.exported == 100
    assert counters.internal_errors == 1 and counters.dropped_export_failed == 1
    bodies = {r.hget(key, "body") for key in r.zrange("idx:log:all", 0, -1)}
    assert bodies == {f"ok {i}" for i in range(100)}
    assert r.xlen("stream:logs") == 100


def test_a_failed_write_counts_the_whole_batch_as_dropped(settings):
    counters = PipelineCounters()
    dead = settings.with_overrides(redis_url="redis://127.0.0.1:1/0", retry_attempts=0)
    exporter = RedisLogRecordExporter(settings=dead, counters=counters)
    now = time.time_ns()
    batch = [_readable(f"m {i}", now + i) for i in range(10)] + [_readable("broken", "x")]
    try:
        assert exporter.export(batch) == LogRecordExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert counters.failed_batches == 1 and counters.exported == 0
    assert counters.dropped_export_failed == 11  # ten unsent and the unreadable one


def _stream_keys(r, stream: str) -> list[str]:
    return [fields["k"] for _id, fields in r.xrange(stream)]


def test_under_a_backlog_a_batch_is_finished_by_the_next_export(settings, r):
    """While a whole batch waits behind it, export leaves a batch's replies unread and finishes it
    in the next call (or force_flush): nothing is lost, the counters catch up, streams stay in order."""
    counters = PipelineCounters()
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    queued = [10_000]
    exporter.follow_backlog(lambda: queued[0], 100)
    now = time.time_ns()
    first = [_readable(f"a {i}", now + i) for i in range(100)]
    second = [_readable(f"b {i}", now + 1000 + i) for i in range(100)]
    try:
        assert exporter.export(first) == LogRecordExportResult.SUCCESS
        assert counters.exported == 0  # sent, its replies not read yet
        assert exporter.export(second) == LogRecordExportResult.SUCCESS
        assert counters.exported == 100 and counters.export_batches == 1
        queued[0] = 0
        assert exporter.force_flush()
        assert counters.exported == 200 and counters.export_batches == 2
    finally:
        exporter.shutdown()
    keys = _stream_keys(r, "stream:logs")
    assert [r.hget(key, "body") for key in keys] == [f"a {i}" for i in range(100)] + [f"b {i}" for i in range(100)]
    assert r.zcard("idx:log:all") == 200
    assert counters.failed_batches == 0 and counters.dropped_export_failed == 0


def test_without_a_backlog_a_batch_is_finished_within_its_export(settings, r):
    counters = PipelineCounters()
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    exporter.follow_backlog(lambda: 99, 100)  # less than a batch waits: the processor may sleep now
    now = time.time_ns()
    try:
        assert exporter.export([_readable(f"m {i}", now + i) for i in range(50)]) == LogRecordExportResult.SUCCESS
        assert counters.exported == 50
    finally:
        exporter.shutdown()


def test_shutdown_finishes_the_batch_in_flight(settings, r):
    counters = PipelineCounters()
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    exporter.follow_backlog(lambda: 10_000, 10)
    exporter.export([_readable(f"m {i}", time.time_ns() + i) for i in range(30)])
    assert counters.exported == 0
    exporter.shutdown()
    assert counters.exported == 30 and r.xlen("stream:logs") == 30


def test_a_burst_through_the_processor_is_stored_whole_and_in_order(settings, r):
    """The processor tells the exporter its backlog, so a burst leaves batches in flight; every
    record still arrives once, and the stream holds them in the order they were logged."""
    import otel_redis

    counters = PipelineCounters()
    small = settings.with_overrides(max_export_batch_size=100)
    exporter = RedisLogRecordExporter(settings=small, counters=counters)
    otel_redis.configure(settings=small, exporter=exporter, set_global_provider=False)
    try:
        assert exporter._backlog is not None  # wired by CountingBatchLogRecordProcessor
        for i in range(3000):
            otel_redis.log_info(f"burst {i}")
        assert otel_redis.force_flush()
    finally:
        otel_redis.shutdown()
    assert counters.exported == 3000 and counters.dropped == 0
    keys = _stream_keys(r, "stream:logs")
    assert [r.hget(key, "body") for key in keys] == [f"burst {i}" for i in range(3000)]


def test_a_batch_in_flight_that_never_completes_is_counted_as_dropped(tmp_path, settings):
    """Redis goes away with a batch in flight: the next flush counts every record of that batch as
    dropped (nothing lost silently) and raises nothing."""
    import redis

    from otel_redis.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    counters = PipelineCounters()
    own = settings.with_overrides(redis_url=server.url, retry_attempts=0)
    exporter = RedisLogRecordExporter(settings=own, counters=counters)
    exporter.follow_backlog(lambda: 10_000, 10)
    now = time.time_ns()
    try:
        assert exporter.export([_readable(f"warm {i}", now + i) for i in range(10)]) == LogRecordExportResult.SUCCESS
        exporter.force_flush()  # scripts loaded, connections open
        assert counters.exported == 10
        admin = redis.Redis.from_url(server.url)
        admin.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")  # the next batch's writes wait in Redis
        assert exporter.export([_readable(f"lost {i}", now + 100 + i) for i in range(25)]) == LogRecordExportResult.SUCCESS
        assert counters.dropped_export_failed == 0  # in flight: not known yet
        admin.close()
        server.stop()  # gone before it ran them
        assert exporter.force_flush()
        assert counters.failed_batches == 1 and counters.dropped_export_failed == 25
        assert counters.exported == 10
    finally:
        exporter.shutdown()
        server.stop()
