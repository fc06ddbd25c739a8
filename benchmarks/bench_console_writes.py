"""Console aggregates on the write path: request records/s with ``OTEL_REDIS_CONSOLE_AGGREGATES``
on vs off, in alternating rounds against one private Redis (flushed between rounds), so both
variants see the same machine load. The goal: aggregates cost at most 5% of records/s.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Sequence

import redis

import otel_redis
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter

from .bench_requests import _emit_all, _requests
from .harness import BenchContext, Section, fmt_ratio, verdict

GOAL = 0.95


def _rate(settings: Any, client: redis.Redis, reqs: Sequence[tuple[Any, ...]], aggregates: bool) -> float:
    """Records/s of one round: emit every request and wait until stored."""
    client.flushall()
    settings = settings.with_overrides(reverse_dns=False, console_aggregates=aggregates)
    exporter = RedisLogRecordExporter(settings=settings, counters=PipelineCounters(), client=client)
    otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
    started = time.perf_counter()
    _emit_all(reqs)
    otel_redis.force_flush()
    elapsed = time.perf_counter() - started
    otel_redis.shutdown()
    return len(reqs) / elapsed


def measure(ctx: BenchContext, rounds: int | None = None) -> dict[str, list[float]]:
    """Records/s per round of each variant (on, off alternating, the first round of each a warm-up)."""
    n = 5_000 if ctx.quick else 20_000
    rounds = rounds or (2 if ctx.quick else 6)
    reqs = _requests(n)
    rates: dict[str, list[float]] = {"on": [], "off": []}
    with ctx.redis() as (_server, settings):
        client = redis.Redis.from_url(settings.redis_url)
        _rate(settings, client, reqs[:2_000], True)  # warm-up: imports, caches, scripts
        _rate(settings, client, reqs[:2_000], False)
        for i in range(rounds):
            order = ("on", "off") if i % 2 == 0 else ("off", "on")
            for variant in order:
                rates[variant].append(_rate(settings, client, reqs, variant == "on"))
        client.close()
    return rates


def run(ctx: BenchContext) -> Section:
    rates = measure(ctx)
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    ratio = on / off
    section = Section(
        title="Console aggregates: write-path cost",
        command="python -m benchmarks --only bench_console_writes",
        headers=["variant", "records/s (median)", "rounds"],
    )
    section.rows.append(["aggregates off", f"{off:,.0f}", ", ".join(f"{r:,.0f}" for r in rates["off"])])
    section.rows.append(["aggregates on", f"{on:,.0f}", ", ".join(f"{r:,.0f}" for r in rates["on"])])
    section.notes.append(
        f"on/off = {fmt_ratio(ratio)} (goal: at least {GOAL:.2f}x, i.e. at most 5% fewer records/s): "
        f"{verdict(ratio >= GOAL)}"
    )
    print(f"on/off ratio: {ratio:.3f}", flush=True)
    return section
