"""Query API: latency with 10,000 and with 1,000,000 stored request records, and live-follow latency.

1. Request records are written straight through the store (``RedisStore.write``, 10,000 per round
   trip), spread over the last 23 hours, with the same proportions at both sizes, so every query
   returns a full page of 100 at both: the queried IP holds 1 % of the records, ``hostname=api``
   (25 %) and ``status=500`` (4 %) intersect in 1 %, errors are 10 %. Each size has its own Redis
   and its own service (``otel-redis serve`` in a subprocess, HTTP on localhost), measured
   alternately. Goal: 1,000,000 within 2x of 10,000 (served from indexes, not a scan).
2. Live follow: a log call in this process (the real pipeline, 100 ms batch window) until the
   record arrives on ``GET /logs/stream``; calls at random phases of the window. Goal: p95 within
   2.5x the batch window.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

import otel_redis
from otel_redis import api
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.levels import NAME_TO_SEVERITY
from otel_redis.record import LogEntry, RequestFields
from otel_redis.store import RedisStore
from tests.servers import free_port, run_service

from .harness import BenchContext, Section, fmt_ratio, verdict

TOKEN = "bench-token"
IP = "10.0.0.1"
HOSTS = ["api.example.com", "auth.example.com", "www.example.com", "cdn.example.com"]
ROUTES = [("GET", "/users/{id}"), ("GET", "/items"), ("POST", "/orders"), ("GET", "/orders/{id}")]
QUERIES = [
    ("/logs/ip/{ip}", f"/logs/ip/{IP}", {}),
    ("/logs/search (hostname + status)", "/logs/search", {"hostname": "api.example.com", "status": 500}),
    ("/logs/errors", "/logs/errors", {}),
    ("/logs/stats", "/logs/stats", {}),
]
WRITE_BATCH = 5_000


def _entries(n: int, seed: int, now_ns: int) -> list[LogEntry]:
    rng = random.Random(seed)
    span_ns = 23 * 3600 * 10**9
    out = []
    info, warn, error = (NAME_TO_SEVERITY[x].value for x in ("INFO", "WARNING", "ERROR"))
    for _ in range(n):
        r = rng.random()
        ip = IP if r < 0.01 else f"10.{rng.randrange(1, 5)}.{rng.randrange(250)}.{rng.randrange(1, 5)}"
        host = HOSTS[0] if rng.random() < 0.25 else rng.choice(HOSTS[1:])
        s = rng.random()
        status = 500 if s < 0.04 else 404 if s < 0.10 else 201 if s < 0.20 else 200
        method, route = rng.choice(ROUTES)
        path = route.replace("{id}", str(rng.randrange(100_000)))
        level, sev = ("ERROR", error) if status >= 500 else ("WARNING", warn) if status >= 400 else ("INFO", info)
        ts = now_ns - rng.randrange(span_ns)
        out.append(
            LogEntry(
                timestamp_ns=ts,
                level=level,
                severity_number=sev,
                body=f"{method} {path}",
                trace_id=f"{rng.getrandbits(128):032x}",
                span_id=f"{rng.getrandbits(64):016x}",
                request=RequestFields(
                    method=method, path=path, status_code=status, client_ip=ip, proxy_hostname=host,
                    route=route, response_time_ms=rng.lognormvariate(3, 1), user_id=f"user-{rng.randrange(500)}",
                    bytes_sent=rng.randrange(100, 20_000), error="upstream failed" if status >= 500 else "",
                ),
            )
        )
    return out


def _fill(store: RedisStore, n: int, seed: int, now_ns: int) -> float:
    started = time.perf_counter()
    for start in range(0, n, WRITE_BATCH):
        store.write(_entries(min(WRITE_BATCH, n - start), seed + start, now_ns))
    return time.perf_counter() - started


def _once(client: httpx.Client, url: str, params: dict[str, Any]) -> tuple[float, int]:
    t0 = time.perf_counter()
    resp = client.get(url, params=params)
    elapsed = time.perf_counter() - t0
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return elapsed, body.get("count", body.get("requests", {}).get("total", 0))


def _compare(clients: list[httpx.Client], rounds: int, per_round: int) -> dict[str, list[tuple[float, int]]]:
    """Each query on every service, alternating, round after round: a load spike on this shared
    machine hits all sides alike. Per round the best of ``per_round`` calls; then the median."""
    out: dict[str, list[tuple[float, int]]] = {}
    for name, url, params in QUERIES:
        for client in clients:
            for _ in range(3):
                _once(client, url, params)  # warm-up
        best: list[list[float]] = [[] for _ in clients]
        counts = [0] * len(clients)
        for _ in range(rounds):
            for side, client in enumerate(clients):
                times = []
                for _ in range(per_round):
                    elapsed, counts[side] = _once(client, url, params)
                    times.append(elapsed)
                best[side].append(min(times))
        out[name] = [(statistics.median(b), n) for b, n in zip(best, counts)]
    return out


async def _follow_latency(base_url: str, samples: int, window_s: float) -> list[float]:
    """Log calls at random phases; time from the call to the SSE event carrying the record."""
    sent: dict[str, float] = {}
    got: list[float] = []
    rng = random.Random(5)
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(60, connect=10)) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with client.stream("GET", "/logs/stream", params={"event": "bench_follow"}, headers=headers) as resp:
            lines = resp.aiter_lines()
            async for line in lines:
                if line.startswith(": ready"):
                    break

            def emit() -> None:
                for i in range(samples):
                    time.sleep(window_s * (0.5 + rng.random()))
                    body = f"follow-{i}"
                    sent[body] = time.perf_counter()
                    api.log_event("bench_follow", {"n": i}, message=body)

            thread = threading.Thread(target=emit, daemon=True)
            thread.start()
            async for line in lines:
                if line.startswith("data: "):
                    arrived = time.perf_counter()
                    body = orjson.loads(line[6:])["body"]
                    got.append(arrived - sent[body])
                    if len(got) == samples:
                        break
            thread.join()
    return got


def _service(stack: contextlib.ExitStack, url: str, data_dir: Path, name: str) -> str:
    env = {
        "REDIS_URL": url,
        "OTEL_REDIS_DATA_DIR": str(data_dir / name),
        "OTEL_REDIS_API_TOKENS": TOKEN,
        "OTEL_REDIS_CLEANUP_INTERVAL_S": "0",
        "OTEL_REDIS_ALERTS_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
    # ready = answers its OpenAPI document (/healthz SCANs the keyspace for forwarder counters, which
    # takes seconds over millions of keys)
    service = stack.enter_context(
        run_service(argv, env=env, port=free_port(), tmp_path=data_dir, name=name, health_path="/openapi.json")
    )
    return service.base_url


def run(ctx: BenchContext) -> Section:
    sizes = [10_000, 30_000, 100_000] if ctx.quick else [10_000, 100_000, 1_000_000]
    small, mid, big = sizes
    rounds, per_round = (5, 3) if ctx.quick else (15, 3)
    section = Section(
        title="Query API latency (10k vs 1M stored requests) and live follow",
        command="python3 dev.py bench --only query",
        headers=["query", "records returned", *(f"{n:,} stored (ms)" for n in sizes), f"{big:,} / {small:,}",
                 f"{big:,} / {mid:,}", "goal <= 2x"],
    )
    now_ns = time.time_ns()
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(ctx.redis()) for _ in sizes]
        settings = servers[0][1]
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        writes = []
        for (srv, _settings), n in zip(servers, sizes):
            client = redis.Redis.from_url(srv.url, socket_timeout=300)  # big batches on a busy machine
            writes.append(_fill(RedisStore(client, settings), n, 1, now_ns))
            client.close()
        urls = [_service(stack, srv.url, data_dir, f"bench-query-{n}") for (srv, _s), n in zip(servers, sizes)]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        clients = [stack.enter_context(httpx.Client(base_url=u, headers=headers, timeout=60)) for u in urls]
        results = _compare(clients, rounds, per_round)
        for name, per_size in results.items():
            times = [t for t, _n in per_size]
            ratio = times[2] / times[0]
            if name == "/logs/stats":
                shown = "totals " + " / ".join(f"{n:,}" for _t, n in per_size)
            else:
                shown = " / ".join(str(n) for _t, n in per_size)
            section.rows.append([name, shown, *(f"{t * 1000:.2f}" for t in times), fmt_ratio(ratio),
                                 fmt_ratio(times[2] / times[1]), verdict(ratio <= 2.0)])
        big_srv = servers[2][0]

        pipeline_settings = settings.with_overrides(redis_url=big_srv.url, log_level="INFO")
        exporter = RedisLogRecordExporter(settings=pipeline_settings)
        otel_redis.configure(settings=pipeline_settings, exporter=exporter, set_global_provider=False)
        try:
            window_s = pipeline_settings.batch_delay_ms / 1000
            samples = 20 if ctx.quick else 60
            lat = asyncio.run(_follow_latency(urls[2], samples, window_s))
        finally:
            otel_redis.shutdown()
    lat.sort()
    p50 = statistics.median(lat)
    p95 = lat[max(0, int(round(0.95 * len(lat))) - 1)]
    goal = 2.5 * window_s
    section.rows.append(
        ["log call -> SSE event (p50 / p95 ms)", f"{len(lat)} records", "", "", f"{p50 * 1000:.0f} / {p95 * 1000:.0f}",
         "", f"p95 = {p95 / window_s:.2f}x window", verdict(p95 <= goal) + f" (<= {goal * 1000:.0f} ms)"]
    )
    section.notes += [
        "One Redis server per size, each with its own service (otel-redis serve, HTTP on localhost); request records "
        "written with RedisStore.write, " + f"{WRITE_BATCH:,} per round trip (" + ", ".join(
            f"{n:,} in {w:.0f} s" for n, w in zip(sizes, writes)) + "), spread over the last 23 hours.",
        "Same proportions at both sizes, so each record query returns a full page (limit 100) at both: the ratio is "
        "the cost of the store's size alone (the random 10k store holds slightly fewer two-filter matches). "
        "/logs/stats (24 h, 4 hostnames) reads only hourly stats keys: its cost follows how full the hourly "
        "response-time histograms (distinct 2 % buckets) and HyperLogLogs (sparse, then dense 12 KB) are, which "
        "grows with the requests per hostname and hour but is bounded (a histogram has at most ~1,000 buckets, a "
        "HyperLogLog 12 KB); it was not measured beyond 1M here. Completed hours come from the service's caches "
        "(decoded hour histograms, and one merged HyperLogLog union per figure, each used 5 minutes): the warm-up "
        "requests fill them, so the figures are those of a dashboard polling the statistics, which reads the current "
        "hour's histograms and merges two HyperLogLogs per figure; the first request after the caches expire "
        "reads all 24 hours again.",
        f"The services are measured alternately, {rounds} rounds; per round the best of {per_round} sequential "
        f"requests, then the median of the rounds (this machine has {os.cpu_count()} CPUs and is shared).",
        f"Live follow: batch window {window_s * 1000:.0f} ms (OTEL_REDIS_BATCH_DELAY_MS); the log call happens in the "
        "benchmark process, the stream is served by the service (XREAD BLOCK) of the large store.",
    ]
    return section
