"""Core pipeline: caller cost of log_info vs the raw OTel SDK emit and stdlib logging; burst drain."""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import threading
import time

import redis
from opentelemetry._logs import SeverityNumber

import otel_redis
from otel_redis import api
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter

from .harness import BenchContext, Section, fmt_ratio, verdict


def _per_call(fn, n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return (time.perf_counter() - start) / n


def run(ctx: BenchContext) -> Section:
    n = 20_000 if ctx.quick else 50_000
    rounds = 3 if ctx.quick else 7
    burst_total = 20_000 if ctx.quick else 100_000
    section = Section(
        title="Core pipeline: caller cost and burst",
        command="python3 dev.py bench --only core",
        headers=["measure", "value", "baseline", "ratio", "goal", "verdict"],
    )
    with ctx.redis() as (_server, settings):
        counters = PipelineCounters()
        exporter = RedisLogRecordExporter(settings=settings, counters=counters)
        pipe = otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
        sdk_logger = pipe.provider.get_logger("bench.raw")
        devnull = open(os.devnull, "w")
        std = logging.getLogger("bench.stdlib")
        std.propagate = False
        std.addHandler(logging.StreamHandler(devnull))
        std.setLevel(logging.INFO)

        def ours(k: int) -> None:
            for i in range(k):
                api.log_info("request handled", component="api", user_id="u1", i=i)

        def raw(k: int) -> None:
            for i in range(k):
                sdk_logger.emit(
                    timestamp=time.time_ns(),
                    severity_number=SeverityNumber.INFO,
                    severity_text="INFO",
                    body="request handled",
                    attributes={"component": "api", "user_id": "u1", "i": i},
                )

        def stdlib(k: int) -> None:
            for i in range(k):
                std.info("request handled", extra={"component": "api", "user_id": "u1", "i": i})

        def disabled(k: int) -> None:
            for i in range(k):
                api.log_debug("request handled", component="api", user_id="u1", i=i)

        samples: dict[str, list[float]] = {"ours": [], "raw": [], "stdlib": [], "disabled": []}
        for _ in range(rounds):  # interleaved, so drift hits every variant alike
            for name, fn in (("ours", ours), ("raw", raw), ("stdlib", stdlib), ("disabled", disabled)):
                samples[name].append(_per_call(fn, n))
                otel_redis.force_flush()
        med = {k: statistics.median(v) for k, v in samples.items()}
        r_raw = med["ours"] / med["raw"]
        r_std = med["ours"] / med["stdlib"]
        r_dis = med["disabled"] / med["ours"]
        us = lambda s: f"{s * 1e6:.2f} us"  # noqa: E731
        section.rows += [
            ["log_info vs raw OTel Logger.emit (same processor)", us(med["ours"]), us(med["raw"]), fmt_ratio(r_raw),
             "<= 1.2x", verdict(r_raw <= 1.2)],
            ["log_info vs stdlib logging + StreamHandler", us(med["ours"]), us(med["stdlib"]), fmt_ratio(r_std),
             "<= 1.0x", verdict(r_std <= 1.0)],
            ["disabled-level call vs enabled log_info", us(med["disabled"]), us(med["ours"]), fmt_ratio(r_dis),
             "<= 0.05x", verdict(r_dis <= 0.05)],
        ]
        otel_redis.shutdown()
        devnull.close()

    with ctx.redis() as (_server, settings):
        counters = PipelineCounters()
        exporter = RedisLogRecordExporter(settings=settings, counters=counters)
        otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)  # default settings
        per = burst_total // 4
        started = time.perf_counter()

        def sync_part(tag: str) -> None:
            for i in range(per):
                api.log_info(f"{tag}:{i}", component=tag)

        async def aio() -> None:
            async def one(base: int) -> None:
                for i in range(base, base + per // 10):
                    api.log_info(f"aio:{i}", component="aio")
                    if i % 500 == 0:
                        await asyncio.sleep(0)

            await asyncio.gather(*(one(k * (per // 10)) for k in range(10)))

        workers = [threading.Thread(target=sync_part, args=(f"t{k}",)) for k in range(2)]
        workers.append(threading.Thread(target=lambda: asyncio.run(aio())))
        for w in workers:
            w.start()
        sync_part("sync")
        for w in workers:
            w.join()
        calls_done = time.perf_counter() - started
        otel_redis.force_flush()
        drained = time.perf_counter() - started
        client = redis.Redis.from_url(settings.redis_url)
        stored = client.zcard("idx:log:all")
        lost = burst_total - stored
        otel_redis.shutdown()
        section.rows.append([
            f"burst: {burst_total:,} calls (sync + 2 threads + asyncio), default settings",
            f"{stored:,} stored, {lost} lost, dropped counter {counters.dropped}",
            f"calls took {calls_done:.2f} s", f"drained in {drained:.2f} s",
            "0 lost", verdict(lost == 0 and counters.dropped == 0),
        ])
        section.notes.append(
            f"burst throughput end to end: {burst_total / drained:,.0f} records/s stored "
            f"({counters.export_batches} batches of up to {settings.max_export_batch_size})."
        )
    section.notes.append(
        "Caller cost is the median per-call time over interleaved rounds of "
        f"{n:,} calls; the export worker runs meanwhile for every variant alike."
    )
    return section
