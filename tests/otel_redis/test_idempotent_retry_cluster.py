"""On a Redis Cluster too, a share of a batch resent after lost replies is applied once.

The cluster sender gives each master its share on its own connection; a master that does not answer
in time (stopped, or slow) gets that share again (redis-py's cluster pipeline, the client's Retry),
and the copy it had already read still runs when it resumes. The batch's stream entries and
counters go in one guarded call per hash slot (guard.split), each under a marker in that slot, so
every copy after the first finds its marker and applies nothing: afterwards every stream entry is
a distinct record and the hourly totals equal the records stored.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable

import pytest
import redis
from redis.cluster import RedisCluster

import otel_redis
from otel_redis import schema
from otel_redis.config import load_settings
from otel_redis.connection import make_client
from otel_redis.store import RedisStore
from otel_redis.transport_cluster import ClusterSend
from tests.cluster_data import log_entry, now_ms, request_entry
from tests.outage import assert_every_record_counted, log_through
from tests.redis_cluster import ClusterNode, LocalRedisCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster
SHARDS = 12


def _stream_keys(rc: RedisCluster) -> list[str]:
    return [fields["k"] for stream in (schema.STREAM_LOGS, schema.STREAM_REQUESTS)
            for part in schema.sharded(stream, SHARDS) for _id, fields in rc.xrange(part)]


def _totals(rc: RedisCluster, family: str, hours: set[str]) -> int:
    """The ``total`` field summed over every part of the hourly stats hash ``family`` of ``hours``."""
    make = schema.stats_logs if family == "logs" else schema.stats_requests
    return sum(int(rc.hget(part, "total") or 0) for hour in hours for part in schema.sharded(make(hour), SHARDS))


def test_a_cluster_batch_sent_again_whole_is_a_replay_that_applies_nothing(redis_cluster: LocalRedisCluster,
                                                                            tmp_path: Path) -> None:
    """Every command of a batch, sent again after the first copy ran (what a resend after lost
    replies sends): each per-slot call finds its marker, no stream entry or counter moves."""
    settings = load_settings({}).with_overrides(redis_url=redis_cluster.url, data_dir=tmp_path / "data")
    store = RedisStore(make_client(settings), settings)
    start = now_ms()
    entries = [request_entry(start + i, status=200 + i % 3 * 100) for i in range(150)]
    entries += [log_entry(start + i, level="ERROR" if i % 3 else "INFO", event="e") for i in range(150)]
    hours = {schema.hour_bucket(start), schema.hour_bucket(start + 150)}
    pending = store.begin(entries)
    first = pending.complete()
    assert first.exported == 300 and not first.replayed and not first.failed
    with RedisCluster.from_url(redis_cluster.url, decode_responses=True) as rc:
        assert sorted(_stream_keys(rc)) == sorted(first.keys)
        before = (_totals(rc, "logs", hours), _totals(rc, "requests", hours))
        assert before == (150, 150)
        again = ClusterSend(store.client)
        again.args.extend(pending.send.args)  # every command of the batch, the per-slot calls last
        replies = again.finish()
        assert sorted(_stream_keys(rc)) == sorted(first.keys)  # no stream entry twice
        assert (_totals(rc, "logs", hours), _totals(rc, "requests", hours)) == before  # no counter moved
        calls = replies[pending.held_base:]
        assert len(calls) == len(pending.calls) > 1  # several slots, one call each
        assert all(reply[0] == 0 for reply in calls)  # each a replay
        for call in pending.calls:  # each marker in the slot of the keys its call writes
            marker, keys = call.command[3], call.command[4 : 3 + int(call.command[2])]
            assert rc.exists(marker) and {schema.key_slot(k) for k in keys} == {schema.key_slot(marker)}
    store.client.close()


def _log_one(n: int) -> None:
    if n % 3:
        otel_redis.log_info(f"record {n}", component="outage")
    else:
        trace = otel_redis.log_request("GET", f"/r/{n % 50}", client_ip="10.2.0.1", proxy_hostname="api.test")
        otel_redis.log_response(200, response_time_ms=1.0, trace_id=trace)


def _log_through_outage(cluster: LocalRedisCluster, tmp_path: Path, outage: Callable[[], None]) -> None:
    """Log through the real pipeline with ``outage()`` run a second in (the client's retries set to
    outlast it), then check: no stream entry twice, each entry's record hash there, the hourly
    totals equal the records stored, every record emitted exported or counted."""
    settings = load_settings({}).with_overrides(
        redis_url=cluster.url, data_dir=tmp_path / "data", socket_timeout_s=0.5,
        retry_attempts=200, retry_backoff_cap_s=0.2, capture_stdlib=False,
    )
    pipe = otel_redis.configure(settings=settings, set_global_provider=False)
    started = now_ms()
    counts, now = log_through(pipe, _log_one, outage)
    otel_redis.shutdown()
    hours = {schema.hour_bucket(started), schema.hour_bucket(now_ms())}
    with RedisCluster.from_url(cluster.url, decode_responses=True) as rc:
        keys = _stream_keys(rc)
        assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} duplicate stream entries"
        assert _missing_records(rc, keys) == 0  # each entry's record hash is there too
        logs = sum(1 for k in keys if k.startswith("log:"))
        assert _totals(rc, "logs", hours) == logs
        assert _totals(rc, "requests", hours) == len(keys) - logs
    assert_every_record_counted(counts, now, len(keys))


def _missing_records(rc: RedisCluster, keys: list[str]) -> int:
    """How many of the record keys ``keys`` name no record hash (in one cluster pipeline)."""
    pipe = rc.pipeline(transaction=False)
    for key in keys:
        pipe.exists(key)
    return sum(1 for found in pipe.execute() if not found)


@pytest.fixture
def patient_cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh 3-master cluster whose nodes wait 30 s before marking a silent one failed: a master
    stalled for 10 s is a stall, not a failure (with the test cluster's 1 s, the whole cluster
    answers CLUSTERDOWN after a second and the test is a cluster outage)."""
    cluster = LocalRedisCluster(tmp_path / "cluster", masters=3, node_timeout_ms=30_000)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.mark.e2e
