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


def test_the_service_index_is_split_like_the_other_hot_indexes(logged: dict[str, float], rc: RedisCluster) -> None:
    """Every record of an application names one service.name, so ``idx:service:*`` takes every
    write: on a cluster it exists only as parts, each record in the part of its own shard, and the
    parts spread over the masters."""
    keys = set(rc.scan_iter(match="idx:service:*"))
    bases = {schema.shard_of(key)[0] for key in keys}
    assert len(bases) == 1, bases  # the pipeline's one service
    base = bases.pop()
    assert base not in keys and schema.is_hot(base)  # never written under its unsplit name
    members = _members(rc, base)
    assert len(members) == len(set(members)) == LOGS + REQUESTS
    shard_of = {fields["k"]: schema.shard_of(part)[1] for stream in schema.STREAMS
                for part in schema.sharded(stream, SHARDS) for _id, fields in rc.xrange(part)}
    masters = set()
    for part in schema.sharded(base, SHARDS):
        tag = schema.shard_of(part)[1]
        for key in rc.zrange(part, 0, -1):
            assert shard_of[key] == tag, key
            masters.add(rc.get_node_from_key(part).name)
    assert len(masters) == 3


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


def _log_records(first: int, n: int) -> None:
    for i in range(first, first + n):
        if i % 2:
            otel_redis.log_info(f"record {i}", component="reshard")
        else:
            trace = otel_redis.log_request("GET", f"/r/{i}", client_ip="10.1.0.1", proxy_hostname="api.test")
            otel_redis.log_response(200, response_time_ms=1.0, trace_id=trace)


def _bodies(rc: RedisCluster) -> list[str]:
    """The record keys in every part of the two hot "all" indexes (duplicates kept)."""
    return _members(rc, schema.IDX_LOG_ALL) + _members(rc, schema.IDX_REQ_ALL)


def _migrate_keys(source: redis.Redis, target_port: int, slot: int, limit: int | None = None) -> int:
    keys = source.execute_command("CLUSTER GETKEYSINSLOT", slot, 100_000)
    keys = keys[:limit] if limit is not None else keys
    if keys:
        source.execute_command("MIGRATE", "127.0.0.1", target_port, "", 0, 5000, "KEYS", *keys)
    return len(keys)


