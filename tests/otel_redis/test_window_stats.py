"""window_stats: the plans behind /metrics, /logs/metrics, the alert rules and /logs/stats, run by the
sync and the async driver against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis

from otel_redis import schema, window_stats

HOURS = [f"20240101:{h:02d}" for h in range(24)]


def _fill(r: redis.Redis, hosts: int, hours: int) -> list[list[str]]:
    """Overlapping HyperLogLogs: host h, hour n holds 10.h.n.0-99 and 10.h.0.0-49."""
    keys = []
    for h in range(hosts):
        row = []
        for n in range(hours):
            key = schema.stats_unique_ips(f"h{h}.example.com", HOURS[n])
            r.pfadd(key, *[f"10.{h}.{n}.{i}" for i in range(100)], *[f"10.{h}.0.{i}" for i in range(50)])
            row.append(key)
        keys.append(row)
    return keys


@pytest.mark.parametrize("cluster", [False, True], ids=["one-server", "copies"])
def test_union_counts_equal_a_direct_pfcount_and_leave_nothing(r, cluster):
    keys = _fill(r, hosts=3, hours=15)
    every = [k for row in keys for k in row]
    assert len(every) > 32 + 10  # the chunked PFMERGE path
    groups = [every, keys[0], keys[1][:1], [], [*keys[2], schema.stats_unique_ips("none.example.com", HOURS[0])]]
    sources = [[(k, False) for k in g] for g in groups]
    got = window_stats.run_sync(r, window_stats.union_counts(sources, cluster=cluster))
    direct = [int(r.pfcount(*g)) if g else 0 for g in groups]
    assert got == direct
    assert got[0] > got[1] > got[2] > 0 and got[3] == 0
    assert not list(r.scan_iter(match="tmp:*"))


def test_together_shares_round_trips_and_drivers_agree(r, redis_url):
    keys = _fill(r, hosts=2, hours=3)
    calls: list[int] = []

    def counted(plan: window_stats.Plan) -> window_stats.Plan:
        """Count the round trips a plan asks for."""
        try:
            round_ = next(plan)
            while True:
                calls.append(len(round_.calls))
                round_ = plan.send((yield round_))
        except StopIteration as done:
            return done.value

    def both() -> window_stats.Plan:
        return window_stats.together(
            window_stats.hosts_by_hour(HOURS[:3]),
            window_stats.union_counts([[(k, False) for k in keys[0]]], cluster=False),
        )

    sync = window_stats.run_sync(r, counted(both()))
    assert len(calls) == 1

    async def main():
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await window_stats.run_async(client, both())
        finally:
            await client.aclose()

    assert asyncio.run(main()) == sync
    assert sync[1] == [int(r.pfcount(*keys[0]))]


def test_error_replies_raise_unless_tolerated(r):
    r.set("not-a-hash", "x")

    def plan(tolerate: bool) -> window_stats.Plan:
        replies = yield window_stats.Round([window_stats.call("hgetall", "not-a-hash")], tolerate_errors=tolerate)
        return replies

    assert isinstance(window_stats.run_sync(r, plan(True))[0], redis.ResponseError)
    with pytest.raises(redis.ResponseError):
        window_stats.run_sync(r, plan(False))
