"""The log API through its Sink seam: what a call hands the sink, and the pre-configure buffer."""

from __future__ import annotations

import otel_redis
from tests.otel_redis.conftest import MemorySink
from otel_redis import api, log_debug, log_error, log_event, log_info, log_request, log_response, log_trace


def test_a_call_hands_the_sink_one_record_with_its_parts(memory_sink):
    log_info("Server started", component="api_server", port=8080, trace_id="req-1", span_id="s-1")
    (rec,) = memory_sink.records
    assert (rec["levelno"], rec["body"], rec["event"]) == (20, "Server started", None)
    assert rec["attributes"] == {"port": 8080, "component": "api_server"}
    assert (rec["trace_id"], rec["span_id"]) == ("req-1", "s-1")


def test_an_error_becomes_exception_attributes_and_values_are_snapshotted(memory_sink):
    details = {"tries": [1]}
    try:
        raise ValueError("boom")
    except ValueError as exc:
        log_error("failed", error=exc, details=details)
    details["tries"].append(2)  # a later change by the caller does not reach the record
    (rec,) = memory_sink.records
    attrs = rec["attributes"]
    assert attrs["exception.type"] == "ValueError" and attrs["exception.message"] == "boom"
    assert "raise ValueError" in attrs["exception.stacktrace"] and "error" not in attrs
    assert attrs["details"] == {"tries": [1]}


def test_the_level_gate_set_with_the_sink_filters_calls(memory_sink):
    log_trace("t")  # the fixture's gate: TRACE
    api.set_sink(memory_sink, level=20)
    log_trace("t")
    log_debug("d")
    log_event("proxy_created", {"hostname": "example.com"}, level="DEBUG")
    log_event("proxy_created", {"hostname": "example.com"})
    assert [(r["levelno"], r["event"]) for r in memory_sink.records] == [(5, None), (20, "proxy_created")]
    assert api.level_gate() == 20 and api.current_sink() is memory_sink


def test_request_records_take_the_general_path_on_a_sink_that_is_not_fast(memory_sink):
    log_request("GET", "/health", "10.0.0.1", "api.example.com", trace_id="req-9")
    log_response(503, 1.5, trace_id="req-9")
    (rec,) = memory_sink.records
    assert rec["body"] == "GET /health 503" and rec["levelno"] == 40
    assert rec["attributes"]["http.response.status_code"] == 503


def test_the_buffer_before_configure_is_replayed_into_the_sink_in_order(log_api):
    otel_redis.shutdown()
    assert api.current_sink() is None
    log_info("first")
    log_info("second")
    sink = MemorySink()
    api.set_sink(sink, level=20)
    try:
        assert [r["body"] for r in sink.records] == ["first", "second"] and not log_api.records
    finally:
        api.set_sink(None)
