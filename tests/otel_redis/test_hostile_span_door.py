"""The span door with arbitrary spans: finished SDK SERVER spans whose HTTP attributes are built by
hypothesis are read by the span exporter's reader and stored through ``emit_request``, as
``RedisSpanExporter.export`` does for each span, on the real pipeline and Redis.

Whatever the attributes (hostile methods, paths, URLs that do not parse, status codes of any size,
addresses, user agents), reading a span raises nothing, each span is one stored record, nothing is
dropped, and a secret planted in the query string or the full URL is in no key or value of Redis.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otel_redis
from otel_redis.request_log import emit_request
from otel_redis.span_exporter import SpanRequestReader
from tests.redis_dump import dump_all

PLANTED = "PLANTED-sp4n-s3cr3t"
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
TEXT = st.text(max_size=40)
URLS = st.one_of(TEXT, st.sampled_from(["http://[", "http://[::1", "http://h:99999/x", "http://[zz]/p", "::"]))
ATTRIBUTES = st.fixed_dictionaries(
    {"http.request.method": st.one_of(TEXT, st.sampled_from(["GET", "POST"]))},
    optional={
        "url.path": TEXT, "http.target": TEXT, "http.route": TEXT,
        "http.response.status_code": st.one_of(st.integers(-(2**63), 2**63 - 1), TEXT),
        "client.address": TEXT, "network.peer.address": TEXT, "server.address": TEXT,
        "user_agent.original": TEXT, "http.response.body.size": st.one_of(st.integers(-(2**63), 2**63 - 1), TEXT),
        "enduser.id": TEXT, "http.request.header.x_forwarded_for": TEXT,
    },
)


@FEW
@given(attributes=ATTRIBUTES, url=URLS, planted_in=st.sampled_from(["url.query", "url.full"]))
def test_span_door_with_arbitrary_spans(pipeline, r, counters, settings, attributes, url, planted_in):
    secret = f"access_token={PLANTED}&password={PLANTED}"
    attributes = {**attributes, "url.full": f"{url}?{secret}" if planted_in == "url.full" else url}
    if planted_in == "url.query":
        attributes["url.query"] = secret
    attributes.pop("http.target", None) if planted_in == "url.full" else None  # the URL's query is read
    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    with provider.get_tracer("hostile").start_as_current_span("GET", kind=SpanKind.SERVER, attributes=attributes):
        pass
    (span,) = finished.get_finished_spans()
    before, dropped = r.zcard("idx:req:all"), counters.dropped
    fields = SpanRequestReader(settings, exclude_paths=()).read(span)
    assert fields is not None
    emit_request(**fields)
    assert otel_redis.force_flush()
    assert r.zcard("idx:req:all") - before == 1
    assert counters.dropped == dropped
    everything = dump_all(r)
    assert PLANTED not in everything
