"""Path ranking and window metrics on a Redis Cluster: every part of the sharded stats hashes is added up."""

from __future__ import annotations

import time

import pytest
from redis.cluster import RedisCluster

from otel_redis import histogram, metrics, schema
from otel_redis.path_ranking import rank_paths

from ..redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.cluster


def test_counts_of_every_part_are_summed(redis_cluster: LocalRedisCluster) -> None:
    """The counts are written straight into the agreed layout (the write path's cluster mode is
    another branch's): 12 parts, part n holding n+1 GET and one POST request."""
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        now = int(time.time() * 1000)
        client.hset(schema.LAYOUT_KEY, schema.LAYOUT_SHARDS_FIELD, 12)
        for n, part in enumerate(schema.sharded(schema.stats_paths(schema.hour_bucket(now)), 12)):
            client.hincrby(part, "GET /users/{id}", n + 1)
            client.hincrby(part, "POST /login", 1)
        ranked = rank_paths(client, metrics.Window.ending(3600, now))
        assert ranked["total"] == 78 + 12
        assert [(p["method"], p["pattern"], p["count"]) for p in ranked["patterns"]] == [
            ("GET", "/users/{id}", 78),
            ("POST", "/login", 12),
        ]
    finally:
        client.close()


def test_window_metrics_sum_every_histogram_part(redis_cluster: LocalRedisCluster) -> None:
    """The response-time histograms of the last minute, split over 12 parts: part n holds one
    request of 10 ms and, for n < 3, one 5xx request of 1000 ms."""
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        now = int(time.time() * 1000)
        client.hset(schema.LAYOUT_KEY, schema.LAYOUT_SHARDS_FIELD, 12)
        minute = schema.minute_bucket(now)
        for n, part in enumerate(schema.sharded(schema.stats_rt_all(minute), 12)):
            client.hincrby(part, str(histogram.bucket_of(10)), 1)
            if n < 3:
                client.hincrby(part, str(histogram.bucket_of(1000)), 1)
                client.hincrby(part, "5xx", 1)
        overall = metrics.compute(client, 60, end_ms=now, per_hostname=False).overall
        assert (overall.requests, overall.server_errors) == (15, 3)
    finally:
        client.close()
