"""Redis connections: REDIS_URL when set, else the embedded server for the data folder.

In cluster mode (``OTEL_REDIS_CLUSTER=true``, or ``auto`` and the server says ``cluster_enabled:1``)
the clients are redis-py's ``RedisCluster`` (its slot map, MOVED/ASK handling and retry) for any
node named in the URL. The shard count readers use is the one the writers persisted in
``schema.LAYOUT_KEY`` (:func:`read_layout`), so a reader never disagrees with what was written.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Callable

import redis
from redis.cluster import RedisCluster
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .config import Settings
from .embedded import EmbeddedRedis
from . import schema

_embedded_lock = threading.Lock()
_embedded: dict[str, EmbeddedRedis] = {}


def embedded_server(settings: Settings) -> EmbeddedRedis:
    """The (process-wide, shared) embedded server for ``settings.data_dir``."""
    key = str(settings.data_dir.resolve())
    with _embedded_lock:
        server = _embedded.get(key)
        if server is None:
            server = EmbeddedRedis(settings.data_dir, binary=settings.redis_server_bin, shared=True).start()
            _embedded[key] = server
        return server


def stop_embedded() -> None:
    """Stop every embedded server this process started."""
    with _embedded_lock:
        servers = list(_embedded.values())
        _embedded.clear()
    for server in servers:
        server.stop()


class CountingRetry(Retry):
    """redis-py's Retry that reports each retry (not the final failure) to a callback."""

    def __init__(self, backoff: Any, retries: int, on_retry: Callable[[Exception], None] | None = None, **kw: Any):
        super().__init__(backoff, retries, **kw)
        self._on_retry = on_retry

    def __deepcopy__(self, memo: dict) -> "CountingRetry":
        # redis-py deep-copies the retry for each connection; the callback must stay shared
        return CountingRetry(
            copy.deepcopy(self._backoff, memo),
            self._retries,
            self._on_retry,
            supported_errors=self._supported_errors,
        )

    def call_with_retry(self, do: Any, fail: Any, is_retryable: Any = None, with_failure_count: bool = False) -> Any:
        failures = 0

        def _fail(error: Exception, *rest: Any) -> Any:
            nonlocal failures
            failures += 1
            if self._on_retry is not None and failures <= self._retries:
                self._on_retry(error)
            return fail(error, *rest)

        return super().call_with_retry(do, _fail, is_retryable, with_failure_count)


def resolve_url(settings: Settings) -> str:
    return settings.redis_url or embedded_server(settings).url


_cluster_lock = threading.Lock()
_cluster_seen: dict[str, bool] = {}


def cluster_enabled(settings: Settings, url: str | None = None) -> bool:
    """Cluster mode for ``url``: forced by ``OTEL_REDIS_CLUSTER``, else asked once (``INFO cluster``).
    A server that cannot be reached counts as standalone for now and is asked again next time."""
    if settings.cluster != "auto":
        return settings.cluster == "true"
    url = url or resolve_url(settings)
    if url.startswith("unix://"):
        return False  # a cluster node is addressed by host and port
    with _cluster_lock:
        known = _cluster_seen.get(url)
    if known is not None:
        return known
    try:
        probe = redis.Redis.from_url(url, socket_timeout=min(settings.socket_timeout_s, 2.0), socket_connect_timeout=2.0)
        try:
            enabled = int(probe.info("cluster").get("cluster_enabled", 0)) == 1
        finally:
            probe.close()
    except redis.RedisError:
        return False
    with _cluster_lock:
        _cluster_seen[url] = enabled
    return enabled


def is_cluster_client(client: object) -> bool:
    """True for redis-py's sync or asyncio ``RedisCluster``."""
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

    return isinstance(client, (RedisCluster, AsyncRedisCluster))


def read_layout(client: "redis.Redis | RedisCluster", default: int | None = None) -> int:
    """The shard count the writers use (``schema.LAYOUT_KEY``); before anything was written,
    ``default``, else the default shard count. Always 1 on a standalone Redis (no round trip)."""
    if not is_cluster_client(client):
        return 1
    shards = schema.parse_layout(client.hgetall(schema.LAYOUT_KEY) or {})
    return shards or _layout_default(client, default)