def test_a_stopped_master_gets_its_share_again_and_applies_it_once(patient_cluster: LocalRedisCluster,
                                                                   tmp_path: Path) -> None:
    """A master is stopped (SIGSTOP) for 10 s while records are logged: the shares it had read and
    those resent to it all run when it resumes. No stream entry is there twice, the hourly totals
    equal the records stored, and every record emitted is exported (the retries outlast the outage)
    or counted under the queue's back-pressure."""
    pid = patient_cluster.nodes[1].server.process.pid  # a master REDIS_URL does not name

    def outage() -> None:
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(10.0)
        finally:
            os.kill(pid, signal.SIGCONT)

    _log_through_outage(patient_cluster, tmp_path, outage)


def _entries_on(node: ClusterNode) -> int:
    """The stream entries one node holds (the stream parts whose slots it serves)."""
    with node.client() as c:
        return sum(int(c.xlen(key)) for key in c.scan_iter(match="stream:*", count=1000))


@pytest.fixture
def aof_cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh 3-master cluster without replicas whose nodes keep an AOF fsynced before each reply:
    a killed master comes back as itself (same node id, slots and data), not replaced by a replica."""
    cluster = LocalRedisCluster(tmp_path / "cluster", masters=3, aof=True)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.mark.e2e
def test_a_killed_master_restarted_from_its_aof_applies_every_share_once(aof_cluster: LocalRedisCluster,
                                                                        tmp_path: Path) -> None:
    """A master is SIGKILLed while records are logged and started again 2 s later from its AOF.
    What it acknowledged is in its AOF; what it ran but never answered (the kill came first) is
    resent, and its marker, if it was written, makes the copy a replay. With no replica the whole
    cluster answers CLUSTERDOWN meanwhile, which the client's retries outlast. Afterwards no stream
    entry is there twice, the hourly totals equal the records stored, and every record emitted is
    exported or counted under the queue's back-pressure."""
    node = aof_cluster.nodes[1]  # a master REDIS_URL does not name
    node_id = node.node_id()
    held: list[int] = []

    def outage() -> None:
        # not before the master holds stream entries: a kill of a master with nothing yet to lose
        # would pass without its AOF
        held.append(wait_until(lambda: _entries_on(node), timeout=60, message="stream entries on the master"))
        aof_cluster.kill(node)
        time.sleep(2.0)
        node.restart()
        wait_until(aof_cluster.healthy, timeout=60, message="the cluster to take the master back",
                   ignore=(redis.RedisError,))  # until then it answers CLUSTERDOWN
        held.append(_entries_on(node))  # read back from its AOF (resends may add more since)

    _log_through_outage(aof_cluster, tmp_path, outage)
    assert node.node_id() == node_id and node in aof_cluster.masters()  # the same master came back
    assert held[1] >= held[0] > 0  # the entries it had at the kill, its AOF gave back
