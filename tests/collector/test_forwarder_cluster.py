"""The forwarder on a Redis Cluster: a consumer group on every stream part, everything forwarded
once and acknowledged. The records are written in the agreed sharded layout by
tests/cluster_data.py (the write path's cluster mode is another branch's)."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Iterator

import pytest

from collector.config import load_forwarder_settings
from collector.counters import ForwarderCounters, forwarder_backlog
from collector.forwarder import Forwarder
from collector.upstream import make_upstream
from otel_redis import schema
from otel_redis.config import load_settings
from otel_redis.connection import make_client

from ..cluster_data import log_entry, request_entry, write_records
from ..redis_cluster import LocalRedisCluster
from .sink import Sink

pytestmark = pytest.mark.cluster
SHARDS = 12


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


def test_every_part_forwarded_once_and_acknowledged(redis_cluster: LocalRedisCluster, sink: Sink, monkeypatch) -> None:
    for name, value in sink.env("http").items():
        monkeypatch.setenv(name, value)
    settings = load_settings({}).with_overrides(redis_url=redis_cluster.url, shards=SHARDS)
    config = load_forwarder_settings().with_overrides(consumer="cluster-test", block_ms=100)
    client = make_client(settings)
    now = int(time.time() * 1000)
    entries = [dataclasses.replace(request_entry(now + i), attributes={"id": f"r{i}"}) for i in range(30)]
    entries += [dataclasses.replace(log_entry(now + i), attributes={"id": f"l{i}"}) for i in range(18)]
    write_records(client, entries, SHARDS)
    forwarder = Forwarder(client, settings, config, make_upstream(config.protocol), ForwarderCounters())
    assert len(forwarder.streams) == 2 * SHARDS
    forwarder.ensure_groups()
    backlog = forwarder_backlog(client, config.group)  # summed over the 12 parts of each stream
    assert {s: b["lag"] for s, b in backlog.items()} == {schema.STREAM_REQUESTS: 30, schema.STREAM_LOGS: 18}
    forwarder.drain(threading.Event())
    after = forwarder_backlog(client, config.group)
    assert all(b == {"lag": 0, "pending": 0} for b in after.values()) and len(after) == 2
    assert sorted(sink.record_ids()) == sorted(e.attributes["id"] for e in entries)
    for part in schema.stream_parts(SHARDS):
        assert client.xpending(part, config.group)["pending"] == 0
    forwarder.drain(threading.Event())  # nothing new: nothing sent again
    assert len(sink.record_ids()) == len(entries)
    forwarder.close()
