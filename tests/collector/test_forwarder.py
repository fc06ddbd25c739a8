"""The forwarder end to end: SDK -> receiver -> Redis -> forwarder -> a real upstream OTLP sink."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Iterator

import pytest
import redis
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from collector.config import load_forwarder_settings
from collector.counters import ForwarderCounters, forwarder_backlog, published_forwarders
from collector.forwarder import Forwarder
from collector.receiver import Receiver
from collector.upstream import make_upstream
from otel_redis.connection import make_client
from otel_redis.exporter import RedisLogRecordExporter
from tests.servers import ROOT

from .otlp_helpers import SdkSender, canonical, span_context
from .sink import Sink
from .test_receiver import T0, TRACE_ID, SPAN_ID, emit_everything
from tests.waiting import wait_until

GROUP = "otel-redis-forwarder"


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


@contextlib.contextmanager
def forwarding(settings, sink: Sink, monkeypatch, protocol: str = "http", **overrides) -> Iterator[Forwarder]:
    """A forwarder running in a thread, configured by the standard OTEL_EXPORTER_OTLP_* variables."""
    for name, value in sink.env(protocol).items():
        monkeypatch.setenv(name, value)
    config = load_forwarder_settings().with_overrides(
        **{"consumer": f"test-{protocol}", "block_ms": 100, "backoff_base_s": 0.01, "backoff_cap_s": 0.2, **overrides}
    )
    forwarder = Forwarder(make_client(settings), settings, config, make_upstream(config.protocol), ForwarderCounters())
    stop = threading.Event()
    thread = threading.Thread(target=forwarder.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield forwarder
    finally:
        stop.set()
        thread.join(15)
        forwarder.close()


def send_numbered(receiver: Receiver, n: int, service: str = "numbered") -> list[str]:
    """``n`` records with an ``id`` attribute, through the official HTTP exporter and the receiver."""
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    exporter = HttpExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/logs")
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=100))
    logger = provider.get_logger("numbers")
    ids = [f"{service}-{i}" for i in range(n)]
    for i, rid in enumerate(ids):
        attrs = {"id": rid}
        if i % 5 == 0:  # some request records too, so both streams are forwarded
            attrs.update({"http.request.method": "GET", "http.response.status_code": 200, "url.path": f"/n/{i}"})
        logger.emit(LogRecord(body=f"record {i}", severity_number=SeverityNumber.INFO, attributes=attrs))
    provider.force_flush()
    provider.shutdown()
    return ids


def pending(r: redis.Redis) -> int:
    return sum(b["pending"] for b in forwarder_backlog(r, GROUP).values())


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_round_trip_keeps_every_field(protocol, receiver, store, sink, monkeypatch):
    sender = SdkSender(HttpExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/logs"),
                       {"service.name": "round-trip", "host.name": "h1"})
    emit_everything(sender)
    sender.close()
    with forwarding(receiver.settings, sink, monkeypatch, protocol) as forwarder:
        wait_until(lambda: forwarder.counters.forwarded == 3, message="3 records forwarded")
    assert canonical(sink.requests) == canonical([sender.sent()])
    assert forwarder.counters.snapshot()["failed"] == 0
    assert pending(store.client) == 0


def test_in_process_records_are_forwarded_with_their_component_and_request_fields(settings, r, sink, monkeypatch):
    """Records of the in-process exporter (no OTLP origin) go out as the OTel records they were."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "in-proc"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("app", "3")
    logger.emit(LogRecord(timestamp=T0, observed_timestamp=T0 + 5, context=span_context(TRACE_ID, SPAN_ID),
                          severity_number=SeverityNumber.ERROR, severity_text="ERROR", body="boom",
                          attributes={"component": "proxy", "retries": 2}))
    logger.emit(LogRecord(timestamp=T0 + 1, observed_timestamp=T0 + 1, severity_number=SeverityNumber.INFO,
                          severity_text="INFO", body="GET /x",
                          attributes={"http.request.method": "GET", "http.response.status_code": 404,
                                      "url.path": "/x", "client.address": "10.0.0.9",
                                      "http.server.response_time_ms": 3.5}))
    exporter = RedisLogRecordExporter(settings=settings)
    big = LoggerProvider(resource=Resource.create({"service.name": "in-proc"}))
    big_memory = InMemoryLogRecordExporter()
    big.add_log_record_processor(SimpleLogRecordProcessor(big_memory))
    big.get_logger("app").emit(LogRecord(timestamp=T0 + 2, body="huge", attributes={"n": 2**70}))
    exporter.export(big_memory.get_finished_logs())  # beyond int64: stored, and sent on as text
    exporter.export(memory.get_finished_logs())
    exporter.shutdown()
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

    with forwarding(settings, sink, monkeypatch) as forwarder:
        wait_until(lambda: forwarder.counters.forwarded == 3, message="3 records forwarded")
    forwarded = canonical(sink.requests)
    huge = next(item for item in forwarded if item["record"]["body"] == {"stringValue": "huge"})
    assert huge["record"]["attributes"]["n"] == {"stringValue": str(2**70)}
    forwarded.remove(huge)
    assert forwarded == canonical([encode_logs(memory.get_finished_logs())])


