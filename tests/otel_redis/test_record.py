"""The request record's one shape: RequestFields immutable and built by keyword, the direct path's
RequestCall, and the writer-process rows generated from the fields (pure functions, no Redis)."""

from __future__ import annotations

import marshal

import pytest

from otel_redis.record import ENTRY_FIELDS, LogEntry, RequestFields, entry_from_row, entry_to_row
from otel_redis.request_log import RequestCall, queue_request, request_entry

LIMITS = (65_536, 8_192)


def _distinct_request() -> RequestFields:
    """Every field with a value no other field has, so a value in the wrong place shows."""
    return RequestFields(
        method="GET", path="/path", status_code=201, client_ip="10.0.0.1", client_hostname="client.test",
        proxy_hostname="proxy.test", query="q=1", route="/route", response_time_ms=12.5, user_id="user",
        user_agent="agent", referrer="https://referrer.test/", bytes_sent=345, error="error text",
        session_id="session", oauth_client_id="oauth-client",
    )


def test_request_fields_cannot_be_changed_in_place():
    request = _distinct_request()
    with pytest.raises(AttributeError):
        request.client_hostname = "other"  # type: ignore[misc]
    renamed = request._replace(client_hostname="other")
    assert renamed.client_hostname == "other" and request.client_hostname == "client.test"


def test_an_entry_row_keeps_every_field_in_its_place_and_is_marshallable():
    entry = LogEntry(
        timestamp_ns=1, level="WARNING", severity_number=13, body="body", severity_text="warn",
        component="component", event="event", trace_id="a" * 32, span_id="b" * 16, trace_flags=1,
        attributes={"k": "v"}, resource={"service.name": "svc"}, scope_name="scope", scope_version="1.0",
        observed_ns=2, request=_distinct_request(), otlp={"body": "unset"},
    )
    row = entry_to_row(entry)
    assert len(row) == len(ENTRY_FIELDS)
    back = entry_from_row(marshal.loads(marshal.dumps(row)))
    assert back == entry and type(back.request) is RequestFields
    plain = LogEntry(timestamp_ns=3, level="INFO", severity_number=9, body="log")
    assert entry_from_row(marshal.loads(marshal.dumps(entry_to_row(plain)))) == plain


@pytest.mark.parametrize("wire", [False, True], ids=["queued", "writer-process"])
def test_a_request_call_becomes_the_entry_with_each_value_in_its_named_field(wire):
    want = _distinct_request()
    call = RequestCall(
        timestamp_ns=5_000, method="GET", path=want.path, status_code=want.status_code, client_ip=want.client_ip,
        client_hostname=want.client_hostname, proxy_hostname=want.proxy_hostname, query=want.query,
        route=want.route, response_time_ms=want.response_time_ms, user_id=want.user_id,
        user_agent=want.user_agent, referrer=want.referrer, bytes_sent=want.bytes_sent, error=want.error,
        trace_id=0xABC, span_id=0xDEF, trace_flags=1, extra={"tenant": "t1"}, component="web",
    )
    fields = marshal.loads(marshal.dumps(tuple(call))) if wire else call
    entry = request_entry(fields, *LIMITS)
    assert entry.request == want._replace(session_id="", oauth_client_id="")
    assert (entry.timestamp_ns, entry.observed_ns, entry.component) == (5_000, 5_000, "web")
    assert (entry.trace_id, entry.span_id, entry.trace_flags) == (f"{0xABC:032x}", f"{0xDEF:016x}", 1)
    assert entry.attributes == {"tenant": "t1"} and entry.body == "GET /path 201"
    assert (entry.level, entry.severity_text) == ("INFO", "INFO")


class _Captured:
    """The smallest sink of the direct path: keeps what queue_request hands it (no pipeline)."""

    fast = True
    settings = None

    def emit_fields(self, build, fields):
        self.build, self.fields = build, fields


def test_queue_request_fills_each_request_call_field_by_name():
    sink = _Captured()
    queue_request(sink, 7_000, "GET", "/path", 201, "10.0.0.1", "proxy.test", "client.test", "q=1", "/route",
                  12.5, "user", "agent", "https://referrer.test/", 345, "error text", 0xABC, 0xDEF, {"k": "v"}, "web")
    call = RequestCall._make(sink.fields)
    assert sink.build is request_entry
    assert call == RequestCall(
        timestamp_ns=7_000, method="GET", path="/path", status_code=201, client_ip="10.0.0.1",
        client_hostname="client.test", proxy_hostname="proxy.test", query="q=1", route="/route",
        response_time_ms=12.5, user_id="user", user_agent="agent", referrer="https://referrer.test/",
        bytes_sent=345, error="error text", trace_id=0xABC, span_id=0xDEF, trace_flags=1, extra={"k": "v"},
        component="web",
    )
