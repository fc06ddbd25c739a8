"""OTEL_REDIS_WRITER_PROCESS: the export's heavy half in a child process, against a real Redis.

The records stored must be exactly those of the in-process path; the child's counters come back to
the application's; a writer that dies is replaced, and what it had not answered is counted as dropped.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Iterator

import pytest
import redis

import otel_redis
from otel_redis import api, schema
from otel_redis.config import Settings
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.request_log import emit_request
from tests.waiting import wait_until

pytestmark = [pytest.mark.skipif(not hasattr(os, "fork"), reason="the writer process test kills a child by signal"), pytest.mark.e2e]

T0 = time.time_ns() // 1_000_000_000 * 1_000_000_000  # recent (older records would be past retention), one value for every run


def _emit(n: int, tag: str) -> None:
    """``n`` request records (direct path, fixed times) and ``n // 4`` application logs."""
    for i in range(n):
        emit_request(
            T0 + i * 1_000_000, "GET", f"/items/{i}", 404 if i % 7 == 0 else 200, f"10.0.{i % 5}.1",
            "api.example.com", query="page=2", route="/items/{item_id}", response_time_ms=1.5 * i,
            user_id=f"u{i % 3}", user_agent="Mozilla/5.0 " + "x" * 80, referrer="https://example.com/",
            bytes_sent=100 + i, trace_id=(i + 1) << 64, span_id=i + 1,
            extra={"http.request.header.x-request-id": f"{tag}-{i}"},
        )
    for i in range(n // 4):
        api.log_info(f"{tag} log {i}", component="worker", user_id=f"u{i}", attempt=i, nested={"a": [1, 2]})


def _stored(r: redis.Redis) -> list[dict[str, str]]:
    """Every record hash, without the fields that differ between runs (log times, uids)."""
    keys = r.zrange(schema.IDX_REQ_ALL, 0, -1) + r.zrange(schema.IDX_LOG_ALL, 0, -1)
    out = []
    for key in keys:
        data = r.hgetall(key)
        if key.startswith("log:"):
            data.pop("timestamp")
        out.append(data)
    return sorted(out, key=lambda d: sorted(d.items()))


@pytest.fixture
def writer_pipeline(settings: Settings) -> Iterator[tuple[RedisLogRecordExporter, PipelineCounters]]:
    counters = PipelineCounters()
    exporter = RedisLogRecordExporter(settings=settings.with_overrides(writer_process=True), counters=counters)
    otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
    yield exporter, counters
    otel_redis.shutdown()


def _child(exporter: RedisLogRecordExporter) -> Any:
    process = exporter._process
    assert process is not None
    return process._proc


def test_records_are_those_of_the_in_process_path(settings, r):
    stored = []
    for writer in (False, True):
        r.flushall()
        counters = PipelineCounters()
        exporter = RedisLogRecordExporter(settings=settings.with_overrides(writer_process=writer), counters=counters)
        otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
        _emit(300, "same")
        assert otel_redis.force_flush()
        assert counters.exported == counters.emitted == 375 and counters.dropped == 0
        assert (exporter._process is not None) is writer
        otel_redis.shutdown()
        stored.append(_stored(r))
    assert len(stored[1]) == 375
    assert stored[0] == stored[1]


def test_counters_come_back_and_shutdown_stops_the_writer(writer_pipeline, r):
    exporter, counters = writer_pipeline
    _emit(1000, "count")
    assert otel_redis.force_flush()
    assert counters.exported == counters.emitted == 1250
    assert counters.export_batches >= 3 and counters.dropped == 0
    assert r.zcard(schema.IDX_REQ_ALL) == 1000
    child = _child(exporter)
    assert child.poll() is None
    otel_redis.shutdown()
    assert child.poll() is not None  # gone, not left behind


def test_a_dead_writer_is_replaced_and_its_unanswered_batches_are_counted(writer_pipeline, r):
    exporter, counters = writer_pipeline
    _emit(200, "before")
    assert otel_redis.force_flush()
    first = _child(exporter)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    try:  # the reader sees the end
        wait_until(lambda: exporter._process._proc is not first, timeout=10, interval=0.01)
    except AssertionError:
        pass  # as before: the test goes on either way
    _emit(200, "after")
    assert otel_redis.force_flush()
    second = _child(exporter)
    assert second is not None and second.pid != first.pid and exporter._process.restarts == 1
    stored = r.zrange(schema.IDX_REQ_ALL, 0, -1)
    assert len(stored) == 400
    # nothing unaccounted: every record emitted was either written or counted as dropped
    assert counters.exported + counters.dropped == counters.emitted == 500
    assert counters.dropped == 0


def test_a_writer_killed_with_batches_in_flight_counts_them_as_dropped(settings, r):
    counters = PipelineCounters()
    small = settings.with_overrides(max_export_batch_size=20)  # frames small enough to wait in the pipe
    exporter = RedisLogRecordExporter(settings=small.with_overrides(writer_process=True), counters=counters)
    pipe = otel_redis.configure(settings=small, exporter=exporter, set_global_provider=False)
    try:
        _emit(40, "warm")
        assert otel_redis.force_flush()
        child = _child(exporter)
        child.send_signal(signal.SIGSTOP)  # reads nothing, answers nothing
        try:
            _emit(80, "stuck")  # 100 records, 5 batches: sent, never answered
            pipe.processor.batch_processor.force_flush()  # hands them over (the exporter's flush would wait for answers)
            assert sum(exporter._process._in_flight) == 100
        finally:
            os.kill(child.pid, signal.SIGKILL)
        assert otel_redis.force_flush()
        assert counters.emitted == 150
        assert counters.exported == 50 and counters.dropped_export_failed == 100 and counters.failed_batches == 5
        assert r.zcard(schema.IDX_REQ_ALL) == 40
        _emit(20, "again")  # the next batch starts a new writer
        assert otel_redis.force_flush()
        assert exporter._process.restarts == 1 and r.zcard(schema.IDX_REQ_ALL) == 60
    finally:
        otel_redis.shutdown()


def test_the_writer_runs_at_a_lower_priority_than_the_app(settings, r):
    """OTEL_REDIS_WRITER_NICE (default 5): where app and writer compete for a core, the app wins."""
    niceness = {}
    for increment in (7, 0):
        counters = PipelineCounters()
        exporter = RedisLogRecordExporter(
            settings=settings.with_overrides(writer_process=True, writer_nice=increment), counters=counters
        )
        otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
        _emit(10, f"nice{increment}")
        assert otel_redis.force_flush() and counters.exported == counters.emitted
        niceness[increment] = os.getpriority(os.PRIO_PROCESS, _child(exporter).pid)
        otel_redis.shutdown()
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert niceness == {7: min(own + 7, 19), 0: own}


def test_writer_nice_setting_is_checked():
    from otel_redis.config import ConfigError, load_settings

    assert load_settings({}).writer_nice == 5
    assert load_settings({"OTEL_REDIS_WRITER_NICE": "0"}).writer_nice == 0
    for bad in ("20", "-1", "low"):
        with pytest.raises(ConfigError, match="OTEL_REDIS_WRITER_NICE"):
            load_settings({"OTEL_REDIS_WRITER_NICE": bad})


_APP_THAT_DIES = """
import os, signal, sys
import otel_redis
from otel_redis.config import load_settings
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter
from tests.otel_redis.test_writer_process import _emit

settings = load_settings({}).with_overrides(redis_url=sys.argv[1], max_export_batch_size=20)
exporter = RedisLogRecordExporter(settings=settings.with_overrides(writer_process=True), counters=PipelineCounters())
pipe = otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
_emit(20, "warm")
assert otel_redis.force_flush()
child = exporter._process._proc
child.send_signal(signal.SIGSTOP)  # the writer answers the next batches only once the app is gone
_emit(80, "orphan")
pipe.processor.batch_processor.force_flush()  # handed over, unanswered
print(child.pid, flush=True)
os._exit(0)  # dies without shutdown
"""


def test_a_writer_whose_app_died_writes_what_it_was_sent_and_exits_quietly(settings, r):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    app = subprocess.Popen(
        [sys.executable, "-c", _APP_THAT_DIES, settings.redis_url], cwd=root,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # the writer inherits stderr: EOF when it has exited too
    )
    assert app.stdout is not None and app.stderr is not None
    writer_pid = int(app.stdout.readline())
    assert app.wait(timeout=60) == 0
    os.kill(writer_pid, signal.SIGCONT)
    errors = app.stderr.read()
    assert errors == b""  # no BrokenPipeError traceback
    assert r.zcard(schema.IDX_REQ_ALL) == 100 and r.zcard(schema.IDX_LOG_ALL) == 25
