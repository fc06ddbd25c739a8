"""The minimal FastAPI app of the web benchmark; ``BENCH_VARIANT`` picks the instrumentation.

- ``plain``: no instrumentation (also the app that ``opentelemetry-instrument`` wraps for the
  zero-code rows, which set ``OTEL_TRACES_EXPORTER`` themselves);
- ``ours``: the documented default, ``otel_redis.configure()`` + ``instrument_app(app)``; the
  benchmark runs it with ``OTEL_REDIS_WRITER_PROCESS=false`` and ``=true``;
- ``configured``: ``otel_redis.configure()`` alone, no ``instrument_app``;
- ``ours_null``: diagnostics, ``instrument_app`` with an exporter that drops every record (the
  middleware and the queue alone);
- ``otel``: OpenTelemetry's own FastAPI instrumentation with an SDK TracerProvider exporting the
  spans over OTLP/HTTP (BatchSpanProcessor), each finished server span also turned into one
  LogRecord exported over OTLP/HTTP (BatchLogRecordProcessor), both to the sink at
  ``BENCH_OTLP_ENDPOINT``: the OTel-native way to get one request log per request.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

variant = os.environ.get("BENCH_VARIANT", "plain")
app = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict:
    return {"id": item_id, "ok": True}


@app.get("/healthz")
async def healthz() -> dict:
    return {"ok": True}


if variant == "ours":
    import otel_redis

    otel_redis.configure()
    otel_redis.instrument_app(app)
elif variant == "ours_null":  # diagnostics: the middleware and the queue, records dropped by the exporter
    import otel_redis
    from benchmarks.stages import Collect

    otel_redis.configure(exporter=Collect(keep=False))  # type: ignore[arg-type]
    otel_redis.instrument_app(app)
elif variant == "configured":
    import otel_redis

    otel_redis.configure()
elif variant == "otel":
    from opentelemetry import trace
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = os.environ["BENCH_OTLP_ENDPOINT"]
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{endpoint}/v1/logs")))
    request_logger = logger_provider.get_logger("bench.requests")

    class SpanToLog(SpanProcessor):
        """One log record per finished SERVER span, with the span's HTTP attributes."""

        def on_end(self, span) -> None:  # type: ignore[override]
            if span.kind != trace.SpanKind.SERVER:
                return
            request_logger.emit(
                timestamp=span.start_time,
                severity_number=SeverityNumber.INFO,
                body=span.name,
                attributes={**(span.attributes or {}), "http.server.duration_ms": (span.end_time - span.start_time) / 1e6},
            )

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SpanToLog())
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider)
