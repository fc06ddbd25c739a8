"""Write path throughput on a Redis Cluster (3 masters on this host) for several shard counts S,
against one standalone server: the cost of the cluster sender and of splitting the hot keys."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

from otel_redis import levels, schema
from otel_redis.config import load_settings
from otel_redis.connection import make_client
from otel_redis.levels import NAME_TO_SEVERITY
from otel_redis.record import LogEntry, RequestFields
from otel_redis.store import RedisStore
from tests.redis_cluster import LocalRedisCluster

from .harness import BenchContext, Section

BATCH = 512


def _entries(start_ms: int, n: int) -> list[LogEntry]:
    """Half request records (a few routes, statuses and client IPs), half application logs."""
    out = []
    for i in range(n):
        ts = (start_ms + i) * 1_000_000
        if i % 2:
            out.append(LogEntry(timestamp_ns=ts, level="INFO", severity_number=9, body=f"message {i}", component="bench"))
            continue
        status = 500 if i % 10 == 0 else 200
        level = levels.request_level(status)
        out.append(LogEntry(
            timestamp_ns=ts, level=level, severity_number=NAME_TO_SEVERITY[level].value,
            body=schema.request_body("GET", f"/items/{i % 50}", status), component=levels.REQUEST_COMPONENT,
            scope_name=schema.REQUEST_SCOPE,
            request=RequestFields(method="GET", path=f"/items/{i % 50}", status_code=status, client_ip=f"10.0.{i % 7}.{i % 200}",
                                  proxy_hostname="api.test", response_time_ms=float(i % 90)),
        ))
    return out


def _best_rate(store_for: Callable[[], RedisStore], batches: list[list[LogEntry]], rounds: int, reset: Callable[[], object]) -> float:
    """Records per second of the best of ``rounds`` runs writing every batch through a new store."""
    best = None
    for _ in range(rounds):
        reset()
        store = store_for()
        started = time.perf_counter()
        for batch in batches:
            result = store.write_batch(batch)
            assert not result.failed, result.summary()
        elapsed = time.perf_counter() - started
        store.client.close()
        best = elapsed if best is None or elapsed < best else best
    return sum(map(len, batches)) / best  # type: ignore[operator]


def run(ctx: BenchContext) -> Section:
    n_batches = 4 if ctx.quick else 20
    rounds = 2 if ctx.quick else 5
    section = Section(
        title=f"Write path on a Redis Cluster: {n_batches} batches of {BATCH} records, one thread",
        command="python3 dev.py bench --only cluster_write",
        headers=["target", "records/s", "vs standalone"],
    )
    start = int(time.time() * 1000) - 600_000
    batches = [_entries(start + b * BATCH, BATCH) for b in range(n_batches)]
    with ctx.redis() as (_server, settings):
        client = make_client(settings)
        standalone = _best_rate(lambda: RedisStore(make_client(settings), settings), batches, rounds, client.flushall)
        client.close()
    section.rows.append(["standalone server (unix socket)", f"{standalone:,.0f}", "1.00"])
    with tempfile.TemporaryDirectory(prefix="otel-redis-bench-cluster-") as tmp:
        cluster = LocalRedisCluster(Path(tmp) / "cluster", masters=3).start()
        try:
            for shards in (1, 3, 12, 24):
                env = {"OTEL_REDIS_SHARDS": str(shards)}
                cfg = load_settings(env).with_overrides(redis_url=cluster.url, data_dir=Path(tmp) / "data")
                rate = _best_rate(lambda: RedisStore(make_client(cfg), cfg), batches, rounds, cluster.flush)
                section.rows.append([f"cluster, 3 masters, S = {shards}", f"{rate:,.0f}", f"{rate / standalone:.2f}"])
        finally:
            cluster.stop()
    section.notes.append("every server runs on this host; the client is one Python thread, which is the bottleneck")
    return section
