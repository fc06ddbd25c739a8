"""Fuzzing the OTLP receiver (HTTP and gRPC) with hypothesis-built protobuf and JSON bodies.

Whatever the body, the answer is a 2xx or a 4xx, never a 5xx (which tells a sender to retry
forever); records that were refused are named in ``partial_success`` (or, when every record was
refused, in the 400 / INVALID_ARGUMENT answer), and the records that were accepted are stored.
"""

from __future__ import annotations

import math

import grpc
import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from collector.receiver import Receiver

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])

NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e306, -1e306, math.inf]))
TEXT = st.text(max_size=30)
KEYS = st.one_of(
    TEXT, st.sampled_from(["http.request.method", "http.response.status_code", "http.server.response_time_ms",
                           "url.path", "component", "client.address", "user_agent.original"])
)


def _fill(value: AnyValue, data: st.DataObject, depth: int = 0) -> None:
    kind = data.draw(st.sampled_from(["s", "i", "d", "b", "y"] + (["a", "k"] if depth < 2 else [])))
    if kind == "s":
        value.string_value = data.draw(TEXT)
    elif kind == "i":
        value.int_value = data.draw(st.integers(min_value=-(2**63), max_value=2**63 - 1))
    elif kind == "d":
        value.double_value = data.draw(NUMBERS)
    elif kind == "b":
        value.bool_value = data.draw(st.booleans())
    elif kind == "y":
        value.bytes_value = data.draw(st.binary(max_size=20))
    elif kind == "a":
        for _ in range(data.draw(st.integers(0, 3))):
            _fill(value.array_value.values.add(), data, depth + 1)
    else:
        for _ in range(data.draw(st.integers(0, 3))):
            kv = value.kvlist_value.values.add()
            kv.key = data.draw(TEXT)
            _fill(kv.value, data, depth + 1)


def _request(data: st.DataObject) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    for _ in range(data.draw(st.integers(1, 2))):
        resource_logs = request.resource_logs.add()
        for _ in range(data.draw(st.integers(0, 2))):
            kv = resource_logs.resource.attributes.add()
            kv.key = data.draw(st.one_of(TEXT, st.just("service.name")))
            _fill(kv.value, data)
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = data.draw(TEXT)
        for _ in range(data.draw(st.integers(0, 4))):
            record = scope_logs.log_records.add()
            record.time_unix_nano = data.draw(st.integers(0, 2**64 - 1))
            record.severity_number = data.draw(st.integers(0, 30))
            record.event_name = data.draw(TEXT)
            record.trace_id = data.draw(st.one_of(st.just(b""), st.binary(min_size=16, max_size=16), st.binary(max_size=20)))
            record.span_id = data.draw(st.one_of(st.just(b""), st.binary(min_size=8, max_size=8), st.binary(max_size=9)))
            record.flags = data.draw(st.integers(0, 2**32 - 1))
            if data.draw(st.booleans()):
                _fill(record.body, data)
            for _ in range(data.draw(st.integers(0, 5))):
                kv = record.attributes.add()
                kv.key = data.draw(KEYS)
                _fill(kv.value, data)
    return request


def _records_in(request: ExportLogsServiceRequest) -> int:
    return sum(len(s.log_records) for rl in request.resource_logs for s in rl.scope_logs)


def _check_http(response: httpx.Response, sent: int) -> None:
    assert response.status_code < 500, response.text
    if response.status_code == 200 and response.content:
        result = ExportLogsServiceResponse.FromString(response.content)
        if result.HasField("partial_success"):
            assert 0 < result.partial_success.rejected_log_records <= sent
            assert result.partial_success.error_message
    elif response.status_code == 400 and sent and response.headers["content-type"] == "application/x-protobuf":
        # every record refused: the same response shape, with partial_success, or a Status for a bad body
        result = ExportLogsServiceResponse.FromString(response.content)
        assert result.partial_success.rejected_log_records in (0, sent)


def _post(receiver: Receiver, body: bytes, content_type: str) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/logs", content=body,
                      headers={"content-type": content_type}, timeout=10)


@FUZZ
@given(data=st.data())
def test_http_protobuf_bodies_are_never_a_5xx(receiver, data):
    request = _request(data)
    _check_http(_post(receiver, request.SerializeToString(), "application/x-protobuf"), _records_in(request))


