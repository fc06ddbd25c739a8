"""The log_* API end to end: real pipeline, real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading

import pytest
import redis

import otel_redis
from otel_redis import schema, log_critical, log_debug, log_error, log_event, log_info, log_trace, log_warning
from otel_redis.config import ConfigError
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.record import normalize_trace_id
from otel_redis.store import trace_keys
from tests.waiting import wait_until


def _records(r: redis.Redis, index: str = "idx:log:all") -> list[dict[str, str]]:
    keys = r.zrange(index, 0, -1)
    return [r.hgetall(k) for k in keys]


def test_levels_and_fields_are_stored(pipeline, r, counters):
    cfg = pipeline.settings.with_overrides(log_level="TRACE")
    otel_redis.configure(settings=cfg, exporter=RedisLogRecordExporter(settings=cfg, counters=counters),
                         set_global_provider=False)
    log_trace("t", component="c")
    log_debug("d", component="c")
    log_info("Server started", component="api_server", port=8080)
    log_warning("High memory usage", component="monitor", memory_mb=1024)
    log_critical("boom", component="c")
    assert otel_redis.force_flush()
    recs = {rec["body"]: rec for rec in _records(r)}
    assert [recs[b]["level"] for b in ("t", "d", "Server started", "High memory usage", "boom")] == [
        "TRACE", "DEBUG", "INFO", "WARNING", "CRITICAL"]
    assert recs["t"].get("severity", "1") == "1"  # OTel SeverityNumber.TRACE
    assert recs["Server started"]["component"] == "api_server"
    assert json.loads(recs["Server started"]["attrs"]) == {"port": 8080}
    assert json.loads(recs["High memory usage"]["attrs"]) == {"memory_mb": 1024}
    assert r.zcard("idx:log:level:TRACE") == 1
    assert r.zcard("idx:log:component:c") == 3
    assert r.zcard("idx:log:errors") == 1


def test_trace_level_is_registered_with_stdlib():
    assert logging.getLevelName(5) == "TRACE"
    assert logging.getLevelName("TRACE") == 5


def test_level_gate_drops_disabled_calls_before_any_work(pipeline, r, counters):
    log_debug("hidden", component="x", payload=object())
    log_info("shown", component="x")
    otel_redis.force_flush()
    assert [rec["body"] for rec in _records(r)] == ["shown"]
    assert counters.emitted == 1


def test_invalid_log_level_is_a_clear_configure_error(monkeypatch, settings):
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="LOG_LEVEL.*LOUD.*TRACE, DEBUG, INFO"):
        otel_redis.configure(redis_url=settings.redis_url, set_global_provider=False)
    with pytest.raises(ConfigError, match="level"):
        otel_redis.configure(settings=settings, level="chatty", set_global_provider=False)


def test_error_with_exception_stores_otel_exception_attributes(pipeline, r):
    try:
        raise ConnectionError("upstream refused")
    except ConnectionError as exc:
        log_error("Connection failed", component="proxy", error=exc)
    otel_redis.force_flush()
    (rec,) = _records(r)
    attrs = json.loads(rec["attrs"])
    assert attrs["exception.type"] == "ConnectionError"
    assert attrs["exception.message"] == "upstream refused"
    assert "Traceback" in attrs["exception.stacktrace"] and "upstream refused" in attrs["exception.stacktrace"]
    assert rec["level"] == "ERROR"


def test_log_event_sets_event_name_and_explicit_trace_id(pipeline, r):
    log_event("proxy_created", {"hostname": "example.com"}, trace_id="evt-456")
    hex_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    log_event("proxy_deleted", {"hostname": "example.com"}, trace_id=hex_id, component="proxy")
    otel_redis.force_flush()
    recs = {rec["event"]: rec for rec in _records(r)}
    assert recs["proxy_created"]["trace_id"] == normalize_trace_id("evt-456")
    assert recs["proxy_deleted"]["trace_id"] == hex_id
    assert json.loads(recs["proxy_created"]["attrs"]) == {"hostname": "example.com"}
    assert len(trace_keys(r, hex_id)) == 1
    assert r.zcard("idx:log:event:proxy_created") == 1
    assert r.zcard("idx:log:host:example.com") == 2
    assert r.hgetall(f"stats:events:{_hour(r)}")["proxy_created"] == "1"


def _hour(r: redis.Redis) -> str:
    (key,) = r.keys("stats:events:*")
    return key.split(":", 2)[2]


def test_current_span_trace_and_span_ids_are_attached(pipeline, r):
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("work") as span:
        log_info("inside span", component="svc")
        ctx = span.get_span_context()
    otel_redis.force_flush()
    (rec,) = _records(r)
    assert rec["trace_id"] == f"{ctx.trace_id:032x}"
    assert rec["span_id"] == f"{ctx.span_id:016x}"


def test_calls_before_configure_are_stored_after_it(settings, counters, r, log_api):
    otel_redis.shutdown()
    log_info("early bird", component="boot", n=1)
    log_warning("early warning", component="boot")
    assert len(log_api.records) == 2
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
    try:
        otel_redis.force_flush()
        assert sorted(rec["body"] for rec in _records(r)) == ["early bird", "early warning"]
    finally:
        otel_redis.shutdown()


def test_preconfigure_buffer_is_bounded_and_counts_overflow(settings, log_api):
    otel_redis.shutdown()
    before = otel_redis.stats()["dropped_preconfigure"]
    log_api.maxlen = 5  # the fixture puts the default back
    for i in range(8):
        log_info(f"m{i}")
    assert len(log_api.records) == 5
    assert otel_redis.stats()["dropped_preconfigure"] - before == 3


def test_twenty_thousand_calls_from_sync_threads_and_asyncio_stored_exactly_once(pipeline, r, counters):
    per_source = 4000  # sync, 4 threads, asyncio = 6 sources x 4000 = 24000 >= 20,000

    def burst(source: str) -> None:
        for i in range(per_source):
            log_info(f"{source}:{i}", component=source)

    async def aio() -> None:
        async def task(start: int) -> None:
            for i in range(start, start + per_source // 4):
                log_info(f"aio:{i}", component="aio")
                if i % 100 == 0:
                    await asyncio.sleep(0)

        await asyncio.gather(*(task(k * per_source // 4) for k in range(4)))

    threads = [threading.Thread(target=burst, args=(f"t{n}",)) for n in range(4)]
    loop_thread = threading.Thread(target=lambda: asyncio.run(aio()))
    for t in [*threads, loop_thread]:
        t.start()
    burst("sync")
    for t in [*threads, loop_thread]:
        t.join()
    assert otel_redis.force_flush()
    total = 6 * per_source
    assert r.zcard("idx:log:all") == total
    bodies = [rec["body"] for rec in _records(r)]
    assert len(set(bodies)) == total
    for source in ("sync", "t0", "t1", "t2", "t3", "aio"):
        assert r.zcard(f"idx:log:component:{source}") == per_source
    assert r.xlen("stream:logs") == total
    assert counters.exported == total and counters.dropped == 0


def test_component_isolation_between_threads_and_tasks(pipeline, r):
    def worker(name: str) -> None:
        for i in range(200):
            log_info(f"{name}-{i}", component=name)

    async def coro(name: str) -> None:
        for i in range(200):
            log_info(f"{name}-{i}", component=name)
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(coro("task-a"), coro("task-b"))

    threads = [threading.Thread(target=worker, args=(f"thread-{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    asyncio.run(main())
    for t in threads:
        t.join()
    otel_redis.force_flush()
    recs = _records(r)
    assert len(recs) == 1000
    for rec in recs:
        assert rec["body"].rsplit("-", 1)[0] == rec["component"]


def test_component_stored_exactly_as_passed_including_empty_and_none(pipeline, r):
    log_info("none")
    log_info("empty", component="")
    log_info("odd", component="a:b *c\nd")
    otel_redis.force_flush()
    recs = {rec["body"]: rec for rec in _records(r)}
    assert "component" not in recs["none"] and "component" not in recs["empty"]
    assert recs["odd"]["component"] == "a:b *c\nd"
    assert r.zcard("idx:log:component:a%3Ab%20%2Ac%0Ad") == 1


def test_unserialisable_attributes_unicode_and_truncation(pipeline, r):
    import datetime

    class Weird:
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    huge = "x" * (pipeline.settings.max_message_bytes + 500)
    log_info(
        "héllo 🌍\nsecond line",
        component="ünï",
        obj=object(),
        raw=b"\xff\x00bytes",
        tags={"b", "a"},
        when=datetime.datetime(2024, 1, 15, 10, 30, tzinfo=datetime.timezone.utc),
        err=ValueError("bad"),
        nested={"k": [1, {"z": None}], 3: "int key"},
        weird=Weird(),
    )
    log_info(huge, component="big")
    otel_redis.force_flush()
    recs = {rec["component"]: rec for rec in _records(r)}
    uni = recs["ünï"]
    assert uni["body"] == "héllo 🌍\nsecond line"
    attrs = json.loads(uni["attrs"])
    assert attrs["obj"].startswith("<object object")
    assert attrs["raw"] == "base64:/wBieXRlcw=="
    assert attrs["tags"] == ["a", "b"]
    assert attrs["when"].startswith("2024-01-15T10:30:00")
    assert attrs["err"] == "ValueError: bad"
    assert attrs["nested"] == {"k": [1, {"z": None}], "3": "int key"}
    assert "Weird" in attrs["weird"]
    big = recs["big"]["body"]
    assert big.endswith("...[truncated 500 bytes]")
    assert len(big.encode()) < len(huge)


def test_log_calls_never_raise(pipeline):
    class Evil:
        def __str__(self) -> str:
            raise RuntimeError

        __repr__ = __str__

    log_info(Evil(), component=Evil(), x=Evil())  # must not raise
    log_event(Evil(), data=Evil())  # type: ignore[arg-type]


def test_unreachable_redis_does_not_block_and_counts_retries_and_drops(settings, tmp_path):
    """A server that accepts connections but never answers: the export thread hangs in its timeout
    while the application keeps logging; after the retries the batch is dropped and counted."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted = threading.Event()
    conns = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    counters = PipelineCounters()
    cfg = settings.with_overrides(
        redis_url=f"redis://127.0.0.1:{port}/0", socket_timeout_s=0.2, retry_attempts=2, retry_backoff_cap_s=0.01,
        batch_delay_ms=10,
    )
    exporter = RedisLogRecordExporter(settings=cfg, counters=counters)
    otel_redis.configure(settings=cfg, exporter=exporter, set_global_provider=False)
    try:
        log_info("first", component="x")
        assert accepted.wait(10), "the exporter never tried to connect"
        for i in range(1000):  # the worker is stuck on the silent server; these must not wait for it
            log_info(f"while stuck {i}", component="x")
        otel_redis.force_flush()
        assert counters.retried >= 2
        assert counters.dropped_export_failed == 1001
        assert counters.failed_batches >= 1
        assert otel_redis.stats()["dropped"] >= 1001
    finally:
        otel_redis.shutdown()
        listener.close()
        for c in conns:
            c.close()


