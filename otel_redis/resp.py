"""One pipelined round trip without redis-py's per-command overhead.

The write path sends a few thousand commands per batch; redis-py's Pipeline spends several
microseconds of Python on each (argument parsing, packing, response callbacks). Here a batch is a
list of argument tuples: hiredis packs each in C, the batch goes out in a few ``sendall`` calls
(:class:`EarlySend`: the first while the rest is still being planned), and the replies are read straight from the connection's hiredis reader. The client's Retry (with its
backoff) still wraps the round trip, exactly as for a redis-py pipeline, and error replies come
back as exception objects in their slot instead of failing the batch.
"""

from __future__ import annotations

from functools import partial
from itertools import repeat
from typing import Any, Callable, Sequence

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


def _pack_in_python(args: Sequence[Any]) -> bytes:  # pragma: no cover - only without hiredis
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode("utf-8", "surrogatepass")
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


#: one command (a tuple of str, bytes and int arguments) as the bytes sent to Redis
pack: Callable[[Sequence[Any]], bytes] = _pack if _pack is not None else _pack_in_python


def _connection(client: redis.Redis) -> Any:
    pool = client.connection_pool
    try:
        return pool.get_connection()
    except TypeError:  # redis-py < 6 wants a command name
        return pool.get_connection("PIPELINE")


def _pack_all(conn: Any, commands: Sequence[tuple[Any, ...]]) -> Any:
    if _pack is not None:
        return b"".join(map(_pack, commands))  # packed in C, one command after another
    return conn.pack_commands(commands)  # pragma: no cover


def _send(conn: Any, payload: Any) -> None:
    conn.send_packed_command([payload] if isinstance(payload, bytes) else payload)


def _read(conn: Any, n: int) -> list[Any]:
    parser = getattr(conn, "_parser", None)
    reader = getattr(parser, "_reader", None)
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


class EarlySend:
    """One round trip whose first commands leave while the rest are still being planned.

    The planner appends to :attr:`args` and calls :meth:`flush` now and then: what was added since
    the last flush is packed and sent at once, so Redis executes it while planning goes on. With
    ``packed=True`` the planner appends commands already packed (:func:`pack`): bytes, which the
    garbage collector does not track, where argument tuples held until the batch ends would make it
    run more often.
    :meth:`finish` sends the rest and reads every reply. A send that fails is not raised there: the
    client's Retry in :meth:`finish` resends the whole round trip, as for a retried pipeline
    (commands may run twice, as there: the write path sends only commands that come out the same,
    plus one guarded call that applies the rest once, see guard.py)."""

    __slots__ = ("args", "_client", "_conn", "_payloads", "_sent", "_failed", "_packed")

    _failed: Exception | None

    def __init__(self, client: redis.Redis, *, packed: bool = False) -> None:
        self.args: list[Any] = []
        self._packed = packed
        self._client = client
        self._conn: Any = None
        self._payloads: list[Any] = []
        self._sent = 0
        self._failed = None

    def flush(self) -> None:
        args = self.args
        if self._sent == len(args):
            return
        if self._conn is None:
            self._conn = _connection(self._client)
        payload = b"".join(args[self._sent :]) if self._packed else _pack_all(self._conn, args[self._sent :])
        self._sent = len(args)
        self._payloads.append(payload)
        if self._failed is None:
            try:
                _send(self._conn, payload)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._failed = exc  # finish() retries the whole round trip
            except OSError as exc:
                self._failed = redis.ConnectionError(str(exc))

    def finish(self) -> list[Any]:
        """Send what is left and read every reply (errors as exception objects)."""
        self.flush()
        conn = self._conn
        if conn is None:
            return []
        n = len(self.args)
        payloads = self._payloads
        first = [True]  # the first attempt only reads what the flushes already sent
        failed = self._failed

        def attempt() -> list[Any]:
            try:
                if first[0]:
                    first[0] = False
                    if failed is not None:
                        raise failed  # an early send failed: counted and retried like any failure
                    return _read(conn, n)
                for payload in payloads:
                    _send(conn, payload)
                return _read(conn, n)
            except OSError as exc:  # a reset read (a killed server) is a lost connection: retried too
                raise redis.ConnectionError(f"{type(exc).__name__}: {exc}") from exc

        try:
            return conn.retry.call_with_retry(attempt, lambda _error: conn.disconnect())
        except BaseException:
            conn.disconnect()  # a half-read reply stream must not go back to the pool
            raise
        finally:
            self._client.connection_pool.release(conn)
            self._conn = None


def errors(replies: list[Any]) -> list[Exception]:
    """The error replies among ``replies`` (a C-speed scan first: errors are rare)."""
    if not any(map(isinstance, replies, repeat(Exception))):
        return []
    return [r for r in replies if isinstance(r, Exception)]


def error_positions(replies: list[Any]) -> list[int]:
    """The positions of the error replies among ``replies`` (a C-speed scan first: errors are rare)."""
    if not any(map(isinstance, replies, repeat(Exception))):
        return []
    return [i for i, r in enumerate(replies) if isinstance(r, Exception)]