def test_chaos_upstream_refuses_70_percent(receiver, store, sink, monkeypatch):
    sink.fail_ratio = 0.7
    ids = send_numbered(receiver, 400, "chaos")
    with forwarding(receiver.settings, sink, monkeypatch, batch_size=25) as forwarder:
        wait_until(lambda: set(sink.record_ids()) >= set(ids), message="every record at the sink")
        wait_until(lambda: pending(store.client) == 0, message="every entry acknowledged")
    received = sink.record_ids()
    assert set(received) == set(ids)
    assert len(received) == len(ids)  # retried batches were refused, so nothing arrived twice
    assert sink.refused > 0 and forwarder.counters.retried == sink.refused
    assert forwarder.counters.forwarded == len(ids) and forwarder.counters.failed == 0
    published = published_forwarders(store.client)["test-http"]  # what /healthz and /metrics of any process see
    assert published["forwarded"] == len(ids) and published["retried"] == sink.refused


def test_grpc_chaos_with_retry_info(receiver, store, sink, monkeypatch):
    sink.fail_ratio = 0.7
    ids = send_numbered(receiver, 100, "grpc-chaos")
    with forwarding(receiver.settings, sink, monkeypatch, "grpc", batch_size=10):
        wait_until(lambda: set(sink.record_ids()) >= set(ids), message="every record at the sink")
    assert sorted(sink.record_ids()) == sorted(ids)


def test_retry_after_is_honoured(receiver, store, sink, monkeypatch):
    sink.fail_ratio = 1.0
    sink.retry_after = "1"
    send_numbered(receiver, 3, "patient")
    with forwarding(receiver.settings, sink, monkeypatch) as forwarder:
        wait_until(lambda: sink.attempts >= 1, message="a first attempt")
        sink.fail_ratio = 0.0
        wait_until(lambda: forwarder.counters.forwarded == 3, message="records forwarded")
    gap = sink.arrivals[1] - sink.arrivals[0]
    assert gap >= 0.95, f"retried after {gap:.2f}s although the upstream asked for 1s"


def test_abandoned_entries_are_claimed_by_another_forwarder(receiver, store, sink, monkeypatch):
    ids = send_numbered(receiver, 30, "abandoned")
    client = store.client
    for stream in ("stream:logs", "stream:requests"):
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    # a forwarder that read everything and died before acknowledging
    client.xreadgroup(GROUP, "dead-forwarder", {"stream:logs": ">", "stream:requests": ">"}, count=1000)
    assert pending(client) == 30
    with forwarding(receiver.settings, sink, monkeypatch, claim_idle_ms=300) as forwarder:
        wait_until(lambda: set(sink.record_ids()) >= set(ids), message="claimed records at the sink")
        wait_until(lambda: pending(client) == 0, message="claimed entries acknowledged")
    assert forwarder.counters.redelivered == 30


def test_two_forwarders_share_the_streams(receiver, store, sink, monkeypatch):
    ids = send_numbered(receiver, 300, "shared")
    with forwarding(receiver.settings, sink, monkeypatch, consumer="a", batch_size=20) as a:
        with forwarding(receiver.settings, sink, monkeypatch, consumer="b", batch_size=20) as b:
            wait_until(lambda: set(sink.record_ids()) >= set(ids), message="every record at the sink")
    assert sorted(sink.record_ids()) == sorted(ids)  # no failure: each record exactly once
    assert a.counters.forwarded + b.counters.forwarded == len(ids)


def test_expired_and_damaged_records_are_counted_and_acknowledged(receiver, store, sink, monkeypatch):
    send_numbered(receiver, 4, "gone")
    client = store.client
    keys = client.zrange("idx:log:all", 0, -1)
    client.delete(keys[0])  # expired before it could be forwarded
    client.hset(keys[1], "attrs", "[1, 2]")  # a damaged hash: cannot become an OTLP record
    with forwarding(receiver.settings, sink, monkeypatch) as forwarder:
        wait_until(lambda: sum(forwarder.counters.snapshot()[k] for k in ("forwarded", "expired", "failed")) == 4,
                 message="all handled")
    assert (forwarder.counters.forwarded, forwarder.counters.expired, forwarder.counters.failed) == (2, 1, 1)
    assert len(sink.record_ids()) == 2
    assert pending(client) == 0


