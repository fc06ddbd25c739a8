"""The write path on a real Redis Cluster (3 masters): every record stored once, spread over the masters.

The records go through the real pipeline (``otel_redis.configure`` with REDIS_URL naming one node,
the processor, the exporter and the store's cluster sender), and are then read back from every
node: the hot keys exist only under their sharded names, every record is in exactly one part of
each hot index and stream, and the parts spread over the masters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

import otel_redis
from otel_redis import api, schema
from otel_redis.config import load_settings
from otel_redis.connection import make_client
from otel_redis.store import RedisStore
from tests.cluster_data import log_entry, now_ms, request_entry
from tests.redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.cluster
SHARDS = 12
LOGS, REQUESTS = 700, 300


@pytest.fixture
def rc(redis_cluster: LocalRedisCluster) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def logged(redis_cluster: LocalRedisCluster, tmp_path: Path) -> Iterator[dict[str, float]]:
    """LOGS application records and REQUESTS request records logged through the real pipeline on the
    cluster (REDIS_URL names one node); yields ``otel_redis.stats()`` after the flush."""
    api._pending.clear()
    settings = load_settings({}).with_overrides(data_dir=tmp_path / "data")
    otel_redis.configure(redis_url=redis_cluster.url, settings=settings, set_global_provider=False)
    before = otel_redis.stats()
    try:
        for i in range(LOGS):
            if i % 10 == 0:
                otel_redis.log_error(f"failed {i}", component="worker", event="job_failed")
            else:
                otel_redis.log_info(f"message {i}", component="worker")
        for i in range(REQUESTS):
            trace = otel_redis.log_request("GET", f"/items/{i}", client_ip=f"10.0.{i % 7}.{i % 250}", proxy_hostname="api.test")
            otel_redis.log_response(500 if i % 5 == 0 else 200, response_time_ms=float(i % 40), trace_id=trace)
        assert otel_redis.force_flush()
        after = otel_redis.stats()
        yield {name: after.get(name, 0) - before.get(name, 0) for name in after}
    finally:
        otel_redis.shutdown()
        api._pending.clear()


def _members(rc: RedisCluster, key: str) -> list[str]:
    """Every member of every part of hot index ``key`` (duplicates kept)."""
    return [m for part in schema.sharded(key, SHARDS) for m in rc.zrange(part, 0, -1)]


def _stream_keys(rc: RedisCluster, stream: str) -> list[str]:
    return [fields["k"] for part in schema.sharded(stream, SHARDS) for _id, fields in rc.xrange(part)]


def test_pipeline_stores_every_record_once_in_the_sharded_layout(logged: dict[str, float], rc: RedisCluster) -> None:
    assert logged["exported"] == LOGS + REQUESTS
    assert logged["dropped"] == 0
    assert schema.parse_layout(rc.hgetall(schema.LAYOUT_KEY)) == SHARDS
    logs, requests = _members(rc, schema.IDX_LOG_ALL), _members(rc, schema.IDX_REQ_ALL)
    assert len(logs) == len(set(logs)) == LOGS  # each record in exactly one part
    assert len(requests) == len(set(requests)) == REQUESTS
    assert sorted(_stream_keys(rc, schema.STREAM_LOGS)) == sorted(logs)
    assert sorted(_stream_keys(rc, schema.STREAM_REQUESTS)) == sorted(requests)
    errors = _members(rc, schema.IDX_LOG_ERRORS)
    assert len(errors) == len(set(errors)) == LOGS // 10
    assert len(_members(rc, schema.IDX_REQ_ERRORS)) == REQUESTS // 5
    for key in logs[:50] + requests[:50]:
        assert rc.hlen(key) > 0 and rc.ttl(key) > 0
    # the unsplit names of the hot keys are never written on a cluster
    for key in (schema.IDX_LOG_ALL, schema.IDX_REQ_ALL, schema.STREAM_LOGS, schema.STREAM_REQUESTS):
        assert rc.exists(key) == 0
    hour = schema.hour_bucket(now_ms())
    totals = [rc.hget(part, "total") for part in schema.sharded(schema.stats_requests(hour), SHARDS)]
    assert sum(int(t or 0) for t in totals) == REQUESTS
    logs_total = [rc.hget(part, "total") for part in schema.sharded(schema.stats_logs(hour), SHARDS)]
    assert sum(int(t or 0) for t in logs_total) == LOGS


def test_one_record_keeps_its_stream_entry_and_hot_indexes_on_one_shard(logged: dict[str, float], rc: RedisCluster) -> None:
    shard_of: dict[str, str] = {}
    for part in schema.sharded(schema.STREAM_LOGS, SHARDS) + schema.sharded(schema.STREAM_REQUESTS, SHARDS):
        tag = schema.shard_of(part)[1]
        for _id, fields in rc.xrange(part):
            shard_of[fields["k"]] = str(tag)
    for index in (schema.IDX_LOG_ALL, schema.IDX_LOG_ERRORS, schema.idx_log_level("INFO"), schema.IDX_REQ_ALL,
                  schema.idx_req_status(500)):
        for part in schema.sharded(index, SHARDS):
            tag = schema.shard_of(part)[1]
            for key in rc.zrange(part, 0, -1):
                assert shard_of[key] == tag, (index, key)


def test_hot_key_writes_spread_evenly_over_the_masters(logged: dict[str, float], redis_cluster: LocalRedisCluster) -> None:
    masters = redis_cluster.masters()
    per_master = []
    for node in masters:
        with node.client() as c:
            count = 0
            for index in (schema.IDX_LOG_ALL, schema.IDX_REQ_ALL):
                for part in schema.sharded(index, SHARDS):
                    try:
                        count += c.zcard(part)
                    except redis.ResponseError:  # MOVED: that part lives on another master
                        continue
            per_master.append(count)
    total = sum(per_master)
    assert total == LOGS + REQUESTS
    n = len(masters)
    for count in per_master:  # each master between half and one and a half of an even share
        assert 0.5 / n <= count / total <= 1.5 / n, per_master


def test_every_script_call_of_a_cluster_batch_touches_one_slot(redis_cluster: LocalRedisCluster, tmp_path: Path) -> None:
    settings = load_settings({}).with_overrides(redis_url=redis_cluster.url, data_dir=tmp_path / "data")
    store = RedisStore(make_client(settings), settings)
    start = now_ms()
    entries = [request_entry(start + i, status=200 + i % 3 * 100) for i in range(150)]
    entries += [log_entry(start + i, level="ERROR" if i % 3 else "INFO", event="e") for i in range(150)]
    pending = store.begin(entries)
    commands = list(pending.send.args)
    result = pending.complete()
    assert result.exported == 300 and not result.failed and result.index_errors == 0
    scripts = [c for c in commands if c[0] in ("EVAL", "EVALSHA")]
    assert scripts  # index trims, histogram increments and the console aggregates
    for command in scripts:
        keys = command[3 : 3 + int(command[2])]
        assert len({schema.key_slot(k) for k in keys}) == 1, command[:4]
    store.client.close()
