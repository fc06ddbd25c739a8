"""One pipelined round trip without redis-py's per-command overhead.

The write path sends a few thousand commands per batch; redis-py's Pipeline spends several
microseconds of Python on each (argument parsing, packing, response callbacks). Here a batch is a
list of argument tuples: hiredis packs each in C, the whole batch goes out in one ``sendall``, and
the replies are read straight from the connection's hiredis reader. The client's Retry (with its
backoff) still wraps the round trip, exactly as for a redis-py pipeline, and error replies come
back as exception objects in their slot instead of failing the batch.
"""

from __future__ import annotations

from functools import partial
from itertools import chain, repeat
from typing import Any, Iterable, Mapping, Sequence

import redis
from redis.exceptions import ResponseError

try:
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:  # pragma: no cover - redis-py before 5.1: hiredis says False
    _NOT_ENOUGH_DATA = False

try:  # hiredis is a dependency (redis[hiredis]); keep working without it
    from hiredis import pack_command as _pack
except ImportError:  # pragma: no cover
    _pack = None


class Commands:
    """Collects commands as argument lists; the subset of redis-py's pipeline API the store uses."""

    __slots__ = ("args",)

    def __init__(self) -> None:
        self.args: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.args)

    def hset(self, key: str, mapping: Mapping[str, Any]) -> None:
        self.args.append(("HSET", key, *chain.from_iterable(mapping.items())))

    def expireat(self, key: str, when: int) -> None:
        self.args.append(("EXPIREAT", key, when))

    def set(self, key: str, value: Any, ex: int) -> None:
        self.args.append(("SET", key, value, "EX", ex))

    def expire(self, key: str, seconds: int) -> None:
        self.args.append(("EXPIRE", key, seconds))

    def xadd(self, stream: str, fields: Mapping[str, Any]) -> None:
        self.args.append(("XADD", stream, "*", *chain.from_iterable(fields.items())))

    def xtrim(self, stream: str, maxlen: int | None = None, minid: str | None = None, approximate: bool = True) -> None:
        how = ("MAXLEN", maxlen) if maxlen is not None else ("MINID", minid)
        self.args.append(("XTRIM", stream, how[0], "~" if approximate else "=", how[1]))

    def zadd(self, key: str, mapping: Mapping[str, float]) -> None:
        args: list[Any] = ["ZADD", key]
        for member, score in mapping.items():
            args.append(score)
            args.append(member)
        self.args.append(tuple(args))

    def zremrangebyscore(self, key: str, low: Any, high: Any) -> None:
        self.args.append(("ZREMRANGEBYSCORE", key, low, high))

    def hincrby(self, key: str, field: str, amount: int = 1) -> None:
        self.args.append(("HINCRBY", key, field, amount))

    def pfadd(self, key: str, *values: str) -> None:
        self.args.append(("PFADD", key, *values))

    def sadd(self, key: str, *values: str) -> None:
        self.args.append(("SADD", key, *values))

    def rpush(self, key: str, *values: str) -> None:
        self.args.append(("RPUSH", key, *values))

    def ltrim(self, key: str, start: int, end: int) -> None:
        self.args.append(("LTRIM", key, start, end))


def _connection(client: redis.Redis) -> Any:
    pool = client.connection_pool
    try:
        return pool.get_connection()
    except TypeError:  # redis-py < 6 wants a command name
        return pool.get_connection("PIPELINE")


def _round_trip(conn: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    if _pack is not None:
        payload: Any = b"".join(map(_pack, commands))  # packed in C, one command after another
    else:  # pragma: no cover
        payload = conn.pack_commands(commands)
    conn.send_packed_command([payload] if isinstance(payload, bytes) else payload)
    parser = getattr(conn, "_parser", None)
    reader = getattr(parser, "_reader", None)
    n = len(commands)
    out: list[Any] = []
    if reader is None or not hasattr(parser, "read_from_socket"):  # pragma: no cover - pure-Python parser
        for _ in range(n):
            try:
                out.append(conn.read_response(disable_decoding=True))
            except ResponseError as exc:
                out.append(exc)
        return out
    # every complete reply in the reader's buffer, parsed in C without a Python step per reply
    replies = partial(reader.gets, False)
    read_more = parser.read_from_socket
    out.extend(iter(replies, _NOT_ENOUGH_DATA))
    while len(out) < n:
        read_more()
        out.extend(iter(replies, _NOT_ENOUGH_DATA))
    if any(map(isinstance, out, repeat(Exception))):
        for reply in out:
            if isinstance(reply, redis.ConnectionError):
                raise reply
    return out


def errors(replies: list[Any]) -> list[Exception]:
    """The error replies among ``replies`` (a C-speed scan first: errors are rare)."""
    if not any(map(isinstance, replies, repeat(Exception))):
        return []
    return [r for r in replies if isinstance(r, Exception)]


def execute(client: redis.Redis, commands: Iterable[Sequence[Any]]) -> list[Any]:
    """Send ``commands`` in one round trip; the replies in order (errors as exception objects)."""
    commands = list(commands)
    if not commands:
        return []
    pool = client.connection_pool
    conn = _connection(client)
    try:
        return conn.retry.call_with_retry(lambda: _round_trip(conn, commands), lambda _error: conn.disconnect())
    except BaseException:
        conn.disconnect()  # a half-read reply stream must not go back to the pool
        raise
    finally:
        pool.release(conn)
