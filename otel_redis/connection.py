"""Redis connections: REDIS_URL when set, else the embedded server for the data folder."""

from __future__ import annotations

import copy
import threading
from typing import Any, Callable

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .config import Settings
from .embedded import EmbeddedRedis

_embedded_lock = threading.Lock()
_embedded: dict[str, EmbeddedRedis] = {}


def embedded_server(settings: Settings) -> EmbeddedRedis:
    """The (process-wide, shared) embedded server for ``settings.data_dir``."""
    key = str(settings.data_dir.resolve())
    with _embedded_lock:
        server = _embedded.get(key)
        if server is None:
            server = EmbeddedRedis(settings.data_dir, binary=settings.redis_server_bin).start()
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


def make_client(
    settings: Settings,
    url: str | None = None,
    *,
    retries: int | None = None,
    on_retry: Callable[[Exception], None] | None = None,
) -> redis.Redis:
    """A redis-py client with bounded timeouts and redis-py's own exponential backoff."""
    attempts = settings.retry_attempts if retries is None else retries
    backoff = ExponentialBackoff(cap=settings.retry_backoff_cap_s, base=0.05)
    return redis.Redis.from_url(
        url or resolve_url(settings),
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=min(settings.socket_timeout_s, 2.0),
        retry=CountingRetry(backoff, attempts, on_retry),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        health_check_interval=30,
        client_name="otel-redis",
    )


def make_async_client(settings: Settings, url: str | None = None) -> "redis.asyncio.Redis":
    """The asyncio twin of :func:`make_client`, for the query API."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry as AsyncRetry

    return aioredis.Redis.from_url(
        url or resolve_url(settings),
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=min(settings.socket_timeout_s, 2.0),
        retry=AsyncRetry(ExponentialBackoff(cap=settings.retry_backoff_cap_s, base=0.05), settings.retry_attempts),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        health_check_interval=30,
        client_name="otel-redis-api",
    )
