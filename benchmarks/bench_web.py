"""Request logging in web apps, against the same app without it, measured in the same rounds:

- FastAPI (uvicorn) with the documented default, ``configure()`` + ``instrument_app(app)``, the
  export in process and in the writer process (``OTEL_REDIS_WRITER_PROCESS``), and the app's own
  CPU per request;
- the same default against OpenTelemetry's FastAPI instrumentation exporting a log per request and
  the spans over OTLP/HTTP to a local sink;
- Flask (gunicorn's threaded worker) with ``instrument_app``;
- the zero-code ``redis`` span exporter under ``opentelemetry-instrument`` (Flask and FastAPI)
  against the same command with ``OTEL_TRACES_EXPORTER=none``.

Pinning, load, CPU accounting and rounds: :mod:`benchmarks.webload`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import redis

from otel_redis import schema

from . import webload
from .harness import BenchContext, Section, fmt_ratio, verdict

FASTAPI = "benchmarks.apps.minimal:app"
FLASK = "benchmarks.apps.flask_web:app"
_QUIET = {"OTEL_REDIS_REVERSE_DNS": "false"}
_ZERO = {"OTEL_LOGS_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "BENCH_VARIANT": "plain"}


def variants(redis_url: str, sink: str) -> list[webload.Variant]:
    base = {**_QUIET, "REDIS_URL": redis_url}
    return [
        webload.uvicorn("plain", FASTAPI, {**base, "BENCH_VARIANT": "plain"}),
        webload.uvicorn("ours", FASTAPI, {**base, "BENCH_VARIANT": "ours", "OTEL_REDIS_WRITER_PROCESS": "false"}),
        webload.uvicorn("ours_writer", FASTAPI, {**base, "BENCH_VARIANT": "ours", "OTEL_REDIS_WRITER_PROCESS": "true"}),
        webload.uvicorn("otel", FASTAPI, {**base, "BENCH_VARIANT": "otel", "BENCH_OTLP_ENDPOINT": sink}),
        webload.uvicorn("fastapi_otel", FASTAPI, {**base, **_ZERO, "OTEL_TRACES_EXPORTER": "none"}, instrumented=True),
        webload.uvicorn("fastapi_zero", FASTAPI, {**base, **_ZERO, "OTEL_TRACES_EXPORTER": "redis"}, instrumented=True),
        webload.gunicorn("flask_plain", FLASK, {**base, "BENCH_VARIANT": "plain"}),
        webload.gunicorn("flask_ours", FLASK, {**base, "BENCH_VARIANT": "ours"}),
        webload.gunicorn("flask_otel", FLASK, {**base, **_ZERO, "OTEL_TRACES_EXPORTER": "none"}, instrumented=True),
        webload.gunicorn("flask_zero", FLASK, {**base, **_ZERO, "OTEL_TRACES_EXPORTER": "redis"}, instrumented=True),
    ]


def _measure(ctx: BenchContext) -> tuple[webload.Runs, dict[str, int]]:
    where = webload.cores()
    stored: dict[str, int] = {}
    with ctx.redis() as (server, settings), tempfile.TemporaryDirectory(prefix="otel-redis-bench-web-") as tmp:
        log = Path(tmp) / "servers.log"
        if server.process is not None:
            webload.pin(server.process.pid, where.rest)
        sink, sink_port = webload.serve(
            lambda port: [*webload.UVICORN, str(port), "benchmarks.apps.otlp_sink:app"], {}, log, where.rest,
            health="/")
        client = redis.Redis.from_url(settings.redis_url or "")
        seen = [0]

        def count(name: str) -> None:  # records stored by the variant just stopped (it flushes on exit)
            total = client.zcard(schema.IDX_REQ_ALL)
            stored[name] = stored.get(name, 0) + total - seen[0]
            seen[0] = total

        try:
            runs = webload.measure(
                variants(settings.redis_url or "", f"http://127.0.0.1:{sink_port}"), log,
                rounds=1 if ctx.quick else 5, seconds=2.0 if ctx.quick else 4.0, after_each=count,
            )
        finally:
            client.close()
            webload.stop(sink)
    return runs, stored


def run(ctx: BenchContext) -> Section:
    section = Section(
        title="Request logging in web apps: FastAPI, Flask, zero-code",
        command="python3 dev.py bench --only web",
        headers=["measure", "ours", "baseline", "ratio", "goal", "verdict"],
    )
    runs, stored = _measure(ctx)

    def rate(name: str) -> str:
        return f"{runs.median(name):,.0f}/s, {runs.cpu(name):.0f} us CPU/request"

    def row(label: str, ours: str, base: str, goal: str, ok: Any) -> None:
        r = runs.ratio(ours, base)
        section.rows.append([label, rate(ours), rate(base), fmt_ratio(r), goal, verdict(ok(r))])

    at_least = lambda r: r >= 0.8  # noqa: E731
    row("FastAPI, configure() + instrument_app, export in process, vs uninstrumented", "ours", "plain",
        ">= 0.8x", at_least)
    row("FastAPI, the same with OTEL_REDIS_WRITER_PROCESS=true, vs uninstrumented", "ours_writer", "plain",
        ">= 0.8x", at_least)
    section.rows.append([
        "FastAPI app process CPU per request: in process / writer process (+ the writer process's own) vs "
        "uninstrumented", f"{runs.cpu('ours'):.0f} us / {runs.cpu('ours_writer'):.0f} us "
        f"(+ {runs.helper('ours_writer'):.0f} us)", f"{runs.cpu('plain'):.0f} us",
        f"{runs.cpu('plain') / runs.cpu('ours'):.2f}x / {runs.cpu('plain') / runs.cpu('ours_writer'):.2f}x", "", "",
    ])
    row("FastAPI, configure() + instrument_app (in process) vs OTel FastAPI instrumentation exporting logs and "
        "spans over OTLP/HTTP", "ours", "otel", "> 1x", lambda r: r > 1)
    row("Flask (gunicorn gthread), configure() + instrument_app vs uninstrumented", "flask_ours", "flask_plain",
        ">= 0.8x", at_least)
    row("Flask under opentelemetry-instrument: OTEL_TRACES_EXPORTER=redis vs none", "flask_zero", "flask_otel",
        ">= 0.8x", at_least)
    row("FastAPI under opentelemetry-instrument: OTEL_TRACES_EXPORTER=redis vs none", "fastapi_zero",
        "fastapi_otel", ">= 0.8x", at_least)
    section.notes += [
        runs.describe() + "; ratios are the median of the per-round ratios, each against the baseline of the "
        "same round. This machine is shared with other work: rates move between rounds, which is why only ratios "
        "within a round are compared.",
        "The app process's CPU per request is what the rate ratio would be if the app had its core to itself; "
        "with the writer process, the writer (on the load cores, with the load generator and Redis) spends the "
        "CPU shown in brackets per request besides. In process, the export (normalising, planning and packing "
        "about 30 us of Python per record) runs in the app's own process and core.",
        "The zero-code baseline is the same command under opentelemetry-instrument with OTEL_TRACES_EXPORTER=none: "
        "OpenTelemetry's instrumentation already runs there, so the ratio is what storing the request records in "
        "Redis adds to it. The OTel variant (benchmarks/apps/minimal.py) sends to a local sink that answers 200 "
        "without decoding.",
        "Request records stored per variant over all rounds (a variant that logs must store some): "
        + ", ".join(f"{v} {n:,}" for v, n in stored.items()) + ".",
    ]
    return section
