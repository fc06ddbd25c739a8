"""The OTLP receiver over the network: official SDK exporters, hand-made bodies, every refusal."""

from __future__ import annotations

import gzip
import json
import time

import grpc
import httpx
import pytest
from google.protobuf.json_format import MessageToDict
from google.rpc import error_details_pb2, status_pb2
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.sdk._logs.export import LogRecordExportResult

from collector.convert import request_from_entries
from collector.receiver import Receiver
from otel_redis.store import trace_keys

from .conftest import INGEST_TOKEN
from .otlp_helpers import SdkSender, canonical, span_context

#: a recent time with every nanosecond digit set (records older than the retention expire at once)
T0 = (time.time_ns() // 1_000_000_000 - 120) * 1_000_000_000 + 123_456_789
TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C
SPAN_ID = 0xEEE19B7EC3C1B174


def stored(store):
    keys = [k.decode() for k in store.client.zrange("idx:log:all", 0, -1) + store.client.zrange("idx:req:all", 0, -1)]
    return [entry for _key, entry in store.fetch(keys)]


def emit_everything(sender: SdkSender) -> None:
    """One record of each interesting shape."""
    logger = sender.logger("checkout.scope", "2.1.0")
    logger.emit(
        LogRecord(
            timestamp=T0,
            observed_timestamp=T0 + 100_000_000,
            context=span_context(TRACE_ID, SPAN_ID),
            severity_number=SeverityNumber.WARN2,
            severity_text="warn-ish",
            body="payment took long",
            attributes={"component": "payments", "amount": 12.5, "items": 3, "ok": True, "tags": ["a", "b"],
                        "client.address": "10.1.2.3", "enduser.id": "alice"},
            event_name="payment.slow",
        )
    )
    logger.emit(
        LogRecord(
            timestamp=T0 + 1_000_000_001,
            severity_number=SeverityNumber.ERROR,
            body={"nested": {"k": [1, 2.0, "x", None]}, "raw": b"\x00\x01\xfe"},
            attributes={"http.request.method": "POST", "http.response.status_code": 502, "url.path": "/pay",
                        "http.route": "/pay", "client.address": "192.0.2.7", "server.address": "shop.example",
                        "http.server.response_time_ms": 41.5, "note": "upstream"},
        )
    )
    sender.logger("other.scope").emit(LogRecord(severity_number=SeverityNumber.INFO, body="no timestamp, no component"))


@pytest.mark.parametrize("protocol,gzipped", [("http", False), ("http", True), ("grpc", False), ("grpc", True)])
def test_official_exporters_store_every_field(protocol, gzipped, receiver: Receiver, store):
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

        exporter = HttpExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/logs",
                                compression=HttpCompression.Gzip if gzipped else HttpCompression.NoCompression)
    else:
        exporter = GrpcExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True,
                                compression=grpc.Compression.Gzip if gzipped else grpc.Compression.NoCompression)
    sender = SdkSender(exporter, {"service.name": f"shop-{protocol}", "deployment.environment": "test"})
    emit_everything(sender)
    sender.close()

    entries = stored(store)
    assert len(entries) == 3
    by_body = {str(e.body): e for e in entries}
    slow = by_body["payment took long"]
    assert slow.component == "payments"  # the component attribute wins over service.name
    assert slow.level == "WARNING" and slow.severity_number == 14 and slow.severity_text == "warn-ish"
    assert slow.trace_id == f"{TRACE_ID:032x}" and slow.span_id == f"{SPAN_ID:016x}" and slow.trace_flags == 1
    assert slow.timestamp_ns == T0 and slow.observed_ns == T0 + 100_000_000
    assert slow.event == "payment.slow"
    assert slow.attributes["amount"] == 12.5 and slow.attributes["tags"] == ["a", "b"]
    assert slow.resource["service.name"] == f"shop-{protocol}"
    assert (slow.scope_name, slow.scope_version) == ("checkout.scope", "2.1.0")
    request = next(e for e in entries if e.request is not None)
    assert request.request.status_code == 502 and request.request.method == "POST"
    assert request.request.client_ip == "192.0.2.7" and request.component == f"shop-{protocol}"
    plain = by_body["no timestamp, no component"]
    assert plain.component == f"shop-{protocol}"

    # indexed like in-process records
    client = store.client
    assert len(trace_keys(client, f"{TRACE_ID:032x}")) == 1
    assert client.zcard("idx:log:component:payments") == 1
    assert client.zcard("idx:log:user:alice") == 1
    assert client.zcard("idx:req:status:502") == 1 and client.zcard("idx:req:errors") == 1
    assert client.zcard("idx:req:ip:192.0.2.7") == 1

    # and nothing was lost: the stored records rebuild exactly what the SDK put on the wire
    assert canonical([request_from_entries(entries)]) == canonical([sender.sent()])


