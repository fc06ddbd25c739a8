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

import io
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
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


#: the write path before the planner/sender split, measured in the same run as the "before" row
#: the commit of the planner/sender split's "before"; OTEL_REDIS_BENCH_SPLIT_BEFORE names another
#: (for example the previous figure's commit, to show a change costs no throughput)
SPLIT_REF = "7dd7272"
BEFORE_REF = os.environ.get("OTEL_REDIS_BENCH_SPLIT_BEFORE", SPLIT_REF)
#: what "before" is, as the table and notes say it
BEFORE_WHAT = (
    "the write path before the planner/sender split: one ~370-line planner, replies read through redis-py's "
    "private parser" if BEFORE_REF == SPLIT_REF else "the commit OTEL_REDIS_BENCH_SPLIT_BEFORE named"
)
ROOT = Path(__file__).resolve().parent.parent
#: write-run variants: the specification's naive exporter, ours at BEFORE_REF, ours as checked out
VARIANTS = ("naive", "before", "ours")


def _before_package(folder: Path) -> Path | None:
    """``folder`` holding the otel_redis package at :data:`BEFORE_REF` (``git archive``); None
    where there is no git history to take it from."""
    try:
        archive = subprocess.run(["git", "archive", BEFORE_REF, "otel_redis"], cwd=ROOT, capture_output=True,
                                 check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _write_run(ctx: BenchContext, variant: str, n: int, before: Path | None) -> dict[str, Any]:
    """One fresh Redis; a child process emits ``n`` requests and waits until they are stored
    (:func:`_child_run`). Each variant runs in a process of its own, so "before" imports the old
    package (its folder first on the path) and every variant starts alike."""
    with ctx.redis() as (server, settings):
        pid = server.process.pid if server.process is not None else 0
        folder = before if variant == "before" else ROOT
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(folder), str(ROOT)]))}
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_requests", variant, settings.redis_url or "", str(pid), str(n)],
            cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=True,
        ).stdout
    return orjson.loads(out.strip().splitlines()[-1])


