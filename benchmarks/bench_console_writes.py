"""Console aggregates on the write path: request records/s with ``OTEL_REDIS_CONSOLE_AGGREGATES``
on vs off, in alternating rounds against one private Redis (flushed between rounds), so both
variants see the same machine load. The goal: aggregates cost at most 5% of records/s.

A second, store-level measure is less disturbed by a loaded machine: the same 512-record batches
written by two RedisStores (aggregates on, off), each to its own Redis, alternating batch by batch,
and the CPU each batch took (this process, that Redis's main thread) summed per round.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, NamedTuple, Sequence

import redis

import otel_redis
from otel_redis.counters import PipelineCounters
from otel_redis.connection import make_client
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.record import LogEntry, RequestFields
from otel_redis.store import RedisStore

from .bench_requests import UA, _emit_all, _main_thread_cpu_s, _requests
from .harness import BenchContext, Section, fmt_ratio, verdict

GOAL = 0.95
#: records per store-level batch (the exporter's default batch size)
BATCH = 512


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


def _entries(reqs: Sequence[tuple[Any, ...]]) -> list[LogEntry]:
    """The requests of :func:`_requests` as the entries the exporter would hand the store."""
    base = time.time_ns()
    out = []
    for i, (m, p, s, ip, host, fqdn, q, route, rt, user, ref, size, err, tid, sid) in enumerate(reqs):
        out.append(LogEntry(
            timestamp_ns=base + i * 1000, level="ERROR" if s >= 500 else "INFO", severity_number=17 if s >= 500 else 9,
            body=f"{m} {p}", trace_id=f"{tid:032x}", span_id=f"{sid:016x}",
            request=RequestFields(method=m, path=p, status_code=s, client_ip=ip, proxy_hostname=host, client_hostname=fqdn,
                                  query=q, route=route, response_time_ms=rt, user_id=user, user_agent=UA, referrer=ref,
                                  bytes_sent=size, error=err),
        ))
    return out


class StoreRound(NamedTuple):
    python_us: dict[str, float]
    redis_us: dict[str, float]


def measure_store(ctx: BenchContext, rounds: int | None = None) -> list[StoreRound]:
    """Per round: every batch written by the aggregates-on store and by the off one back to back
    (which goes first alternates), each store on its own Redis (both flushed per round); CPU per
    record of each variant, this process and its Redis's main thread."""
    n = 5_000 if ctx.quick else 20_000
    rounds = rounds or (2 if ctx.quick else 5)
    entries = _entries(_requests(n))
    batches = [entries[i : i + BATCH] for i in range(0, n, BATCH)]
    out: list[StoreRound] = []
    with ctx.redis() as (_s1, on_settings), ctx.redis() as (_s2, off_settings):
        clients = {"on": redis.Redis.from_url(on_settings.redis_url), "off": redis.Redis.from_url(off_settings.redis_url)}
        settings = {"on": on_settings.with_overrides(reverse_dns=False, console_aggregates=True),
                    "off": off_settings.with_overrides(reverse_dns=False, console_aggregates=False)}
        for r in range(rounds + 1):  # the first a warm-up
            for client in clients.values():
                client.flushall()
            stores = {v: RedisStore(make_client(settings[v]), settings[v]) for v in clients}
            py = dict.fromkeys(clients, 0.0)
            rd = dict.fromkeys(clients, 0.0)
            for i, batch in enumerate(batches):
                for variant in ("on", "off") if (i + r) % 2 == 0 else ("off", "on"):
                    client = clients[variant]
                    redis0, cpu0 = _main_thread_cpu_s(client), time.process_time()
                    stores[variant].write(batch)
                    py[variant] += time.process_time() - cpu0
                    rd[variant] += _main_thread_cpu_s(client) - redis0
            for store in stores.values():
                store.client.close()
            if r:
                out.append(StoreRound({v: t / n * 1e6 for v, t in py.items()}, {v: t / n * 1e6 for v, t in rd.items()}))
        for client in clients.values():
            client.close()
    return out


def run(ctx: BenchContext) -> Section:
    store_rounds = measure_store(ctx)
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
    store_ratio = statistics.median(
        (r.python_us["on"] + r.redis_us["on"]) / (r.python_us["off"] + r.redis_us["off"]) for r in store_rounds)
    med_py = {v: statistics.median(r.python_us[v] for r in store_rounds) for v in ("on", "off")}
    med_rd = {v: statistics.median(r.redis_us[v] for r in store_rounds) for v in ("on", "off")}
    section.notes.append(
        f"Store level ({BATCH}-record batches through RedisStore.write, on and off alternating batch by batch, each on "
        f"its own Redis, {len(store_rounds)} rounds of {5_000 if ctx.quick else 20_000:,} records): CPU per "
        f"record on/off = {fmt_ratio(store_ratio)} (median of the rounds' ratios; this process {med_py['on']:.1f} vs "
        f"{med_py['off']:.1f} us, Redis main thread {med_rd['on']:.1f} vs {med_rd['off']:.1f} us): "
        f"{verdict(1 / store_ratio >= GOAL)} as records/s at the same CPU"
    )
    print(f"store level CPU per record on/off: {store_ratio:.3f}", flush=True)
    print(f"on/off records/s ratio (median of rounds): {ratio:.3f}; CPU per record on/off: {cpu:.3f}", flush=True)
    return section