def _post(receiver: Receiver, body: bytes, content_type: str = "application/x-protobuf", **headers: str) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{receiver.http_port}/v1/logs",
        content=body,
        headers={"content-type": content_type, **headers},
        timeout=10,
    )


HAND_MADE_JSON = {
    "resourceLogs": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "curl-svc"}}]},
            "scopeLogs": [
                {
                    "scope": {"name": "hand", "version": "0.1"},
                    "logRecords": [
                        {
                            "timeUnixNano": str(T0 + 42),
                            "severityNumber": 17,
                            "severityText": "ERROR",
                            "body": {"stringValue": "disk full"},
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "attributes": [
                                {"key": "bytes", "value": {"bytesValue": "AAEC"}},
                                {"key": "ratio", "value": {"doubleValue": 0.25}},
                                {"key": "count", "value": {"intValue": "7"}},
                            ],
                            "unknownFutureField": {"ignored": True},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_hand_made_json_with_hex_ids(receiver, store):
    response = _post(receiver, json.dumps(HAND_MADE_JSON).encode(), "application/json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert json.loads(response.content) == {}
    (entry,) = stored(store)
    assert entry.trace_id == "5b8efff798038103d269b633813fc60c"  # hex, not misread as base64
    assert entry.span_id == "eee19b7ec3c1b174"
    assert entry.timestamp_ns == T0 + 42
    assert entry.level == "ERROR" and entry.component == "curl-svc" and entry.body == "disk full"
    assert entry.attributes == {"bytes": "AAEC", "ratio": 0.25, "count": 7}
    rebuilt = request_from_entries([entry]).resource_logs[0].scope_logs[0].log_records[0]
    assert {kv.key: kv.value.WhichOneof("value") for kv in rebuilt.attributes} == {
        "bytes": "bytes_value", "ratio": "double_value", "count": "int_value"}
    assert rebuilt.attributes[0].value.bytes_value == b"\x00\x01\x02"


@pytest.mark.parametrize("kind", ["protobuf", "json"])
def test_gzip_bodies(kind, receiver, store):
    if kind == "json":
        body, content_type = json.dumps(HAND_MADE_JSON).encode(), "application/json"
    else:
        request = ExportLogsServiceRequest()
        rec = request.resource_logs.add().scope_logs.add().log_records.add()
        rec.body.string_value = "zipped"
        rec.time_unix_nano = T0
        body, content_type = request.SerializeToString(), "application/x-protobuf"
    response = _post(receiver, gzip.compress(body), content_type, **{"content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert len(stored(store)) == 1


def _status(response: httpx.Response) -> status_pb2.Status:
    return status_pb2.Status.FromString(response.content)


def _valid_protobuf(n: int = 3, body: str = "x" * 200) -> bytes:
    request = ExportLogsServiceRequest()
    scope_logs = request.resource_logs.add().scope_logs.add()
    for i in range(n):
        rec = scope_logs.log_records.add()
        rec.body.string_value = f"{body}-{i}"
    return request.SerializeToString()


@pytest.mark.parametrize(
    "body,content_type,encoding,status,message",
    [
        (b"\x0a\xff\xff\xff\xff\xff\xff", "application/x-protobuf", None, 400, "invalid protobuf"),
        (_valid_protobuf()[:-50], "application/x-protobuf", None, 400, "invalid protobuf"),
        (b'{"resourceLogs": [', "application/json", None, 400, "invalid JSON"),
        (b'{"resourceLogs": 5}', "application/json", None, 400, "not an OTLP"),
        (json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}).encode(),
         "application/json", None, 400, "traceId"),
        (gzip.compress(_valid_protobuf())[:-20], "application/x-protobuf", "gzip", 400, "gzip"),
        (b"not gzip at all", "application/x-protobuf", "gzip", 400, "gzip"),
        (_valid_protobuf(), "text/plain", None, 415, "Content-Type"),
        (_valid_protobuf(), "application/x-protobuf", "br", 415, "Content-Encoding"),
        (_valid_protobuf(2000), "application/x-protobuf", None, 413, "larger than"),
        (gzip.compress(_valid_protobuf(2000)), "application/x-protobuf", "gzip", 413, "larger than"),
    ],
    ids=["garbage", "truncated", "bad-json", "wrong-shape", "bad-hex-id", "truncated-gzip", "not-gzip",
         "content-type", "encoding", "oversized", "gzip-bomb"],
)
def test_bad_bodies_are_refused_and_nothing_is_stored(body, content_type, encoding, status, message, receiver, store):
    headers = {"content-encoding": encoding} if encoding else {}
    before = receiver.ingestor.counters.snapshot()
    response = _post(receiver, body, content_type, **headers)
    assert response.status_code == status, response.text
    if content_type == "application/x-protobuf":
        assert response.headers["content-type"] == "application/x-protobuf"
        detail = _status(response)
    else:
        detail = status_pb2.Status()
        from google.protobuf.json_format import Parse

        Parse(response.text, detail)
    assert message in detail.message and detail.code != 0
    assert stored(store) == [] and store.client.dbsize() == 0
    after = receiver.ingestor.counters.snapshot()
    assert sum(after.values()) > sum(before.values())


def test_partial_success_names_the_rejected_records(receiver, store):
    request = ExportLogsServiceRequest()
    scope_logs = request.resource_logs.add().scope_logs.add()
    good = scope_logs.log_records.add()
    good.body.string_value = "good"
    bad = scope_logs.log_records.add()
    bad.body.string_value = "bad"
    bad.trace_id = b"\x01\x02\x03"
    response = _post(receiver, request.SerializeToString())
    assert response.status_code == 200
    result = ExportLogsServiceResponse.FromString(response.content)
    assert result.partial_success.rejected_log_records == 1
    assert "trace_id must be 16 bytes" in result.partial_success.error_message
    assert [e.body for e in stored(store)] == ["good"]


def test_bearer_token_is_required_when_configured(guarded_receiver, store):
    body = _valid_protobuf(1)
    refused = _post(guarded_receiver, body)
    assert refused.status_code == 401 and "token" in _status(refused).message
    assert _post(guarded_receiver, body, authorization="Bearer wrong").status_code == 401
    assert store.client.dbsize() == 0
    assert _post(guarded_receiver, body, authorization=f"Bearer {INGEST_TOKEN}").status_code == 200
    assert len(stored(store)) == 1

    exporter = GrpcExporter(endpoint=f"127.0.0.1:{guarded_receiver.grpc_port}", insecure=True,
                            headers={"authorization": f"Bearer {INGEST_TOKEN}"})
    sender = SdkSender(exporter, {"service.name": "grpc-auth"})
    sender.logger("s").emit(LogRecord(body="via grpc with token"))
    sender.close()
    assert len(stored(store)) == 2
    stub = logs_service_pb2_grpc.LogsServiceStub(grpc.insecure_channel(f"127.0.0.1:{guarded_receiver.grpc_port}"))
    with pytest.raises(grpc.RpcError) as info:
        stub.Export(ExportLogsServiceRequest.FromString(body), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_overload_is_429_with_retry_after(guarded_receiver, store):
    slots = guarded_receiver.ingestor._slots
    assert slots.acquire(timeout=5)  # the one slot is busy
    try:
        response = _post(guarded_receiver, _valid_protobuf(1), authorization=f"Bearer {INGEST_TOKEN}")
        assert response.status_code == 429
        assert response.headers["retry-after"] == str(guarded_receiver.config.retry_after_s)
        stub = logs_service_pb2_grpc.LogsServiceStub(grpc.insecure_channel(f"127.0.0.1:{guarded_receiver.grpc_port}"))
        with pytest.raises(grpc.RpcError) as info:
            stub.Export(ExportLogsServiceRequest.FromString(_valid_protobuf(1)), timeout=10,
                        metadata=(("authorization", f"Bearer {INGEST_TOKEN}"),))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(info.value.trailing_metadata())
        retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
        assert retry.retry_delay.seconds == guarded_receiver.config.retry_after_s
    finally:
        slots.release()
    assert store.client.dbsize() == 0


@pytest.fixture(scope="module")
def dead_redis_receiver(tmp_path_factory):
    from otel_redis.config import load_settings

    from .otlp_helpers import start_receiver_on_free_ports

    missing = tmp_path_factory.mktemp("gone") / "redis.sock"
    settings = load_settings({}).with_overrides(redis_url=f"unix://{missing}", retry_attempts=0,
                                                data_dir=tmp_path_factory.mktemp("d"))
    rec = start_receiver_on_free_ports(settings, retry_after_s=3)
    yield rec
    rec.stop()


def test_redis_unavailable_is_503_with_retry_after(dead_redis_receiver):
    response = _post(dead_redis_receiver, _valid_protobuf(1))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert "unavailable" in _status(response).message
    stub = logs_service_pb2_grpc.LogsServiceStub(grpc.insecure_channel(f"127.0.0.1:{dead_redis_receiver.grpc_port}"))
    with pytest.raises(grpc.RpcError) as info:
        stub.Export(ExportLogsServiceRequest.FromString(_valid_protobuf(1)), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    details = status_pb2.Status.FromString(dict(info.value.trailing_metadata())["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert details.details[0].Unpack(retry) and retry.retry_delay.seconds == 3
    # the official exporter gets a failure, never a success
    exporter = HttpExporter(endpoint=f"http://127.0.0.1:{dead_redis_receiver.http_port}/v1/logs", timeout=1)
    sender = SdkSender(exporter, {"service.name": "x"})
    sender.logger("s").emit(LogRecord(body="lost?"))
    assert exporter.export(sender.memory.get_finished_logs()) == LogRecordExportResult.FAILURE
    sender.close()


def test_grpc_malformed_and_oversized(receiver, store):
    channel = grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}")
    export = channel.unary_unary(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.RpcError) as info:
        export(b"\x0a\xff\xff\xff\xff\xff\xff", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid protobuf" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        export(_valid_protobuf(2000), timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert store.client.dbsize() == 0
    ok = ExportLogsServiceResponse.FromString(export(_valid_protobuf(2), timeout=10))
    assert not ok.HasField("partial_success")
    assert len(stored(store)) == 2


def test_every_anyvalue_kind_round_trips_through_redis(receiver, store):
    """bytes, NaN, nested kvlists, unset timestamps, odd request attributes: rebuilt exactly."""
    doc = {
        "resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "edge"}},
                                        {"key": "blob", "value": {"bytesValue": "/wA="}}],
                         "droppedAttributesCount": 2},
            "schemaUrl": "https://opentelemetry.io/schemas/1.26.0",
            "scopeLogs": [{
                "scope": {"name": "s", "version": "1", "attributes": [{"key": "sa", "value": {"intValue": "1"}}]},
                "schemaUrl": "https://example/scope",
                "logRecords": [
                    {"observedTimeUnixNano": str(T0 + 5),
                     "body": {"kvlistValue": {"values": [
                         {"key": "b", "value": {"bytesValue": "AQID"}},
                         {"key": "nan", "value": {"doubleValue": "NaN"}},
                         {"key": "arr", "value": {"arrayValue": {"values": [{"intValue": "1"}, {}, {"boolValue": True}]}}},
                     ]}},
                     "attributes": [{"key": "http.request.method", "value": {"stringValue": "get"}},
                                    {"key": "http.response.status_code", "value": {"stringValue": "404"}},
                                    {"key": "component", "value": {"intValue": "5"}},
                                    {"key": "inf", "value": {"doubleValue": "-Infinity"}}],
                     "droppedAttributesCount": 1, "flags": 257},
                    {"timeUnixNano": str(T0 + 7), "body": {"bytesValue": "AAAA"}},
                    {"timeUnixNano": str(T0 + 8)},
                    {"timeUnixNano": str(T0 + 9), "body": {}},
                ]}]}]}
    response = _post(receiver, json.dumps(doc).encode(), "application/json")
    assert response.status_code == 200, response.text
    sent = ExportLogsServiceRequest()
    from google.protobuf.json_format import ParseDict

    ParseDict(doc, sent)
    entries = stored(store)
    assert len(entries) == 4
    rebuilt = request_from_entries(entries)
    assert canonical([rebuilt]) == canonical([sent])  # MessageToDict renders NaN as "NaN": comparable
    req = next(e for e in entries if e.request is not None)
    assert req.request.method == "GET" and req.request.status_code == 404  # normalised for the indexes


def test_healthz_reports_counters(receiver):
    body = httpx.get(f"http://127.0.0.1:{receiver.http_port}/healthz").json()
    assert body["status"] == "ok" and "accepted_records" in body["collector"]["receiver"]


def test_response_is_plain_json_for_empty_success(receiver):
    response = _post(receiver, b"{}", "application/json")
    assert response.status_code == 200 and MessageToDict(ExportLogsServiceResponse()) == json.loads(response.text)


def test_large_request_is_written_in_batches(receiver, store):
    store.client.config_resetstat()
    response = _post(receiver, _valid_protobuf(1200, body="small"))
    assert response.status_code == 200
    assert store.client.zcard("idx:log:all") == 1200
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in store.client.info("commandstats").items()}
    assert calls["zadd"] >= 3 * 2  # idx:log:all and the level index, once per batch of 512