def test_slots_resharded_while_records_are_written_lose_nothing(own_cluster: LocalRedisCluster, tmp_path: Path) -> None:
    """The slots of the first master's shard parts move to the second master while batches are written:
    first half-migrated (the writer meets ASK), then handed over (MOVED): every record is stored once."""
    redis_cluster = own_cluster
    source, target = redis_cluster.nodes[0], redis_cluster.nodes[1]
    source_id, target_id = source.node_id(), target.node_id()
    owned = range(0, schema.CLUSTER_SLOTS // 3)  # the first master's slots (tests/redis_cluster.py)
    slots = sorted({schema.key_slot(p) for p in schema.sharded(schema.IDX_LOG_ALL, SHARDS)} & set(owned))
    assert slots  # the first master holds some of the parts
    settings = load_settings({}).with_overrides(data_dir=tmp_path / "data")
    otel_redis.configure(redis_url=redis_cluster.url, settings=settings, set_global_provider=False)
    before = otel_redis.stats()
    per_phase = 400
    try:
        _log_records(0, per_phase)
        assert otel_redis.force_flush()
        with source.client() as src, target.client() as dst:
            for slot in slots:
                dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
                src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
                _migrate_keys(src, target.port, slot, limit=5)  # some parts moved, the others not yet
            _log_records(per_phase, per_phase)  # written while the slots are migrating: ASK
            assert otel_redis.force_flush()
            for slot in slots:
                _migrate_keys(src, target.port, slot)
                for node in redis_cluster.masters():
                    with node.client() as c:
                        c.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
            _log_records(2 * per_phase, per_phase)  # the old owner answers MOVED
            assert otel_redis.force_flush()
            for slot in slots:
                assert dst.execute_command("CLUSTER COUNTKEYSINSLOT", slot) > 0
                assert src.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0
        after = otel_redis.stats()
    finally:
        otel_redis.shutdown()
    total = 3 * per_phase
    assert after["exported"] - before["exported"] == total
    assert after["dropped"] - before["dropped"] == 0
    with RedisCluster.from_url(redis_cluster.url, decode_responses=True) as rc:
        keys = _bodies(rc)
        assert len(keys) == len(set(keys)) == total
        streams = _stream_keys(rc, schema.STREAM_LOGS) + _stream_keys(rc, schema.STREAM_REQUESTS)
        assert sorted(streams) == sorted(keys)


@pytest.mark.e2e
def test_a_master_killed_while_writing_every_record_stored_or_counted(redis_cluster_ha: LocalRedisCluster, tmp_path: Path) -> None:
    """A master dies (SIGKILL) between batches; its replica is promoted while the next records wait in
    the pipeline: every record is then stored exactly once or counted as dropped, and what is
    stored is exactly what was counted as exported."""
    cluster = redis_cluster_ha
    # more retries than the default (their backoff adds up to about 7 s), so that the batches queued
    # during the promotion are usually stored rather than counted; either outcome is checked exactly
    settings = load_settings({"OTEL_REDIS_RETRY_ATTEMPTS": "8"}).with_overrides(data_dir=tmp_path / "data")
    otel_redis.configure(redis_url=cluster.url, settings=settings, set_global_provider=False)
    before = otel_redis.stats()
    per_phase = 400
    try:
        _log_records(0, per_phase)
        assert otel_redis.force_flush()
        victim = cluster.nodes[1]  # a master that is not the node REDIS_URL names
        with victim.client() as c:
            assert c.execute_command("WAIT", 1, 5000) == 1  # what it stored is on its replica
        cluster.kill(victim)
        _log_records(per_phase, per_phase)  # queued while the replica is promoted
        cluster.wait_failover()
        assert otel_redis.force_flush()
        _log_records(2 * per_phase, per_phase)
        assert otel_redis.force_flush()
        after = otel_redis.stats()
    finally:
        otel_redis.shutdown()
    total = 3 * per_phase
    exported = after["exported"] - before["exported"]
    dropped = after["dropped"] - before["dropped"]
    assert exported + dropped == total
    assert exported >= 2 * per_phase  # the batches before the kill and after the failover are stored
    with RedisCluster.from_url(cluster.urls()[0], decode_responses=True) as rc:
        keys = _bodies(rc)
        assert len(keys) == len(set(keys)) == exported
        streams = _stream_keys(rc, schema.STREAM_LOGS) + _stream_keys(rc, schema.STREAM_REQUESTS)
        assert sorted(streams) == sorted(keys)


def test_out_of_memory_masters_every_record_stored_or_counted_and_no_stray_stream_entry(
    redis_cluster: LocalRedisCluster, tmp_path: Path
) -> None:
    """Masters that refuse writes (maxmemory, noeviction): each record is stored whole or dropped under
    ``dropped_redis_error_oom``; a dropped record's accepted stream entry is deleted from its own
    stream part, so the parts hold exactly the stored records. Once maxmemory is raised, a batch is
    stored whole."""
    from otel_redis.counters import PipelineCounters
    from otel_redis.exporter import RedisLogRecordExporter

    settings = load_settings({}).with_overrides(redis_url=redis_cluster.url, data_dir=tmp_path / "data")
    counters = PipelineCounters()
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    masters = redis_cluster.masters()
    start, sent, batch = now_ms(), 0, 200
    try:
        for node in masters:
            with node.client() as c:
                c.config_set("maxmemory-policy", "noeviction")
                c.config_set("maxmemory", int(c.info("memory")["used_memory"]) + 2 * 1024 * 1024)
        for _round in range(40):  # 8000 records of ~0.5 KB over 3 masters: past the 6 MB left
            entries = [log_entry(start + sent + i, body=f"{sent + i} " + "x" * 500) for i in range(batch)]
            exporter.export_entries(entries)
            sent += batch
        snap = counters.snapshot()
        for node in masters:  # maxmemory raised: the writes resume
            with node.client() as c:
                c.config_set("maxmemory", 0)
        exporter.export_entries([log_entry(start + sent + i, body=f"after {i}") for i in range(batch)])
        sent += batch
        resumed = counters.snapshot()
    finally:
        for node in masters:
            with node.client() as c:
                c.config_set("maxmemory", 0)
        exporter.shutdown()
    assert snap["dropped_redis_error_oom"] > 0, snap
    assert snap["exported"] + snap["dropped"] == sent - batch
    assert snap["dropped"] == snap["dropped_redis_error_oom"]
    assert resumed["exported"] - snap["exported"] == batch and resumed["dropped"] == snap["dropped"], resumed
    snap = resumed
    stored = set()
    for node in masters:
        with node.client() as c:
            stored |= {k for k in c.scan_iter(match="log:*", count=1000) if schema.is_record_key(k)}
    assert len(stored) == snap["exported"]
    with RedisCluster.from_url(redis_cluster.url, decode_responses=True) as rc:
        streamed = _stream_keys(rc, schema.STREAM_LOGS)
    assert len(streamed) == len(set(streamed)) == snap["exported"]
    assert set(streamed) == stored


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="the writer process is a forked child")
def test_the_writer_process_stores_every_record_once_on_a_cluster(redis_cluster: LocalRedisCluster, tmp_path: Path) -> None:
    settings = load_settings({}).with_overrides(data_dir=tmp_path / "data", writer_process=True)
    otel_redis.configure(redis_url=redis_cluster.url, settings=settings, set_global_provider=False)
    before = otel_redis.stats()
    try:
        _log_records(0, 600)
        assert otel_redis.force_flush()
        after = otel_redis.stats()
    finally:
        otel_redis.shutdown()
    assert after["exported"] - before["exported"] == 600
    assert after["dropped"] - before["dropped"] == 0
    with RedisCluster.from_url(redis_cluster.url, decode_responses=True) as rc:
        keys = _bodies(rc)
        assert len(keys) == len(set(keys)) == 600
        assert sorted(_stream_keys(rc, schema.STREAM_LOGS) + _stream_keys(rc, schema.STREAM_REQUESTS)) == sorted(keys)