@FUZZ
@given(data=st.data())
def test_grpc_messages_are_never_internal_or_unavailable(receiver, data):
    request = _request(data)
    channel = grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}")
    export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
    try:
        result = ExportLogsServiceResponse.FromString(export(request.SerializeToString(), timeout=10))
        if result.HasField("partial_success"):
            assert 0 < result.partial_success.rejected_log_records <= _records_in(request)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
        assert "rejected" in exc.details()
    finally:
        channel.close()


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.text(max_size=20))
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)),
    max_leaves=10,
)
OTLP_JSON_RECORD = st.fixed_dictionaries({}, optional={
    "timeUnixNano": st.one_of(st.integers(0, 2**64 - 1).map(str), JSON_SCALARS),
    "severityNumber": st.one_of(st.integers(-5, 40), JSON_SCALARS),
    "body": st.one_of(st.fixed_dictionaries({"stringValue": st.text(max_size=20)}),
                      st.fixed_dictionaries({"doubleValue": st.floats(allow_nan=False)}), JSON_VALUES),
    "traceId": st.one_of(st.text("0123456789abcdef", max_size=40), JSON_SCALARS),
    "attributes": st.lists(st.fixed_dictionaries({"key": st.text(max_size=20), "value": st.one_of(
        st.fixed_dictionaries({"stringValue": st.text(max_size=20)}),
        st.fixed_dictionaries({"intValue": st.integers(-(2**70), 2**70).map(str)}),
        st.fixed_dictionaries({"doubleValue": st.sampled_from([1e306, -1.5, 0.0])}),
        JSON_VALUES,
    )}), max_size=4),
})
OTLP_JSON = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({"resourceLogs": st.lists(st.fixed_dictionaries({"scopeLogs": st.lists(
        st.fixed_dictionaries({"logRecords": st.lists(OTLP_JSON_RECORD, max_size=4)}), max_size=2)}), max_size=2)}),
)


def _json_records_in(doc: dict) -> int:
    """The log records of a body the receiver parsed (proto JSON takes camelCase and field names)."""
    def items(parent: dict, *names: str) -> list:
        return next((parent[n] for n in names if n in parent), None) or []

    return sum(len(items(scope, "logRecords", "log_records"))
               for resource in items(doc, "resourceLogs", "resource_logs")
               for scope in items(resource, "scopeLogs", "scope_logs"))


@FUZZ
@given(doc=OTLP_JSON)
def test_http_json_bodies_are_never_a_5xx(receiver, doc):
    response = _post(receiver, orjson.dumps(doc), "application/json")
    assert response.status_code in (200, 400), response.text
    body = orjson.loads(response.content or b"{}")
    if response.status_code == 200:
        rejected = body.get("partialSuccess", {}).get("rejectedLogRecords")
        assert rejected is None or 0 < int(rejected) <= _json_records_in(doc)
    elif "partialSuccess" in body:  # every record refused: the count is all of them
        sent = _json_records_in(doc)
        assert sent and int(body["partialSuccess"].get("rejectedLogRecords", 0)) == sent, (body, doc)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_are_a_4xx(receiver, body):
    assert _post(receiver, body, "application/x-protobuf").status_code in (200, 400)
    assert _post(receiver, body, "application/json").status_code in (200, 400)


def test_an_absurd_response_time_among_100_good_records_is_stored_clamped(receiver, store):
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    for i in range(101):
        record = records.add()
        record.body.string_value = f"GET /x {i}"
        for key, value in (("http.request.method", "GET"), ("url.path", "/x")):
            kv = record.attributes.add()
            kv.key, kv.value.string_value = key, value
        kv = record.attributes.add()
        kv.key, kv.value.int_value = "http.response.status_code", 200
        kv = record.attributes.add()
        kv.key, kv.value.double_value = "http.server.response_time_ms", 1e306 if i == 50 else 3.0
    response = _post(receiver, request.SerializeToString(), "application/x-protobuf")
    assert response.status_code == 200
    assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")
    assert store.client.zcard("idx:req:all") == 101


def test_every_record_refused_is_a_400_with_partial_success(receiver, store):
    request = ExportLogsServiceRequest()
    bad = request.resource_logs.add().scope_logs.add().log_records.add()
    bad.trace_id = b"\x01\x02\x03"
    response = _post(receiver, request.SerializeToString(), "application/x-protobuf")
    assert response.status_code == 400
    result = ExportLogsServiceResponse.FromString(response.content)
    assert result.partial_success.rejected_log_records == 1
    assert "trace_id" in result.partial_success.error_message
    channel = grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}")
    try:
        export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        try:
            export(request.SerializeToString(), timeout=10)
            raise AssertionError("expected INVALID_ARGUMENT")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "1 log records rejected" in exc.details() and "trace_id" in exc.details()
    finally:
        channel.close()
    assert store.client.dbsize() == 0