def test_queue_full_drops_are_counted(settings, r):
    """Each record refused by a full queue is counted once, and every record admitted is stored:
    nothing is evicted from the SDK's queue unseen."""
    counters = PipelineCounters()
    cfg = settings.with_overrides(max_queue_size=10, max_export_batch_size=10, socket_timeout_s=120.0,
                                  batch_delay_ms=3_600_000)
    r.execute_command("CLIENT", "PAUSE", 600000, "WRITE")  # Redis stalls: the first batch's write waits
    try:
        exporter = RedisLogRecordExporter(settings=cfg, counters=counters)
        pipe = otel_redis.configure(settings=cfg, exporter=exporter, set_global_provider=False)
        for i in range(10):
            log_info(f"first {i}")
        wait_until(lambda: pipe.processor.queue_length() == 0, message="the first batch reached the exporter")
        for i in range(15):  # 10 fill the queue behind the stuck batch, 5 overflow it
            log_info(f"then {i}")
        assert counters.dropped_queue_full == 5
        r.execute_command("CLIENT", "UNPAUSE")
        otel_redis.shutdown()
    finally:
        r.execute_command("CLIENT", "UNPAUSE")
        otel_redis.shutdown()
    assert counters.emitted == 25 and counters.exported == 20 and counters.dropped == 5
    assert r.zcard(schema.IDX_LOG_ALL) == 20


def test_drops_are_reported_by_a_rate_limited_warning(caplog):
    counters = PipelineCounters()
    with caplog.at_level(logging.WARNING, logger="otel_redis"):
        counters.add("dropped_queue_full", 3)
        counters.maybe_warn("queue full")
        counters.add("dropped_queue_full", 2)
        counters.maybe_warn("queue full")  # within the minute: silent
    messages = [rec.getMessage() for rec in caplog.records if rec.name.startswith("otel_redis")]
    assert len(messages) == 1
    assert "dropped 3 log records" in messages[0]


@pytest.mark.e2e
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_logging_after_fork_is_stored(pipeline, r):
    log_info("parent before fork", component="parent")
    otel_redis.force_flush()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            log_info("hello from the child", component="child")
            code = 0 if otel_redis.force_flush() else 3
        except BaseException:  # noqa: BLE001
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    log_info("parent after fork", component="parent")
    otel_redis.force_flush()
    bodies = sorted(rec["body"] for rec in _records(r))
    assert bodies == ["hello from the child", "parent after fork", "parent before fork"]
