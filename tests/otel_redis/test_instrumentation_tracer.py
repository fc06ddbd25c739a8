"""``instrument_app`` and a TracerProvider configured after the middleware was built: the first
requests take the no-tracer path (a non-recording span current while the app runs), and once an SDK
provider is set every request gets a SERVER span of its own, continuing an incoming ``traceparent``.
In a subprocess: the global TracerProvider can be set once per process. Real SDK, real ASGI calls."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.servers import ROOT

pytestmark = pytest.mark.e2e

SCRIPT = textwrap.dedent('''
    import asyncio, json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from otel_redis import instrument_app

    seen = []

    async def app(scope, receive, send):
        span = trace.get_current_span()
        ctx = span.get_span_context()
        seen.append({"trace_id": ctx.trace_id, "span_id": ctx.span_id, "recording": span.is_recording()})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    def request(headers=()):
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/items/42", "raw_path": b"/items/42", "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"api.example.com"), *headers],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
        asyncio.run(mw(scope, receive, send))

    mw = instrument_app(app, exclude_paths=())
    request()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    request()
    request([(b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")])
    print(json.dumps({"seen": seen, "spans": [
        {"name": s.name, "kind": s.kind.name, "trace_id": s.context.trace_id, "span_id": s.context.span_id,
         "parent": s.parent.span_id if s.parent else None} for s in spans.get_finished_spans()]}))
''')


def test_a_tracer_provider_set_after_instrument_app_gives_server_spans():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "", "OTEL_REDIS_REVERSE_DNS": "false"})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    before, plain, continued = result["seen"]
    assert before["trace_id"] and not before["recording"]  # no tracer yet: a non-recording span
    spans = result["spans"]
    assert [(s["name"], s["kind"]) for s in spans] == [("GET /items/42", "SERVER")] * 2, spans
    assert plain["recording"] and (plain["trace_id"], plain["span_id"]) == (spans[0]["trace_id"], spans[0]["span_id"])
    assert spans[0]["parent"] is None
    assert continued["recording"] and continued["trace_id"] == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert (spans[1]["trace_id"], spans[1]["parent"]) == (continued["trace_id"], 0x00F067AA0BA902B7)
