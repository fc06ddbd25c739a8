"""Per-stage cost of a request record, for profiling the write path (not part of RESULTS.md).

    .venv/bin/python -m benchmarks.stages [N] [--profile STAGE]

Stages, each timed alone over the same N records (best of several rounds of this thread's CPU time,
microseconds per record; the round trip is wall time):
emit (emit_request into a processor whose exporter only collects), from_readable, plan (the store's
command planning, with encode and the hiredis packing of each command, as the store packs while it
plans), round trip (send the packed batch to a private Redis and read the replies), and the Redis
main thread's CPU time (INFO cpu).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from typing import Any, Callable, Sequence

import redis
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

import otel_redis
from otel_redis import resp
from otel_redis.counters import PipelineCounters
from otel_redis.record import from_readable
from otel_redis.store import RedisStore

from .bench_requests import _emit_all, _main_thread_cpu_s, _requests
from .harness import BenchContext

BATCH = 512


class Collect(LogRecordExporter):
    """An exporter that keeps what it is given (or, with ``keep=False``, only counts it)."""

    def __init__(self, keep: bool = True) -> None:
        self.records: list[Any] = []
        self.keep = keep
        self.seen = 0
        self.counters = PipelineCounters()

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.seen += len(batch)
        if self.keep:
            self.records.extend(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _best(fn: Callable[[], Any], n: int, rounds: int = 5, setup: Callable[[], Any] | None = None) -> float:
    best = float("inf")
    for _ in range(rounds):
        if setup is not None:
            setup()
        t = time.thread_time()  # CPU time of this thread: steadier than wall time on a shared machine
        fn()
        best = min(best, time.thread_time() - t)
    return best / n * 1e6


def _batches(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 10_000
    profile = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else None
    reqs = _requests(n)
    ctx = BenchContext()
    with ctx.redis() as (_server, settings):
        settings = settings.with_overrides(reverse_dns=False)
        collect = Collect()
        otel_redis.configure(settings=settings, exporter=collect, set_global_provider=False)  # type: ignore[arg-type]

        def emit() -> None:
            collect.records.clear()
            _emit_all(reqs)
            otel_redis.force_flush()

        t_emit = _best(emit, n)
        records = list(collect.records)
        otel_redis.shutdown()
        mm, ma = settings.max_message_bytes, settings.max_attribute_bytes

        def normalise() -> list[Any]:
            return [from_readable(r, mm, ma) for r in records]

        def unfinish() -> None:  # entries built at emit are finished once; time that each round
            for r in records:
                object.__setattr__(r, "_entry", None)

        t_norm = _best(normalise, n, setup=unfinish)
        entries = normalise()
        client = redis.Redis.from_url(settings.redis_url)
        store = RedisStore(client, settings)
        batches = _batches(entries)

        def plan() -> list[list[Any]]:
            out = []
            store._refresh.clear()
            for b in batches:
                out.append(store.planner.plan(b).args)  # plan only: nothing is sent
            return out

        t_plan = _best(plan, n)
        planned = plan()
        ncmds = sum(len(p) for p in planned) / n

        def round_trip() -> None:
            for p in planned:
                send = resp.EarlySend(client, packed=True)
                send.args.extend(p)
                send.finish()

        client.flushall()
        main0 = _main_thread_cpu_s(client)
        t0 = time.perf_counter()
        round_trip()
        t_rt = (time.perf_counter() - t0) / n * 1e6
        usec = (_main_thread_cpu_s(client) - main0) * 1e6
        t_write = _best(lambda: [store.write(b) for b in batches], n, rounds=3, setup=store._refresh.clear)
        if profile:
            fn = {"emit": emit, "normalise": normalise, "plan": plan,
                  "write": lambda: [store.write(b) for b in batches]}[profile]
            if profile == "emit":
                otel_redis.configure(settings=settings, exporter=collect, set_global_provider=False)  # type: ignore[arg-type]
            prof = cProfile.Profile()
            prof.enable()
            fn()
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            if profile == "emit":
                otel_redis.shutdown()
        client.close()
    print(f"records {n}, commands/record {ncmds:.2f}")
    for name, value in (("emit", t_emit), ("from_readable", t_norm), ("plan+encode+pack", t_plan),
                        ("round trip (incl. server)", t_rt), ("store.write total", t_write),
                        ("redis main thread (INFO cpu)", usec / n)):
        print(f"{name:30s} {value:8.2f} us/record")
    python = t_emit + t_norm + t_plan
    print(f"{'python total (emit..pack)':30s} {python:8.2f} us/record; utilisation bound {usec / n / python:.2f}")


if __name__ == "__main__":
    main()