def _child_run(variant: str, url: str, server_pid: int, n: int) -> dict[str, Any]:
    """Emit ``n`` requests through the processor and one exporter, until every batch is stored;
    what it cost this process, the Redis server process (/proc) and its main thread (INFO cpu)."""
    from otel_redis.config import load_settings

    reqs = _requests(n)
    settings = load_settings({}).with_overrides(redis_url=url, reverse_dns=False,
                                                data_dir=Path(tempfile.mkdtemp(prefix="otel-redis-bench-")))
    client = redis.Redis.from_url(url)
    if variant == "naive":
        exporter: Any = NaiveExporter(client, settings)
    else:
        exporter = RedisLogRecordExporter(settings=settings, counters=PipelineCounters(), client=client)
    otel_redis.configure(settings=settings, exporter=exporter, set_global_provider=False)
    client.config_resetstat()
    mem0 = client.info("memory")["used_memory"]
    main0 = _main_thread_cpu_s(client)
    redis_cpu0 = _process_cpu_s(server_pid) or 0.0
    cpu0 = time.process_time()
    started = time.perf_counter()
    _emit_all(reqs)
    otel_redis.force_flush()
    elapsed = time.perf_counter() - started
    our_cpu = time.process_time() - cpu0
    redis_cpu = (_process_cpu_s(server_pid) or 0.0) - redis_cpu0
    server_s = _main_thread_cpu_s(client) - main0
    ran = _commands_sent(commandstats(client))
    # ours counts what it sends (a script call once): commandstats also counts what its scripts run
    sent = ran if variant == "naive" else exporter.store.commands_sent  # force_flush finished every batch
    otel_redis.shutdown()
    mem1 = client.info("memory")["used_memory"]
    stored = sum(1 for _ in client.scan_iter("req:*", count=10_000))
    client.close()
    return {
        "rate": n / elapsed,
        "server_us": server_s / n * 1e6,
        "util": redis_cpu / elapsed,
        "main_util": server_s / elapsed,
        "calls": sent / n,
        "ran": ran / n,
        "mem": (mem1 - mem0) / max(stored, 1),
        "stored": stored,
        "python_us": our_cpu / n * 1e6,
        "redis_cpu_us": redis_cpu / n * 1e6,
        "package": str(Path(otel_redis.__file__).parent),
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
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="otel-redis-bench-before-") as tmp:
        before = _before_package(Path(tmp))
        variants = VARIANTS if before is not None else ("naive", "ours")
        for _ in range(rounds):  # alternating: each round runs every variant once, on a fresh Redis
            for variant in variants:
                runs[variant].append(_write_run(ctx, variant, n, before))
    best = {k: max(v, key=lambda r: r["rate"]) for k, v in runs.items() if v}
    ours, naive = best["ours"], best["naive"]
    r_rate = ours["rate"] / naive["rate"]
    section.rows.append([
        f"request records/s, emit to stored ({n:,} records, full schema)",
        f"{ours['rate']:,.0f}/s", f"{naive['rate']:,.0f}/s (naive batch_logs)", fmt_ratio(r_rate), ">= 4x",
        verdict(r_rate >= 4),
    ])
    old = best.get("before")
    if old is not None:
        per_round = [a["rate"] / b["rate"] for a, b in zip(runs["ours"], runs["before"])]
        section.rows.append([
            f"request records/s, this write path vs otel_redis at {BEFORE_REF} ({BEFORE_WHAT}; "
            "ratio: median of the per-round ratios)",
            f"{ours['rate']:,.0f}/s, {ours['calls']:.2f} cmds/record", f"{old['rate']:,.0f}/s, "
            f"{old['calls']:.2f} cmds/record", fmt_ratio(statistics.median(per_round)),
            *(["~1x", ""] if BEFORE_REF == SPLIT_REF else [">= 0.95x", verdict(statistics.median(per_round) >= 0.95)]),
        ])
    section.rows.append([
        "Redis main-thread CPU per record (INFO cpu); commands sent per record (commands Redis ran, with "
        "those inside scripts: INFO commandstats delta / records)",
        f"{ours['server_us']:.1f} us, {ours['calls']:.2f} cmds ({ours['ran']:.1f})",
        f"{naive['server_us']:.1f} us, {naive['calls']:.1f} cmds",
        fmt_ratio(ours["server_us"] / naive["server_us"]), "", "",
    ])
    section.rows.append([
        "CPU per record: the writing process (emit, export; all threads), the Redis server process",
        f"{ours['python_us']:.1f} us, {ours['redis_cpu_us']:.1f} us", f"{naive['python_us']:.1f} us, "
        f"{naive['redis_cpu_us']:.1f} us", fmt_ratio(ours["python_us"] / naive["python_us"]), "", "",
    ])
    util_before = f"; before {old['util']:.2f}" if old is not None else ""
    section.rows.append([
        "Redis utilisation: the redis-server process's CPU s (/proc/<pid>/stat) over the run's wall time "
        "(its main thread alone, INFO cpu)",
        f"{ours['util']:.2f} ({ours['main_util']:.2f}){util_before}", f"{naive['util']:.2f} ({naive['main_util']:.2f})",
        "", ">= 0.7", verdict(ours["util"] >= 0.7),
    ])
    r_mem = ours["mem"] / naive["mem"]
    section.rows.append([
        "Redis memory per stored request record (used_memory delta / N)",
        f"{ours['mem']:,.0f} B", f"{naive['mem']:,.0f} B", fmt_ratio(r_mem), "<= 0.6x", verdict(r_mem <= 0.6),
    ])
    section.notes += [
        f"Throughput and memory: best of {rounds} alternating rounds (naive, before, ours in each), each run in a "
        "process of its own on a fresh Redis; every exporter sits behind the same BatchLogRecordProcessor (512 "
        "per batch) and the same emit_request calls, so the ratio is the write path alone plus its share of the "
        f"GIL. \"Before\" is the otel_redis package at commit {BEFORE_REF} ({BEFORE_WHAT}), taken with "
        "`git archive` into a temporary folder that comes first on the child's path; the benchmark code is the "
        "same. OTEL_REDIS_BENCH_SPLIT_BEFORE names another commit.",
        "The naive layout stores the flat record (with the resource JSON) as a hash, the same record as JSON in "
        "stream:requests, one ZADD + EXPIRE per index per record, HINCRBYs, an LPUSH of the response time and a "
        "PFADD; its record keys use nanoseconds so that none collide (the specification's would).",
        "Where the time goes (`.venv/bin/python -m benchmarks.stages` and `-m benchmarks.stages_asgi --fastapi`, "
        "CPU time per record): emit about 2 us, building the entry 3 us, planning, encoding and packing the "
        "commands 16 to 19 us: about 22 us of Python per request record (about 30 us in the run above, with the "
        "socket writes, the replies, the garbage collector and the processor's threads), against 19 to 25 us of the "
        "Redis main thread.",
        "What bounds the ratio: the Redis main thread spends about as much CPU per record in both layouts "
        "(about 55 us: ours runs about 10 commands per record once those inside the scripts are counted, the "
        "guarded call's stream entry, counters and console aggregates among them, the naive one 18 plain "
        "commands). With the utilisation near 0.75 in a quiet run, Redis is the limit, so the rate ratio follows "
        "Redis CPU per record, not the writer's Python (about a third of the naive exporter's). On this shared "
        "two-core machine both move with the load of the other processes: a second run of the same command "
        "under load measured 2.6x and a utilisation of 0.47, with before/after at 0.99x.",
        "Requests/s of instrumented web apps (FastAPI, Flask, zero-code): `python3 dev.py bench --only web`.",
    ]
    return section


if __name__ == "__main__":  # one write run (see _write_run): variant, Redis URL, server pid, records
    print(orjson.dumps(_child_run(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))).decode())
