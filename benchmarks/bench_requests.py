"""Request logging: exporter throughput and Redis utilisation, and memory per record; each against a
baseline measured in the same run (requests/s of instrumented web apps: ``bench_web.py``).

1. Request records with the full Log Entry Schema, from ``emit_request`` (what the middleware calls)
   to stored, through the same processor: our exporter vs a naive exporter written as the
   specification's ``batch_logs`` (one redis-py pipeline per batch, one command per index update,
   an EXPIRE per index per record, the record JSON again in the stream, response-time lists).
   Redis utilisation = records/s x the Redis main thread's CPU seconds per record (INFO cpu: commandstats
   counts the commands a script runs twice).
2. Redis memory per stored record (``INFO memory`` used_memory delta / N) for the two layouts.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any, Sequence

import orjson
import redis
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

import otel_redis
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.record import entry_to_dict, from_readable
from otel_redis.request_log import emit_request

from .harness import BenchContext, Section, commandstats, fmt_ratio, verdict

UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
ROUTES = [
    ("GET", "/users/{user_id}", "/users/{n}"),
    ("GET", "/items", "/items"),
    ("POST", "/orders", "/orders"),
    ("GET", "/orders/{order_id}", "/orders/{n}"),
    ("DELETE", "/sessions/{sid}", "/sessions/{n}"),
    ("GET", "/static/{path}", "/static/app-{n}.js"),
]
HOSTS = ["api.example.com", "auth.example.com", "www.example.com"]


def _requests(n: int, seed: int = 7) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        method, route, pattern = rng.choice(ROUTES)
        ip_n = rng.randrange(2000)
        status = rng.choices([200, 201, 304, 404, 500], [80, 5, 5, 7, 3])[0]
        out.append((
            method,
            pattern.replace("{n}", str(rng.randrange(100_000))),
            status,
            f"10.{ip_n // 250}.{ip_n % 250}.{rng.randrange(1, 4)}",
            rng.choice(HOSTS),
            f"host-{ip_n}.isp.example.net",
            "page=2&sort=desc" if rng.random() < 0.3 else "",
            route,
            rng.lognormvariate(3, 1),
            f"github-{rng.randrange(500)}" if rng.random() < 0.7 else "",
            "https://www.example.com/dashboard" if rng.random() < 0.5 else "",
            rng.randrange(100, 20_000),
            "RuntimeError: upstream failed" if status == 500 else "",
            rng.getrandbits(128) or 1,
            rng.getrandbits(64) or 1,
        ))
    return out


def _emit_all(reqs: Sequence[tuple[Any, ...]]) -> None:
    base = time.time_ns()
    for i, (m, p, s, ip, host, fqdn, q, route, rt, user, ref, size, err, tid, sid) in enumerate(reqs):
        emit_request(
            base + i * 1000, m, p, s, ip, host, client_hostname=fqdn, query=q, route=route, response_time_ms=rt,
            user_id=user, user_agent=UA, referrer=ref, bytes_sent=size, error=err, trace_id=tid, span_id=sid,
        )


class NaiveExporter(LogRecordExporter):
    """The specification's batch_logs + add_to_index + update_hourly_stats + track_error + publish_log."""

    def __init__(self, client: redis.Redis, settings: Any) -> None:
        self.client = client
        self.settings = settings
        self.counters = PipelineCounters()

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        pipe = self.client.pipeline(transaction=False)
        now = time.time()
        for readable in batch:
            e = from_readable(readable, self.settings.max_message_bytes, self.settings.max_attribute_bytes)
            req = e.request
            key = f"req:{e.timestamp_ns}:{req.client_ip}"  # ns, not ms: the spec's ms keys would collide
            doc = entry_to_dict(key, e)
            flat = {k: (v if isinstance(v, str) else orjson.dumps(v)) for k, v in doc.items() if v is not None}
            pipe.hset(key, mapping=flat)
            pipe.xadd("stream:requests", {"data": orjson.dumps(doc)})
            indexes = [f"idx:req:ip:{req.client_ip}", f"idx:req:fqdn:{req.client_hostname}",
                       f"idx:req:host:{req.proxy_hostname}", f"idx:req:status:{req.status_code}",
                       f"idx:req:path:{req.method}:{req.path}"]
            if req.user_id:
                indexes.append(f"idx:req:user:{req.user_id}")
            if req.status_code >= 400:
                indexes.append("idx:req:errors")
            if req.response_time_ms > 1000:
                indexes.append("idx:req:slow")
            for index in indexes:
                pipe.zadd(index, {key: now})
                pipe.expire(index, 86400)
            hour_key = f"stats:requests:{time.strftime('%Y%m%d:%H', time.gmtime(now))}"
            pipe.hincrby(hour_key, "total", 1)
            pipe.hincrby(hour_key, f"status_{req.status_code}", 1)
            pipe.lpush(f"{hour_key}:response_times", req.response_time_ms)
            if req.status_code >= 400:
                pipe.hincrby(f"stats:errors:{time.strftime('%Y%m%d:%H', time.gmtime(now))}", str(req.status_code), 1)
            pipe.pfadd(f"stats:unique_ips:{req.proxy_hostname}:{time.strftime('%Y%m%d:%H', time.gmtime(now))}",
                       req.client_ip)
        pipe.execute()
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _write_run(ctx: BenchContext, naive: bool, reqs: Sequence[tuple[Any, ...]]) -> dict[str, float]:
    """One fresh Redis, one pipeline; emit every request and wait until stored."""
    with ctx.redis() as (server, settings):
        settings = settings.with_overrides(reverse_dns=False)
        client = redis.Redis.from_url(settings.redis_url)
        server_pid = server.process.pid if server.process is not None else None
        if naive:
            exporter: Any = NaiveExporter(client, settings)
        else:
            exporter = RedisLogRecordExporter(settings=settings, counters=PipelineCounters(), client=client)
        otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
        client.config_resetstat()
        mem0 = client.info("memory")["used_memory"]
        main0 = _main_thread_cpu_s(client)
        redis_cpu0 = _process_cpu_s(server_pid) if server_pid else None
        cpu0 = time.process_time()
        started = time.perf_counter()
        _emit_all(reqs)
        otel_redis.force_flush()
        elapsed = time.perf_counter() - started
        our_cpu = time.process_time() - cpu0
        redis_cpu1 = _process_cpu_s(server_pid) if server_pid else None
        main1 = _main_thread_cpu_s(client)
        # ours counts what it sends: commandstats also counts the commands its scripts run
        sent = None if naive else exporter.store.commands_sent  # force_flush finished every batch
        otel_redis.shutdown()
        mem1 = client.info("memory")["used_memory"]
        calls = sent if sent is not None else _commands_sent(commandstats(client))
        stored = sum(1 for _ in client.scan_iter("req:*", count=10_000))
        client.close()
    n = len(reqs)
    server_s = main1 - main0
    return {
        "rate": n / elapsed,
        "server_us": server_s / n * 1e6,
        "util": (n / elapsed) * server_s / n,
        "calls": calls / n,
        "mem": (mem1 - mem0) / max(stored, 1),
        "stored": stored,
        "python_us": our_cpu / n * 1e6,
        "redis_cpu_us": (redis_cpu1 - redis_cpu0) / n * 1e6 if redis_cpu0 is not None and redis_cpu1 is not None else 0.0,
    }


