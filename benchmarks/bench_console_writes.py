"""Console aggregates on the write path: request records/s with ``OTEL_REDIS_CONSOLE_AGGREGATES``
on vs off, in alternating rounds against one private Redis (flushed between rounds), so both
variants see the same machine load. The goal: aggregates cost at most 5% of records/s.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, NamedTuple, Sequence

import redis

import otel_redis
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter

from .bench_requests import _emit_all, _main_thread_cpu_s, _requests
from .harness import BenchContext, Section, fmt_ratio, verdict

GOAL = 0.95


class Round(NamedTuple):
    rate: float
    python_us: float
    redis_us: float


def _rate(settings: Any, client: redis.Redis, reqs: Sequence[tuple[Any, ...]], aggregates: bool) -> Round:
    """One round: emit every request and wait until stored; records/s and CPU per record (this
    process, all threads; the Redis main thread), which a loaded machine disturbs less than time."""
    client.flushall()
    settings = settings.with_overrides(reverse_dns=False, console_aggregates=aggregates)
    exporter = RedisLogRecordExporter(settings=settings, counters=PipelineCounters(), client=client)
    otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
    redis0, cpu0, started = _main_thread_cpu_s(client), time.process_time(), time.perf_counter()
    _emit_all(reqs)
    otel_redis.force_flush()
    elapsed, cpu, redis_cpu = time.perf_counter() - started, time.process_time() - cpu0, _main_thread_cpu_s(client) - redis0
    otel_redis.shutdown()
    n = len(reqs)
    return Round(n / elapsed, cpu / n * 1e6, redis_cpu / n * 1e6)


def measure(ctx: BenchContext, rounds: int | None = None) -> dict[str, list[Round]]:
    """Records/s per round of each variant (on, off alternating, the first round of each a warm-up)."""
    n = 5_000 if ctx.quick else 20_000
    rounds = rounds or (2 if ctx.quick else 6)
    reqs = _requests(n)
    rates: dict[str, list[Round]] = {"on": [], "off": []}
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
    rounds = measure(ctx)
    med = {v: Round(*(statistics.median(getattr(r, f) for r in rs) for f in Round._fields)) for v, rs in rounds.items()}
    # paired: each round's on and off ran back to back, so their ratio shares that moment's load
    ratio = statistics.median(a.rate / b.rate for a, b in zip(rounds["on"], rounds["off"]))
    cpu = (med["on"].python_us + med["on"].redis_us) / (med["off"].python_us + med["off"].redis_us)
    section = Section(
        title="Console aggregates: write-path cost",
        command="python -m benchmarks --only bench_console_writes",
        headers=["variant", "records/s (median)", "CPU us/record: this process, Redis main thread", "records/s per round"],
    )
    for variant, label in (("off", "aggregates off"), ("on", "aggregates on")):
        m = med[variant]
        section.rows.append([label, f"{m.rate:,.0f}", f"{m.python_us:.1f}, {m.redis_us:.1f}",
                             ", ".join(f"{r.rate:,.0f}" for r in rounds[variant])])
    section.notes.append(
        f"on/off records/s, median of the rounds' ratios = {fmt_ratio(ratio)} (goal: at least {GOAL:.2f}x, i.e. at most 5% fewer records/s): "
        f"{verdict(ratio >= GOAL)}"
    )
    section.notes.append(f"CPU per record (this process + Redis main thread), on/off = {fmt_ratio(cpu)}")
    print(f"on/off records/s ratio (median of rounds): {ratio:.3f}; CPU per record on/off: {cpu:.3f}", flush=True)
    return section
