"""Web console endpoints: latency with 10,000 and with 1,000,000 stored request records.

The console's panels read hourly aggregates (``stats:*``, capped hashes and histograms), never
records, so their cost should not follow the store's size. Request records are written straight
through the store (``RedisStore.write`` in big batches, with the aggregates it keeps; the records of
bench_query), spread over the last 23 hours, one Redis and one ``otel-redis serve`` per size,
measured alternately round after round. Goal: 1,000,000 within 2x of 10,000.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from pathlib import Path

import httpx
import redis

from otel_redis.store import RedisStore

from .bench_query import HOSTS, TOKEN, WRITE_BATCH, _fill, _service
from .harness import BenchContext, Section, commandstats, fmt_ratio, verdict

ENDPOINTS = [
    ("/logs/dashboard 1h", "/logs/dashboard", {"window": "1h"}),
    ("/logs/dashboard 24h", "/logs/dashboard", {"window": "24h"}),
    ("/logs/dashboard 24h hostname", "/logs/dashboard", {"window": "24h", "hostname": HOSTS[0]}),
    *((f"/logs/top/{k} 24h", f"/logs/top/{k}", {"window": "24h"})
      for k in ("ips", "paths", "agents", "referrers", "not_found", "slow_routes")),
    ("/logs/top/ips 24h hostname", "/logs/top/ips", {"window": "24h", "hostname": HOSTS[0]}),
    ("/logs/top/slow_routes 24h hostname", "/logs/top/slow_routes", {"window": "24h", "hostname": HOSTS[0]}),
    ("/logs/error_groups 24h", "/logs/error_groups", {"window": "24h"}),
]


def _once(client: httpx.Client, url: str, params: dict[str, str]) -> float:
    t0 = time.perf_counter()
    resp = client.get(url, params=params)
    elapsed = time.perf_counter() - t0
    assert resp.status_code == 200, resp.text
    return elapsed


def _compare(clients: list[httpx.Client], rounds: int, per_round: int) -> dict[str, list[float]]:
    """Per endpoint, every service in turn, round after round (a load spike hits all sides alike):
    per round the best of ``per_round`` calls, then the median of the rounds."""
    out: dict[str, list[float]] = {}
    for name, url, params in ENDPOINTS:
        for client in clients:
            for _ in range(3):
                _once(client, url, params)  # warm-up (fills the service's caches of completed hours)
        best: list[list[float]] = [[] for _ in clients]
        for _ in range(rounds):
            for side, client in enumerate(clients):
                best[side].append(min(_once(client, url, params) for _ in range(per_round)))
        out[name] = [statistics.median(b) for b in best]
    return out


def _redis_cost(admins: list[redis.Redis], clients: list[httpx.Client], url: str, params: dict[str, str]) -> list[str]:
    """Per service, what one request (caches warm) costs its Redis: commands and their microseconds
    (INFO commandstats around the request; nothing else talks to these servers)."""
    out = []
    for admin, client in zip(admins, clients):
        admin.config_resetstat()
        _once(client, url, params)
        stats = {k: v for k, v in commandstats(admin).items() if k not in ("config|resetstat", "config", "info")}
        calls = sum(int(v["calls"]) for v in stats.values())
        usec = sum(float(v["usec"]) for v in stats.values())
        out.append(f"{calls} cmds, {usec:,.0f} us")
    return out


def run(ctx: BenchContext) -> Section:
    sizes = [10_000, 200_000] if ctx.quick else [10_000, 1_000_000]
    small, big = sizes
    rounds, per_round = (5, 3) if ctx.quick else (15, 3)
    section = Section(
        title=f"Console endpoints ({small:,} vs {big:,} stored requests)",
        command="python3 dev.py bench --only console",
        headers=["endpoint", *(f"{n:,} stored (ms)" for n in sizes), f"{big:,} / {small:,}", "goal <= 2x",
                 "Redis per request (commands, time): small, big"],
    )
    now_ns = time.time_ns()
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(ctx.redis()) for _ in sizes]
        settings = servers[0][1]
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        writes = []
        for (srv, _settings), n in zip(servers, sizes):
            client = redis.Redis.from_url(srv.url, socket_timeout=300)
            writes.append(_fill(RedisStore(client, settings), n, 1, now_ns))
            client.close()
        urls = [_service(stack, srv.url, data_dir, f"bench-console-{n}") for (srv, _s), n in zip(servers, sizes)]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        clients = [stack.enter_context(httpx.Client(base_url=u, headers=headers, timeout=60)) for u in urls]
        admins = [stack.enter_context(contextlib.closing(redis.Redis.from_url(srv.url))) for srv, _s in servers]
        endpoints = {name: (url, params) for name, url, params in ENDPOINTS}
        for name, (t_small, t_big) in _compare(clients, rounds, per_round).items():
            ratio = t_big / t_small
            section.rows.append([name, f"{t_small * 1000:.2f}", f"{t_big * 1000:.2f}", fmt_ratio(ratio),
                                 verdict(ratio <= 2.0), "; ".join(_redis_cost(admins, clients, *endpoints[name]))])
    section.notes += [
        f"Request records written with RedisStore.write, {WRITE_BATCH:,} per round trip ("
        + ", ".join(f"{n:,} in {w:.0f} s" for n, w in zip(sizes, writes))
        + "), spread over the last 23 hours, 4 hostnames; one Redis and one service per size.",
        f"Measured alternately, {rounds} rounds; per round the best of {per_round} sequential requests, then the "
        f"median of the rounds (this machine has {os.cpu_count()} CPUs and is shared).",
        "The panels poll: warm-up requests fill the service's caches of settled hours (their merged top lists, "
        "series points, histograms and visitor unions, each used 5 minutes), so a request reads the current hour's "
        "hashes; the last column is one such request's Redis side (INFO commandstats).",
    ]
    return section