def _main_thread_cpu_s(client: redis.Redis) -> float:
    """CPU seconds of the Redis main thread (INFO cpu): every command it executed, with reading
    the commands and writing the replies. INFO commandstats cannot serve once scripts run: a
    command a script calls is counted twice, in the script's time and in its own."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"])


def _commands_sent(stats: dict[str, dict[str, float]]) -> float:
    """The naive exporter's commands (it runs no script): every call INFO commandstats counted."""
    return sum(v["calls"] for k, v in stats.items() if k not in ("info", "config|resetstat", "config"))


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), from /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(ctx: BenchContext) -> Section:
    n = 5_000 if ctx.quick else 20_000
    rounds = 1 if ctx.quick else 5
    section = Section(
        title="Request logging: exporter throughput, memory per record",
        command="python3 dev.py bench --only requests",
        headers=["measure", "ours", "baseline", "ratio", "goal", "verdict"],
    )
    reqs = _requests(n)
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "naive": []}
    for _ in range(rounds):
        runs["naive"].append(_write_run(ctx, True, reqs))
        runs["ours"].append(_write_run(ctx, False, reqs))
    best = {k: max(v, key=lambda r: r["rate"]) for k, v in runs.items()}
    ours, naive = best["ours"], best["naive"]
    r_rate = ours["rate"] / naive["rate"]
    section.rows.append([
        f"request records/s, emit to stored ({n:,} records, full schema)",
        f"{ours['rate']:,.0f}/s", f"{naive['rate']:,.0f}/s (naive batch_logs)", fmt_ratio(r_rate), ">= 4x",
        verdict(r_rate >= 4),
    ])
    section.rows.append([
        "Redis main-thread CPU per record (INFO cpu), commands sent per record",
        f"{ours['server_us']:.1f} us, {ours['calls']:.1f} cmds", f"{naive['server_us']:.1f} us, {naive['calls']:.1f} cmds",
        fmt_ratio(ours["server_us"] / naive["server_us"]), "", "",
    ])
    section.rows.append([
        "CPU per record: this process (emit, export; all threads), the Redis server process",
        f"{ours['python_us']:.1f} us, {ours['redis_cpu_us']:.1f} us", f"{naive['python_us']:.1f} us, "
        f"{naive['redis_cpu_us']:.1f} us", fmt_ratio(ours["python_us"] / naive["python_us"]), "", "",
    ])
    section.rows.append([
        "Redis utilisation (records/s x main-thread CPU s per record)",
        f"{ours['util']:.2f}", f"{naive['util']:.2f}", "", ">= 0.7", verdict(ours["util"] >= 0.7),
    ])
    r_mem = ours["mem"] / naive["mem"]
    section.rows.append([
        "Redis memory per stored request record (used_memory delta / N)",
        f"{ours['mem']:,.0f} B", f"{naive['mem']:,.0f} B", fmt_ratio(r_mem), "<= 0.6x", verdict(r_mem <= 0.6),
    ])
    section.notes += [
        f"Throughput and memory: best of {rounds} alternating runs per exporter, each on a fresh Redis; both "
        "exporters sit behind the same BatchLogRecordProcessor (512 per batch) and the same emit_request calls, "
        "so the ratio is the write path alone plus its share of the GIL.",
        "The naive layout stores the flat record (with the resource JSON) as a hash, the same record as JSON in "
        "stream:requests, one ZADD + EXPIRE per index per record, HINCRBYs, an LPUSH of the response time and a "
        "PFADD; its record keys use nanoseconds so that none collide (the specification's would).",
        "Where the time goes (`.venv/bin/python -m benchmarks.stages` and `-m benchmarks.stages_asgi --fastapi`, "
        "CPU time per record): emit about 2 us, building the entry 3 us, planning, encoding and packing the "
        "commands 16 to 19 us: about 22 us of Python per request record (about 30 us in the run above, with the "
        "socket writes, the replies, the garbage collector and the processor's threads), against 19 to 25 us of the "
        "Redis main thread.",
        "Why throughput sits at its goal rather than past it: under this burst the exporter leaves one batch in "
        "flight (its last replies are read after the next batch is sent), so the writer no longer waits for Redis "
        "(about 5 us per record of waiting before, 1 us after); what is left is CPU. The writer's Python (about 30 "
        "us per record, all threads) and Redis (about 25 us) share the machine's two cores with each other and "
        "with the other services on it, so the rate follows the Python side and moves with the machine's load by "
        "about 10 % between runs.",
        "Requests/s of instrumented web apps (FastAPI, Flask, zero-code): `python3 dev.py bench --only web`.",
    ]
    return section
