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


def test_replies_of_zero_and_error_replies_keep_their_slots_and_classes(settings, r):
    """Integer 0 is a reply like any other (the reader's needs-more sentinel is not ``False``), and
    error replies come back as redis-py's classes, nested ones inside a script's reply too."""
    r.set("a-string", "x")
    send = resp.EarlySend(make_client(settings))
    send.args += [("SISMEMBER", "no-set", f"m{i}") for i in range(300)]
    send.args.append(("EVALSHA", "0" * 40, 0))
    send.args.append(("HSET", "a-string", "f", "v"))
    send.args.append(("EVAL", "return {1, redis.pcall('HSET', KEYS[1], 'f', 'v')}", 1, "a-string"))
    replies = send.finish()
    assert replies[:300] == [0] * 300
    assert isinstance(replies[300], redis.exceptions.NoScriptError)
    assert type(replies[301]) is redis.ResponseError and str(replies[301]).startswith("WRONGTYPE")
    assert replies[302][0] == 1 and isinstance(replies[302][1], redis.ResponseError)


def test_the_fast_path_uses_the_urls_database_user_and_client_name(settings, r):
    r.acl_setuser("wp-writer", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all"])
    try:
        base = settings.redis_url
        url = base.replace("unix://", "unix://wp-writer:s3cret@") + "?db=5" if base.startswith("unix://") else \
            base.replace("redis://", "redis://wp-writer:s3cret@").rsplit("/", 1)[0] + "/5"
        client = redis.Redis.from_url(url, client_name="wp-test")
        assert resp._raw_pool(client) is not None  # this client's connections are the module's own
        send = resp.EarlySend(client)
        send.args += [("SET", "in-db-5", "yes"), ("CLIENT", "GETNAME")]
        assert send.finish() == [b"OK", b"wp-test"]
        assert r.get("in-db-5") is None
        assert redis.Redis.from_url(url).get("in-db-5") == b"yes"
        wrong = redis.Redis.from_url(url.replace("s3cret", "wrong"))
        try:
            resp.EarlySend(wrong).finish()  # nothing planned: nothing sent, no connection
            bad = resp.EarlySend(wrong)
            bad.args.append(("PING",))
            bad.finish()
            raise AssertionError("a wrong password was accepted")
        except redis.AuthenticationError:
            pass
    finally:
        r.acl_deluser("wp-writer")


class _OtherConnection(redis.Connection):
    """A connection class the fast path does not know: its settings may mean anything."""


class _OtherUnixConnection(redis.UnixDomainSocketConnection):
    pass


def test_a_client_the_fast_path_cannot_reproduce_goes_through_redis_py_connections(settings, r):
    template = redis.Redis.from_url(settings.redis_url).connection_pool
    cls = _OtherUnixConnection if template.connection_class is redis.UnixDomainSocketConnection else _OtherConnection
    pool = redis.ConnectionPool(connection_class=cls, **{
        k: v for k, v in template.connection_kwargs.items() if k in ("host", "port", "path", "db")})
    client = redis.Redis(connection_pool=pool)
    assert resp._raw_pool(client) is None
    r.set("a-string", "x")
    send = resp.EarlySend(client)
    send.args += [("SADD", "s", f"m{i}") for i in range(40)]
    send.flush()
    send.args += [("HSET", "a-string", "f", "v"), ("SCARD", "s")]
    replies = send.finish()
    assert replies[:40] == [1] * 40 and isinstance(replies[40], redis.ResponseError) and replies[41] == 40
