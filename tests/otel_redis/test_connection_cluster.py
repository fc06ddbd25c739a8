"""Cluster detection and the connection factory against a real standalone Redis and a real cluster."""

from __future__ import annotations

import asyncio

import pytest
from redis.cluster import RedisCluster

from otel_redis import connection, schema
from otel_redis.config import ConfigError, Settings, load_settings

from ..redis_cluster import LocalRedisCluster


def test_cluster_settings_parse_and_reject_bad_values() -> None:
    assert load_settings({}).cluster == "auto" and load_settings({}).shards == 12
    assert load_settings({"OTEL_REDIS_CLUSTER": "TRUE", "OTEL_REDIS_SHARDS": "6"}).cluster == "true"
    assert load_settings({"OTEL_REDIS_CLUSTER": "no"}).cluster == "false"
    for env in ({"OTEL_REDIS_CLUSTER": "maybe"}, {"OTEL_REDIS_SHARDS": "0"}, {"OTEL_REDIS_SHARDS": "257"}):
        with pytest.raises(ConfigError):
            load_settings(env)


def test_standalone_is_detected_and_keeps_one_shard(settings: Settings) -> None:
    client = connection.make_client(settings)
    try:
        assert not connection.is_cluster_client(client)
        assert connection.layout_shards(settings, client) == 1
        assert client.exists(schema.LAYOUT_KEY) == 0  # standalone writes no layout: names as specified
    finally:
        client.close()


@pytest.mark.cluster
def test_any_node_url_gives_a_cluster_client_and_the_persisted_layout(redis_cluster: LocalRedisCluster) -> None:
    for url in redis_cluster.urls():
        settings = load_settings({}).with_overrides(redis_url=url, shards=6)
        client = connection.make_client(settings)
        try:
            assert isinstance(client, RedisCluster)
            assert connection.layout_shards(settings, client) == 6
        finally:
            client.close()
    # a writer configured differently later adopts what is persisted
    later = load_settings({}).with_overrides(redis_url=redis_cluster.url, shards=12)
    client = connection.make_client(later)
    try:
        assert connection.layout_shards(later, client) == 6 == connection.read_layout(client)
    finally:
        client.close()


@pytest.mark.cluster
def test_async_client_and_layout_cache(redis_cluster: LocalRedisCluster) -> None:
    settings = load_settings({}).with_overrides(redis_url=redis_cluster.url, shards=3)

    async def run() -> tuple[int, int]:
        client = connection.make_async_client(settings)
        cache = connection.LayoutCache(settings.shards)
        try:
            before = await cache.get(client)  # nothing persisted yet: the configured default
            await client.hset(schema.LAYOUT_KEY, schema.LAYOUT_SHARDS_FIELD, 4)
            return before, await cache.get(client)
        finally:
            await client.aclose()

    assert asyncio.run(run()) == (3, 4)


@pytest.mark.cluster
def test_forced_off_treats_a_cluster_node_as_standalone(redis_cluster: LocalRedisCluster) -> None:
    settings = load_settings({"OTEL_REDIS_CLUSTER": "false"}).with_overrides(redis_url=redis_cluster.url)
    assert not connection.is_cluster_client(connection.make_client(settings))
    forced = load_settings({"OTEL_REDIS_CLUSTER": "true"}).with_overrides(redis_url=redis_cluster.url)
    assert connection.cluster_enabled(forced)
