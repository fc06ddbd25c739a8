"""The write path's own round trip (otel_redis/resp.py) against a real Redis."""

from __future__ import annotations

import redis

from otel_redis import resp
from otel_redis.connection import make_client


def test_early_send_returns_every_reply_in_order_with_errors_in_their_slot(settings, r):
    client = make_client(settings)
    r.set("a-string", "x")
    send = resp.EarlySend(client)
    send.args += [("SET", f"k{i}", i) for i in range(50)]
    send.flush()  # these leave now; Redis executes them while more are planned
    send.args.append(("HSET", "a-string", "f", "v"))  # wrong type: an error reply, not a failed batch
    send.args += [("INCRBY", f"k{i}", 1000) for i in range(50)]
    replies = send.finish()
    assert len(replies) == 101
    assert isinstance(replies[50], redis.ResponseError) and "WRONGTYPE" in str(replies[50])
    assert replies[51:] == [1000 + i for i in range(50)]
    assert [int(r.get(f"k{i}")) for i in range(50)] == [1000 + i for i in range(50)]


def test_early_send_survives_a_dropped_connection_by_resending(settings, r):
    retries: list[Exception] = []
    client = make_client(settings, on_retry=retries.append)
    send = resp.EarlySend(client)
    send.args += [("SADD", "members", f"m{i}") for i in range(20)]
    send.flush()
    # the server drops the writer's connection between the early part and the rest
    killed = r.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    send.args += [("SADD", "members", f"m{i}") for i in range(20, 40)]
    replies = send.finish()
    assert len(replies) == 40
    # resent as a whole, like a retried pipeline: every member is there exactly once (SADD is idempotent)
    assert r.scard("members") == 40
    assert len(retries) >= 1


def test_nothing_planned_sends_nothing(settings):
    assert resp.EarlySend(make_client(settings)).finish() == []


def test_packed_commands_go_as_they_are(settings, r):
    """The store packs while it plans (resp.pack) and hands EarlySend bytes."""
    send = resp.EarlySend(make_client(settings), packed=True)
    send.args += [resp.pack(("RPUSH", "packed", f"v{i}", "ü\x00")) for i in range(30)]
    send.flush()
    send.args.append(resp.pack(("LLEN", "packed")))
    assert send.finish() == [2 * (i + 1) for i in range(30)] + [60]
    assert r.lrange("packed", 0, 3) == ["v0", "ü\x00", "v1", "ü\x00"]