def test_backlog_reports_lag_and_pending(receiver, store, sink, monkeypatch):
    send_numbered(receiver, 10, "lag")
    client = store.client
    for stream in ("stream:logs", "stream:requests"):
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    backlog = forwarder_backlog(client, GROUP)
    assert sum(b["lag"] for b in backlog.values()) == 10 and pending(client) == 0
    client.xreadgroup(GROUP, "reader", {"stream:logs": ">"}, count=3)
    backlog = forwarder_backlog(client, GROUP)
    assert backlog["stream:logs"]["pending"] == 3 and backlog["stream:logs"]["lag"] == 8 - 3


def _forwarder_process(redis_url: str, sink: Sink, consumer: str, tmp_path, **env: str) -> subprocess.Popen[bytes]:
    full_env = {
        **os.environ,
        **sink.env("http"),
        "REDIS_URL": redis_url,
        "OTEL_REDIS_DATA_DIR": str(tmp_path / "data"),
        "OTEL_REDIS_FORWARD_CONSUMER": consumer,
        "OTEL_REDIS_FORWARD_BATCH_SIZE": "20",
        "OTEL_REDIS_FORWARD_BLOCK_MS": "100",
        **env,
    }
    log = open(tmp_path / f"forward-{consumer}.log", "ab")
    code = "import sys; from otel_redis.cli import main; sys.exit(main(['forward']))"
    return subprocess.Popen([sys.executable, "-c", code], env=full_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.e2e
@pytest.mark.parametrize("same_consumer", [True, False], ids=["same-consumer", "other-consumer"])
def test_sigkill_mid_batch_then_restart_loses_nothing(same_consumer, receiver, store, sink, redis_url, tmp_path):
    ids = send_numbered(receiver, 200, "killed")
    sink.hold_after = 3  # the 4th batch is held open: the forwarder is killed while waiting for the answer
    first = _forwarder_process(redis_url, sink, "fwd-1", tmp_path)
    try:
        assert sink.holding.wait(60), (tmp_path / "forward-fwd-1.log").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    sink.release.set()  # the upstream took the held batch, but the forwarder died before XACK
    assert pending(store.client) > 0
    second = _forwarder_process(
        redis_url, sink, "fwd-1" if same_consumer else "fwd-2", tmp_path, OTEL_REDIS_FORWARD_CLAIM_IDLE_MS="300"
    )
    try:
        wait_until(lambda: set(sink.record_ids()) >= set(ids), message="every record after the restart")
        wait_until(lambda: pending(store.client) == 0, message="every entry acknowledged")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    received = sink.record_ids()
    assert set(received) == set(ids)  # at least once: nothing lost
    assert second.returncode == 0, (tmp_path / f"forward-{'fwd-1' if same_consumer else 'fwd-2'}.log").read_text()
    # the held batch reached the sink before the kill and again after: duplicates, and counted as possible ones
    duplicates = len(received) - len(set(received))
    published = published_forwarders(store.client)["fwd-1" if same_consumer else "fwd-2"]
    assert duplicates > 0 and published["redelivered"] >= duplicates


def test_forwarder_store_reads_are_pipelined(receiver, store, sink, monkeypatch):
    """One batch: one HGETALL per record, in one pipeline (a round trip), no per-record reads after."""
    send_numbered(receiver, 40, "pipelined")
    store.client.config_resetstat()
    with forwarding(receiver.settings, sink, monkeypatch, batch_size=100) as forwarder:
        wait_until(lambda: forwarder.counters.forwarded == 40, message="forwarded")
    stats = {k.removeprefix("cmdstat_"): v["calls"] for k, v in store.client.info("commandstats").items()}
    assert stats["hgetall"] == 40 and stats["xack"] <= 4


@pytest.mark.e2e
def test_forward_once_drains_and_exits(receiver, store, sink, redis_url, tmp_path):
    ids = send_numbered(receiver, 50, "once")
    env = {**os.environ, **sink.env("http"), "REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "d")}
    code = "import sys; from otel_redis.cli import main; sys.exit(main(['forward', '--once']))"
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(sink.record_ids()) == sorted(ids)
    assert pending(store.client) == 0
    (published,) = published_forwarders(store.client).values()  # published at exit
    assert published["forwarded"] == 50


def test_permanent_refusal_is_counted_failed_and_not_retried(receiver, store, sink, monkeypatch):
    sink.fail_ratio, sink.fail_status = 1.0, 400
    send_numbered(receiver, 5, "refused")
    with forwarding(receiver.settings, sink, monkeypatch) as forwarder:
        wait_until(lambda: forwarder.counters.failed == 5, message="the batch counted as failed")
        wait_until(lambda: pending(store.client) == 0, message="the refused entries acknowledged")
    assert sink.attempts == 1 and forwarder.counters.retried == 0 and forwarder.counters.forwarded == 0


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_batch_over_the_upstream_size_limit_is_sent_in_halves(protocol, receiver, store, sink, monkeypatch):
    sink.max_records = 7  # HTTP 413 / gRPC RESOURCE_EXHAUSTED without RetryInfo above that
    ids = send_numbered(receiver, 60, f"split-{protocol}")
    with forwarding(receiver.settings, sink, monkeypatch, protocol, batch_size=60) as forwarder:
        wait_until(lambda: forwarder.counters.forwarded == 60, message="every record forwarded")
    assert sorted(sink.record_ids()) == sorted(ids)
    assert forwarder.counters.split > 0 and forwarder.counters.failed == 0 and forwarder.counters.retried == 0


def test_forwarder_waits_out_a_redis_restart(tmp_path, sink, monkeypatch):
    """The buffer survives: Redis stops and comes back (append-only file), the forwarder carries on."""
    from otel_redis.config import load_settings
    from otel_redis.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    settings = load_settings({}).with_overrides(redis_url=server.url, data_dir=tmp_path / "data", retry_attempts=1)
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "restart"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("restart")

    def write(first: int, count: int) -> None:
        memory.clear()
        for i in range(first, first + count):
            logger.emit(LogRecord(body=f"r{i}", attributes={"id": f"restart-{i}"}))
        exporter = RedisLogRecordExporter(settings=settings)
        exporter.export(memory.get_finished_logs())
        exporter.shutdown()

    try:
        write(0, 20)
        with forwarding(settings, sink, monkeypatch) as forwarder:
            wait_until(lambda: forwarder.counters.forwarded == 20, message="the first records")
            server.stop()
            time.sleep(1.0)  # the forwarder meets a dead Redis for a while
            server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
            write(20, 20)
            wait_until(lambda: forwarder.counters.forwarded == 40, message="the records written after the restart")
        assert sorted(sink.record_ids()) == sorted(f"restart-{i}" for i in range(40))
    finally:
        server.stop()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_upstream_down_at_first_then_up(protocol, receiver, store, monkeypatch):
    ids = send_numbered(receiver, 30, f"late-{protocol}")
    late = Sink()  # ports chosen, nothing listening yet
    try:
        with forwarding(receiver.settings, late, monkeypatch, protocol) as forwarder:
            wait_until(lambda: forwarder.counters.retried >= 3, message="failed attempts against a closed port")
            late.start()
            wait_until(lambda: forwarder.counters.forwarded == 30, message="records forwarded once the upstream is up")
        assert sorted(late.record_ids()) == sorted(ids)
    finally:
        late.stop()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_standard_headers_and_gzip_reach_the_upstream(protocol, receiver, store, sink, monkeypatch):
    """OTEL_EXPORTER_OTLP_HEADERS (generic) and OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=gzip, as the
    official exporters read them, on every attempt."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,authorization=Bearer%20up-token")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "gzip")
    ids = send_numbered(receiver, 20, service="headers")
    with forwarding(receiver.settings, sink, monkeypatch, protocol) as forwarder:
        wait_until(lambda: forwarder.counters.forwarded == len(ids), message="20 records forwarded")
    assert sorted(sink.record_ids()) == sorted(ids)
    assert sink.headers and all(h.get("x-tenant") == "acme" for h in sink.headers)
    assert all(h.get("authorization") == "Bearer up-token" for h in sink.headers)
    if protocol == "http":
        assert all(h.get("content-encoding") == "gzip" for h in sink.headers)


def test_generic_http_endpoint_gets_the_logs_path(receiver, store, sink, monkeypatch):
    ids = send_numbered(receiver, 5, service="generic")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{sink.http_port}/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf")
    config = load_forwarder_settings().with_overrides(consumer="generic", block_ms=100)
    upstream = make_upstream(config.protocol)
    assert upstream.describe() == f"OTLP/HTTP http://127.0.0.1:{sink.http_port}/v1/logs"
    forwarder = Forwarder(make_client(receiver.settings), receiver.settings, config, upstream, ForwarderCounters())
    try:
        forwarder.drain(threading.Event())
    finally:
        forwarder.close()
    assert sorted(sink.record_ids()) == sorted(ids)
