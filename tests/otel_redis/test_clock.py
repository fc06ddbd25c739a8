"""tests/clock.py: a burst of log calls inside distinct_milliseconds() gets one millisecond each,
through the real pipeline into Redis (what the /logs ordering tests rely on instead of sleeping)."""

from __future__ import annotations

import otel_redis
from otel_redis import schema
from tests.clock import distinct_milliseconds


def test_a_burst_of_log_calls_is_stored_one_millisecond_apart(pipeline, r):
    with distinct_milliseconds():
        for i in range(50):
            otel_redis.log_info(f"burst {i}")
    assert otel_redis.force_flush()
    scores = [int(score) for _, score in r.zrange(schema.IDX_LOG_ALL, 0, -1, withscores=True)]
    assert len(scores) == 50 and len(set(scores)) == 50  # no two in one millisecond