def test_a_late_reverse_dns_answer_patches_records_on_a_cluster(redis_cluster: LocalRedisCluster, rc: RedisCluster,
                                                                tmp_path: Path) -> None:
    settings = load_settings({}).with_overrides(redis_url=redis_cluster.url, data_dir=tmp_path / "data")
    store = RedisStore(make_client(settings), settings)
    start = now_ms()
    entries = [request_entry(start + i, ip="192.0.2.9") for i in range(20)]
    keys = store.write(entries)
    rc.delete(keys[0])  # expired meanwhile: skipped, not recreated
    patched = store.patch_hostname("host9.example", [(k, start + i) for i, k in enumerate(keys)])
    store.client.close()
    assert patched == 19
    assert rc.exists(keys[0]) == 0
    assert all(rc.hget(k, "client_hostname") == "host9.example" for k in keys[1:])
    assert set(rc.zrange(schema.idx_req_fqdn("host9.example"), 0, -1)) == set(keys[1:])


def test_the_stream_length_bounds_hold_for_the_whole_stream_on_a_cluster(redis_cluster: LocalRedisCluster,
                                                                          rc: RedisCluster, tmp_path: Path) -> None:
    """Every part has a consumer group that read nothing: past the unread bound, each part is cut to
    its share of it (the bound over S parts), and what was cut is counted as unread_trimmed."""
    settings = load_settings({}).with_overrides(
        redis_url=redis_cluster.url, data_dir=tmp_path / "data", stream_maxlen=120, stream_unread_maxlen=240
    )
    for part in schema.sharded(schema.STREAM_LOGS, SHARDS):
        rc.xgroup_create(part, "forwarder", id="0", mkstream=True)
    store = RedisStore(make_client(settings), settings)
    start, trimmed = now_ms(), 0
    for b in range(12):
        store.forget_refreshes()  # every batch trims its parts (normally once a minute per part)
        result = store.write_batch([log_entry(start + b * 100 + i) for i in range(100)])
        assert result.exported == 100
        trimmed += result.unread_trimmed
    store.client.close()
    lengths = [rc.xlen(part) for part in schema.sharded(schema.STREAM_LOGS, SHARDS)]
    assert max(lengths) == 240 // SHARDS  # each part holds its share of the bound
    assert trimmed == 1200 - sum(lengths) > 0


def test_a_batch_whose_planning_fails_writes_nothing_on_a_cluster(redis_cluster: LocalRedisCluster, rc: RedisCluster,
                                                                  tmp_path: Path) -> None:
    """The exporter counts such a batch as dropped whole, so none of its records may be stored."""
    settings = load_settings({}).with_overrides(redis_url=redis_cluster.url, data_dir=tmp_path / "data")
    store = RedisStore(make_client(settings), settings)
    start = now_ms()

    def entries() -> Iterator:
        for i in range(150):  # past two slices
            yield log_entry(start + i)
        raise ValueError("a producer failed half-way")

    with pytest.raises(ValueError):
        store.begin(entries())
    assert store.write_batch([log_entry(start + 200)]).exported == 1  # the store still writes
    store.client.close()
    assert len(_members(rc, schema.IDX_LOG_ALL)) == 1
    assert len(_stream_keys(rc, schema.STREAM_LOGS)) == 1
