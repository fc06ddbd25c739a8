"""The retention job, ``otel-redis cleanup`` and ``clear`` on a Redis Cluster of 3 masters.

Records are written in the agreed sharded layout by tests/cluster_data.py (12 shards): the job
must SCAN every master, trim every stream part, and leave nothing of what it should remove.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from otel_redis import schema
from otel_redis.clear import clear_owned
from otel_redis.config import load_settings
from otel_redis.retention import run_cleanup

from ..cluster_data import log_entry, request_entry, write_records
from ..redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.cluster
DAY_MS = 86_400_000
SHARDS = 12


@pytest.fixture
def rc(redis_cluster: LocalRedisCluster) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    yield client
    client.close()


def _all_keys(cluster: LocalRedisCluster) -> set[str]:
    out: set[str] = set()
    for node in cluster.masters():
        with node.client() as c:
            out.update(c.scan_iter(count=1000))
    return out


def _old_and_new(rc: RedisCluster) -> tuple[list[str], list[str]]:
    now = int(time.time() * 1000)
    old = write_records(rc, [request_entry(now - 10 * DAY_MS + i) for i in range(24)], SHARDS)
    new = write_records(rc, [request_entry(now - 1000 + i) for i in range(24)], SHARDS)
    return old, new


def test_cleanup_scans_every_master_and_removes_old_records(redis_cluster: LocalRedisCluster, rc: RedisCluster) -> None:
    old, new = _old_and_new(rc)
    masters_with_old = {rc.get_node_from_key(k).port for k in old}
    assert len(masters_with_old) == 3  # the old records really are spread over the masters
    settings = load_settings({}).with_overrides(redis_url=redis_cluster.url)
    report = run_cleanup(rc, settings)
    keys = _all_keys(redis_cluster)
    assert not keys & set(old) and set(new) <= keys
    assert report.records_deleted == 24
    members = set()
    for part in schema.sharded(schema.IDX_REQ_ALL, SHARDS):
        members.update(rc.zrange(part, 0, -1))
    assert members == set(new)


def test_stream_parts_are_all_trimmed(redis_cluster: LocalRedisCluster, rc: RedisCluster) -> None:
    settings = load_settings({}).with_overrides(redis_url=redis_cluster.url)
    cutoff = int(time.time() * 1000) - settings.retention.requests * 1000
    rc.hset(schema.LAYOUT_KEY, schema.LAYOUT_SHARDS_FIELD, SHARDS)
    for n, part in enumerate(schema.sharded(schema.STREAM_REQUESTS, SHARDS)):
        for i in range(10):
            rc.xadd(part, {"k": f"req:{i}"}, id=f"{cutoff - 1000 + i}-0")
        rc.xadd(part, {"k": "req:new"}, id=f"{cutoff + 600_000 + n}-0")
    report = run_cleanup(rc, settings)
    assert report.stream_entries_trimmed[schema.STREAM_REQUESTS] == 10 * SHARDS
    assert [rc.xlen(p) for p in schema.sharded(schema.STREAM_REQUESTS, SHARDS)] == [1] * SHARDS


@pytest.mark.e2e
def test_cleanup_cli_on_a_cluster(redis_cluster: LocalRedisCluster, rc: RedisCluster, tmp_path: Path) -> None:
    old, new = _old_and_new(rc)
    cli = str(Path(sys.executable).parent / "otel-redis")
    env = {"PATH": str(Path(sys.executable).parent), "REDIS_URL": redis_cluster.urls()[1], "OTEL_REDIS_DATA_DIR": str(tmp_path)}
    done = subprocess.run([cli, "cleanup", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records_deleted"] == 24
    assert not _all_keys(redis_cluster) & set(old)


def test_clear_removes_every_part_and_keeps_the_layout_and_foreign_keys(redis_cluster: LocalRedisCluster, rc: RedisCluster) -> None:
    now = int(time.time() * 1000)
    write_records(rc, [request_entry(now + i) for i in range(12)] + [log_entry(now + i) for i in range(12)], SHARDS)
    rc.set("someone:else", "kept")

    async def run() -> dict[str, int]:
        client = AsyncRedisCluster.from_url(redis_cluster.url)
        try:
            return await clear_owned(client)
        finally:
            await client.aclose()

    removed = asyncio.run(run())
    assert _all_keys(redis_cluster) == {"someone:else", schema.LAYOUT_KEY}
    assert removed[schema.STREAM_REQUESTS] == SHARDS and removed[schema.STREAM_LOGS] == SHARDS
    assert removed["req:*"] == 12 and removed["log:*"] == 12
