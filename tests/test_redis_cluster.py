"""The cluster fixtures themselves: a real Redis Cluster, slots spread, flushed, failover works."""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster

from otel_redis import schema

from .redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.cluster


def test_three_masters_own_every_slot_and_route_keys(redis_cluster: LocalRedisCluster) -> None:
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        assert len(redis_cluster.masters()) == 3
        assert int(client.cluster_info()["cluster_slots_assigned"]) == schema.CLUSTER_SLOTS
        for i in range(60):
            client.set(f"fixture:{i}", i)
        per_node = [node.client().dbsize() for node in redis_cluster.masters()]
        assert sum(per_node) == 60 and all(n > 0 for n in per_node)
    finally:
        client.close()


def test_flushed_between_tests(redis_cluster: LocalRedisCluster) -> None:
    assert sum(node.client().dbsize() for node in redis_cluster.masters()) == 0


def test_shard_tags_fall_evenly_on_the_fixture_masters(redis_cluster: LocalRedisCluster) -> None:
    client = RedisCluster.from_url(redis_cluster.url)
    try:
        owners = [client.get_node_from_key(schema.shard_key("idx:req:all", n, 12)).port for n in range(12)]
        assert sorted(owners.count(port) for port in set(owners)) == [4, 4, 4]
    finally:
        client.close()


@pytest.mark.e2e
def test_replica_promoted_when_a_master_is_killed(redis_cluster_ha: LocalRedisCluster) -> None:
    client = RedisCluster.from_url(redis_cluster_ha.url, decode_responses=True)
    try:
        key = "fixture:failover"
        client.set(key, "kept")
        owner = client.get_node_from_key(key)
        victim = next(n for n in redis_cluster_ha.nodes if n.port == owner.port)
        with victim.client() as c:
            c.execute_command("WAIT", 1, 2000)
        redis_cluster_ha.kill(victim)
        redis_cluster_ha.wait_failover()
        assert victim not in redis_cluster_ha.masters() and len(redis_cluster_ha.masters()) == 3
        fresh = RedisCluster(host="127.0.0.1", port=redis_cluster_ha.live_nodes()[0].port, decode_responses=True)
        try:
            assert fresh.get(key) == "kept"
        finally:
            fresh.close()
    finally:
        client.close()