async def read_layout_async(client: Any, default: int | None = None) -> int:
    """:func:`read_layout` for an asyncio client."""
    shards = schema.parse_layout(await client.hgetall(schema.LAYOUT_KEY) or {})
    return shards or _layout_default(client, default)


def master_clients(client: "redis.Redis | RedisCluster") -> list[redis.Redis]:
    """Clients for keyspace-wide commands (SCAN, DBSIZE) on each master in turn: every primary
    of a ``RedisCluster`` (its own per-node client), or the one server."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(node) for node in client.get_primaries()]
    return [client]


class LayoutCache:
    """The shard count for one long-lived async client (the query API's): asked of Redis until the
    writers have persisted it, then kept (a persisted layout never changes). A standalone Redis
    always has 1, without a round trip."""

    def __init__(self, default: int | None = None) -> None:
        self.default = default
        self._known: int | None = None

    async def get(self, client: Any) -> int:
        if self._known is not None:
            return self._known
        if not is_cluster_client(client):
            return 1
        shards = schema.parse_layout(await client.hgetall(schema.LAYOUT_KEY) or {})
        if shards is not None:
            self._known = shards
        return shards or _layout_default(client, self.default)


def _layout_default(client: object, default: int | None) -> int:
    if not is_cluster_client(client):
        return 1
    return default or Settings().shards


def write_layout(client: "redis.Redis | RedisCluster", shards: int) -> int:
    """Record the shard count a writer uses, unless one is recorded already; returns the recorded
    one (every writer then uses it, so a changed OTEL_REDIS_SHARDS never splits one key two ways)."""
    client.hsetnx(schema.LAYOUT_KEY, schema.LAYOUT_SHARDS_FIELD, shards)
    return read_layout(client, shards)


def layout_shards(settings: Settings, client: object) -> int:
    """The shard count a writer should use for ``client``: 1 on a standalone Redis, else the
    persisted one (set to ``OTEL_REDIS_SHARDS`` when none is)."""
    if not is_cluster_client(client):
        return 1
    return write_layout(client, settings.shards)  # type: ignore[arg-type]


def make_client(
    settings: Settings,
    url: str | None = None,
    *,
    retries: int | None = None,
    on_retry: Callable[[Exception], None] | None = None,
) -> redis.Redis:
    """A redis-py client with bounded timeouts and redis-py's own exponential backoff; a
    ``RedisCluster`` in cluster mode."""
    attempts = settings.retry_attempts if retries is None else retries
    backoff = ExponentialBackoff(cap=settings.retry_backoff_cap_s, base=0.05)
    url = url or resolve_url(settings)
    common = _client_options(settings, CountingRetry(backoff, attempts, on_retry), "otel-redis")
    if cluster_enabled(settings, url):
        return RedisCluster.from_url(url, **common)  # type: ignore[return-value]
    return redis.Redis.from_url(url, **common, **_STANDALONE_OPTIONS)


#: options only a standalone client takes (RedisCluster has its own retry of failed nodes)
_STANDALONE_OPTIONS: dict[str, Any] = {
    "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
    "health_check_interval": 30,
}


def _client_options(settings: Settings, retry: Any, name: str) -> dict[str, Any]:
    return {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": min(settings.socket_timeout_s, 2.0),
        "retry": retry,
        "client_name": name,
    }


def make_async_client(settings: Settings, url: str | None = None) -> "redis.asyncio.Redis":
    """The asyncio twin of :func:`make_client`, for the query API."""
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.asyncio.retry import Retry as AsyncRetry

    url = url or resolve_url(settings)
    retry = AsyncRetry(ExponentialBackoff(cap=settings.retry_backoff_cap_s, base=0.05), settings.retry_attempts)
    common = _client_options(settings, retry, "otel-redis-api")
    if cluster_enabled(settings, url):
        return AsyncRedisCluster.from_url(url, **common)  # type: ignore[return-value]
    return aioredis.Redis.from_url(url, **common, **_STANDALONE_OPTIONS)
