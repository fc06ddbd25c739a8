"""Secret scrubbing: log_info caller cost with scrubbing on, off and raw OTel Logger.emit; the
exporter-side cost of building a stored entry (where the scrubbing runs) on and off."""

from __future__ import annotations

import statistics
import time

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource

import otel_redis
from otel_redis import api, scrub
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.record import from_readable

from .harness import BenchContext, Section, fmt_ratio, verdict

ATTRS = {"component": "api", "user_id": "u1", "password": "hunter2", "details": {"scope": "read", "token": "t"}}


def _per_call(fn, n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return (time.perf_counter() - start) / n


def run(ctx: BenchContext) -> Section:
    n = 10_000 if ctx.quick else 40_000
    rounds = 3 if ctx.quick else 7
    section = Section(
        title="Secret scrubbing: caller and exporter cost",
        command="python3 dev.py bench --only scrub",
        headers=["measure", "value", "baseline", "ratio", "goal", "verdict"],
    )
    on, off = scrub.Scrubber(), scrub.Scrubber(enabled=False)
    with ctx.redis() as (_server, settings):
        exporter = RedisLogRecordExporter(settings=settings, counters=PipelineCounters())
        pipe = otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
        sdk_logger = pipe.provider.get_logger("bench.raw")

        def ours(k: int) -> None:
            for i in range(k):
                api.log_info("login for user", user_id="u1", password="hunter2", details={"token": "t"}, i=i)

        def raw(k: int) -> None:
            for i in range(k):
                sdk_logger.emit(timestamp=time.time_ns(), severity_number=SeverityNumber.INFO, severity_text="INFO",
                                body="login for user",
                                attributes={"user_id": "u1", "password": "hunter2", "details": {"token": "t"}, "i": i})

        samples: dict[str, list[float]] = {"on": [], "off": [], "raw": []}
        try:
            for _ in range(rounds):  # alternating, so drift hits every variant alike
                for name in ("on", "off", "raw"):
                    scrub.set_default_scrubber(off if name == "off" else on)
                    samples[name].append(_per_call(raw if name == "raw" else ours, n))
                    otel_redis.force_flush()
        finally:
            otel_redis.shutdown()

        readable = ReadableLogRecord(
            LogRecord(timestamp=time.time_ns(), severity_number=SeverityNumber.INFO, body="GET /cb?code=abc HTTP/1.1",
                      attributes=ATTRS),
            Resource.create({}), None, None,
        )
        build: dict[str, list[float]] = {"on": [], "off": []}
        try:
            for _ in range(rounds):
                for name, scrubber in (("on", on), ("off", off)):
                    scrub.set_default_scrubber(scrubber)
                    build[name].append(_per_call(lambda k: [from_readable(readable, 8192, 8192) for _ in range(k)], n))
        finally:
            scrub.set_default_scrubber(None)
    med = {k: statistics.median(v) for k, v in samples.items()}
    bmed = {k: statistics.median(v) for k, v in build.items()}
    us = lambda s: f"{s * 1e6:.2f} us"  # noqa: E731
    r_raw, r_off, r_build = med["on"] / med["raw"], med["on"] / med["off"], bmed["on"] / bmed["off"]
    section.rows += [
        ["log_info (scrubbing on) vs raw OTel Logger.emit", us(med["on"]), us(med["raw"]), fmt_ratio(r_raw),
         "<= 1.2x", verdict(r_raw <= 1.2)],
        ["log_info scrubbing on vs off", us(med["on"]), us(med["off"]), fmt_ratio(r_off), "about 1.0x (scrubbing runs "
         "in the exporter)", verdict(r_off <= 1.1)],
        ["exporter entry build (from_readable) on vs off", us(bmed["on"]), us(bmed["off"]), fmt_ratio(r_build),
         "informational", "-"],
    ]
    section.notes.append(f"{rounds} alternating rounds of {n} calls; medians. Records carry a secret attribute, "
                         "a nested secret and (entry build) a code= in the message.")
    return section
