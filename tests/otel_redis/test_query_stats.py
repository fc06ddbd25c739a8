"""/logs/stats figures over a window: the request rate is over the part of the window that had data."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio

from otel_redis import query_stats
from otel_redis.config import Settings
from otel_redis.store import RedisStore
from tests.traffic import request_entry, spread, write

HOUR_MS = 3_600_000


def _stats(redis_url: str, since_ms: int, now_ms: int) -> dict:
    async def run() -> dict:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            return await query_stats.request_stats(client, since_ms, now_ms)
        finally:
            await client.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("minute", [5, 50])
def test_requests_per_second_counts_only_the_time_that_had_requests(r: redis.Redis, redis_url: str,
                                                                      settings: Settings, minute: int) -> None:
    """85 requests in the last minute read as about 85/60 req/s, not 85 over the whole hour (the
    window's now is fixed inside the previous hour, so the test does not depend on the clock)."""
    hour = (int(time.time() * 1000) // HOUR_MS - 1) * HOUR_MS
    now_ms = hour + minute * 60_000
    write(RedisStore(r, settings), [request_entry(ts) for ts in spread(now_ms - 60_000, now_ms, 85)])
    s = _stats(redis_url, now_ms - HOUR_MS // 2, now_ms)["requests"]
    assert s["total"] == 85
    assert s["requests_per_second"] == pytest.approx(85 / 60, rel=0.01)


def test_no_requests_is_a_rate_of_zero(redis_url: str, r: redis.Redis) -> None:
    now_ms = int(time.time() * 1000)
    assert _stats(redis_url, now_ms - HOUR_MS, now_ms)["requests"]["requests_per_second"] == 0
