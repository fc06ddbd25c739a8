"""Isolation: no value can fail its record's neighbours, raise into the application, or be lost.

Hypothesis builds arbitrary values (numbers of any size and sign, NaN and infinities, invalid UTF-8,
lone surrogates, NUL bytes, nested containers, megabyte strings) and sends them through every
in-process door; each call must end as exactly one stored record, with no drop and no internal
error, on the real pipeline and Redis.
"""

from __future__ import annotations

import json
import logging
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otel_redis
from otel_redis import histogram, log_event, log_info
from otel_redis.record import MAX_DURATION_MS, clean_text, dumps
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.request_log import emit_request, log_request, log_response
from tests.redis_dump import dump_all

HOSTILE_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),  # surrogates and controls included
    st.sampled_from(["\ud800", "a\udfffb", "nul\x00byte", "\x00", "x" * 1_000_000, "é" * 300_000]),
)
HOSTILE_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([1e306, -1e306, math.inf, -math.inf, math.nan, -0.0, 2**64, -(2**63) - 1]),
)
SCALAR = st.one_of(HOSTILE_TEXT, HOSTILE_NUMBER, st.binary(max_size=40), st.booleans(), st.none())
HOSTILE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(HOSTILE_TEXT, inner, max_size=4), st.tuples(inner, inner)
    ),
    max_leaves=12,
)
FEW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow,
                                                                      HealthCheck.data_too_large])


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e306, 1.8e305, -1.0])))
def test_every_float_has_a_bucket(ms):
    bucket = histogram.bucket_of(ms)
    assert histogram.ZERO_BUCKET <= bucket <= histogram.MAX_BUCKET
    if not ms >= 0.001:
        assert bucket == histogram.ZERO_BUCKET
    if ms >= 1e12:
        assert bucket == histogram.MAX_BUCKET


@given(HOSTILE)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_dumps_encodes_any_value_as_valid_utf8_json(value):
    raw = dumps({"v": value})
    decoded = json.loads(raw.decode("utf-8"))  # strict: invalid UTF-8 would raise here
    assert set(decoded) == {"v"}


def test_clean_text_keeps_a_lone_surrogate_readable():
    assert clean_text("a\ud800b") == "a\\ud800b"
    assert clean_text("nul\x00ok é") == "nul\x00ok é"


def _stored_count(r) -> int:
    return r.zcard("idx:log:all") + r.zcard("idx:req:all")


@FEW
@given(values=st.lists(HOSTILE, min_size=1, max_size=6), names=st.lists(HOSTILE_TEXT, min_size=1, max_size=3))
def test_log_calls_with_hostile_values_store_every_record(pipeline, r, counters, values, names):
    before, dropped, errors = _stored_count(r), counters.dropped, counters.internal_errors
    calls = 0
    for value in values:
        log_info(value, component="hostile", v=value)  # as the message and as an attribute
        log_event("hostile_event", {"data": value, "bad\ud800key": value}, level="WARNING")
        calls += 2
    for name in names:
        log_info("named", component=name, **{"attr": name})
        calls += 1
    assert otel_redis.force_flush()
    assert _stored_count(r) - before == calls
    assert (counters.dropped, counters.internal_errors) == (dropped, errors)


@FEW
@given(
    rts=st.lists(HOSTILE_NUMBER, min_size=1, max_size=5),
    statuses=st.lists(st.integers(min_value=-(2**70), max_value=2**70), min_size=1, max_size=3),
    path=HOSTILE_TEXT,
)
def test_request_doors_with_hostile_numbers_store_every_record(pipeline, r, counters, rts, statuses, path):
    before, dropped, errors = _stored_count(r), counters.dropped, counters.internal_errors
    calls = 0
    for rt in rts:
        for status in statuses:
            emit_request(0, "GET", path, status, "10.0.0.1", "api.example.com", response_time_ms=rt, user_agent=path)
            calls += 1
        trace = log_request("POST", path, "10.0.0.2", "api.example.com", user_agent=path)
        log_response(statuses[0], rt, trace_id=trace)
        calls += 1
    assert otel_redis.force_flush()
    assert _stored_count(r) - before == calls
    assert (counters.dropped, counters.internal_errors) == (dropped, errors)
    for key in r.zrange("idx:req:all", 0, -1):
        stored_rt = float(r.hget(key, "response_time_ms"))
        assert 0.0 <= stored_rt <= MAX_DURATION_MS


def test_one_absurd_response_time_among_600_loses_nothing(pipeline, r, counters):
    for i in range(600):
        emit_request(0, "GET", f"/items/{i}", 200, "10.0.0.1", "h.example", response_time_ms=1e306 if i == 300 else 5.0)
    assert otel_redis.force_flush()
    assert r.zcard("idx:req:all") == 600
    assert counters.exported == 600 and counters.dropped == 0


@pytest.mark.parametrize("value", [1e306, math.inf, math.nan, -5.0, 10**400])
def test_clamped_response_time_is_stored_within_range(pipeline, r, value):
    trace = log_request("GET", "/slow", "10.0.0.3")
    log_response(200, value, trace_id=trace)
    assert otel_redis.force_flush()
    (key,) = r.zrange("idx:req:all", 0, -1)
    expected = MAX_DURATION_MS if value in (1e306, math.inf, 10**400) else 0.0
    assert float(r.hget(key, "response_time_ms")) == expected


#: the LogRecord attributes stdlib itself refuses as ``extra`` keys (a KeyError of logging, not ours)
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
PLANTED = "PLANTED-stdl1b-s3cr3t"


@pytest.fixture
def stdlib_pipeline(settings, counters):
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    otel_redis.configure(settings=settings, exporter=exporter, capture_stdlib=True, set_global_provider=False)
    yield logging.getLogger("hostile.stdlib")
    otel_redis.shutdown()


@FEW
@given(message=HOSTILE, extra=st.dictionaries(HOSTILE_TEXT.filter(lambda k: k not in _RESERVED), HOSTILE, max_size=4))
def test_stdlib_records_with_hostile_values_are_stored_and_scrubbed(stdlib_pipeline, r, counters, message, extra):
    """The stdlib door: any message object and any ``extra`` are one stored record each, nothing is
    dropped, and a secret in an ``extra`` named like one or in the message text is in no key or value."""
    before, dropped, errors = _stored_count(r), counters.dropped, counters.internal_errors
    stdlib_pipeline.warning(message, extra=extra)
    stdlib_pipeline.error("login failed password=%s", PLANTED, extra={**extra, "db_password": PLANTED,
                                                                       "cfg": [{"token": PLANTED}]})
    assert otel_redis.force_flush()
    assert _stored_count(r) - before == 2
    assert (counters.dropped, counters.internal_errors) == (dropped, errors)
    assert PLANTED not in dump_all(r)
