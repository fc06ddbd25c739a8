"""Key encoding and record encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_redis import levels, schema
from otel_redis.levels import NAME_TO_SEVERITY
from otel_redis.record import LogEntry, RequestFields


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("192.168.1.1", "192.168.1.1"),
        ("2001:db8::1", "2001%3Adb8%3A%3A1"),
        ("api.example.com", "api.example.com"),
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("x\ny", "x%0Ay"),
        ("{tag}", "%7Btag%7D"),
        ("100%", "100%25"),
        ("é", "%C3%A9"),
        ("", ""),
    ],
)
def test_key_part_encoding(value, encoded):
    assert schema.key_part(value) == encoded


@given(st.text(max_size=60))
def test_key_part_is_injective_and_free_of_separators(value):
    part = schema.key_part(value)
    assert ":" not in part and "*" not in part and "?" not in part and "[" not in part
    assert "{" not in part and "}" not in part and " " not in part and "\n" not in part
    if "%~" in part:  # shortened: bounded length, hashed tail
        assert len(part) <= schema.MAX_PART
    else:
        assert schema.decode_key_part(part) == value


@given(st.text(min_size=129, max_size=400), st.text(min_size=129, max_size=400))
def test_long_parts_are_bounded_and_distinct(a, b):
    pa, pb = schema.key_part(a), schema.key_part(b)
    assert len(pa) <= schema.MAX_PART
    assert (pa == pb) == (a == b)


def test_spec_key_names():
    assert schema.idx_req_ip("192.168.1.1") == "idx:req:ip:192.168.1.1"
    assert schema.stats_unique_ips("api.example.com", "20240115:10") == "stats:unique_ips:api.example.com:20240115:10"
    assert schema.stats_requests("20240115:10") == "stats:requests:20240115:10"
    assert schema.idx_req_path("GET", "/users/{id}") == "idx:req:path:GET:/users/%7Bid%7D"
    assert schema.oauth_flow("s1") == "oauth:flow:s1"
    assert schema.hour_bucket(1705314645123) == "20240115:10"
    assert schema.minute_bucket(1705314645123) == "20240115:1030"


def test_request_keys_are_unique_per_record_even_with_same_ms_and_ip():
    a = schema.request_record_key(1705314645123, "abc0", "10.0.0.1")
    b = schema.request_record_key(1705314645123, "abc1", "10.0.0.1")
    assert a != b and a.startswith("req:1705314645123-") and a.endswith(":10.0.0.1")
    assert schema.record_time_ms(a) == 1705314645123


def test_record_encoding_round_trips():
    entry = LogEntry(
        timestamp_ns=1705314645123456789,
        observed_ns=1705314645123456999,
        level="WARNING",
        severity_number=14,
        severity_text="warn",
        body={"structured": [1, 2]},
        component="api",
        event="evt",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        trace_flags=1,
        attributes={"k": "v", "n": 1.5},
        resource={"service.name": "svc"},
        scope_name="scope",
        scope_version="1.0",
        request=RequestFields(method="GET", path="/users", status_code=200, client_ip="::1",
                              response_time_ms=45.25, bytes_sent=1234, query="a=1", route="/users"),
    )
    encoded = schema.encode_entry(entry)
    assert encoded["timestamp"] == "2024-01-15T10:30:45.123456789Z"
    for field in schema.REQUEST_HASH_FIELDS:
        assert field in encoded
    decoded = schema.decode_entry({k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in encoded.items()})
    assert decoded == entry


def _request_entry(status: int, **overrides: object) -> LogEntry:
    fields: dict = dict(
        timestamp_ns=1705314645123456789, observed_ns=1705314645123456789, level=levels.request_level(status),
        body=f"GET /users/7 {status}", component="http", scope_name="otel_redis",
        request=RequestFields(method="GET", path="/users/7", status_code=status, client_ip="10.0.0.1"),
    )
    fields.update(overrides)
    level = str(fields["level"])
    return LogEntry(severity_number=NAME_TO_SEVERITY[level].value, severity_text=level, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [200, 404, 503])
def test_request_hash_leaves_out_what_its_request_fields_say(status):
    entry = _request_entry(status)
    encoded = schema.encode_entry(entry)
    assert not {"level", "body", "component", "scope"} & encoded.keys()
    assert set(schema.REQUEST_HASH_FIELDS) <= encoded.keys()
    assert schema.decode_entry(encoded) == entry


@pytest.mark.parametrize(
    "overrides, stored",
    [
        ({"level": "CRITICAL"}, {"level": "CRITICAL"}),
        ({"body": "GET /users/{id} 200"}, {"body": "GET /users/{id} 200"}),
        ({"component": ""}, {"component": ""}),
        ({"component": "proxy"}, {"component": "proxy"}),
        ({"scope_name": ""}, {"scope": ""}),
        ({"scope_name": "otlp-sender"}, {"scope": "otlp-sender"}),
    ],
)
def test_request_hash_keeps_a_value_that_differs_from_the_default(overrides, stored):
    entry = _request_entry(200, **overrides)
    encoded = schema.encode_entry(entry)
    assert {k: encoded[k] for k in stored} == stored
    assert schema.decode_entry(encoded) == entry


def test_minimal_record_leaves_out_empty_fields():
    entry = LogEntry(timestamp_ns=1, level="INFO", severity_number=9, severity_text="INFO", body="x", observed_ns=1)
    assert set(schema.encode_entry(entry)) == {"timestamp", "level", "body"}
    assert schema.decode_entry(schema.encode_entry(entry)) == entry
