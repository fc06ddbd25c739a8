"""One pipelined round trip without redis-py's per-command overhead: the hand-packed fast path.

The write path sends a few thousand commands per batch; redis-py's Pipeline spends several
microseconds of Python on each (argument parsing, packing, response callbacks), and even its
connection's public ``read_response`` costs about 0.4 us more per reply than a C reader
(measured: 0.55 against 0.18 us of client CPU per reply). Here a batch is a list of commands that
hiredis packs in C; it goes out in a few ``sendall`` calls (:class:`EarlySend`: the first while the
rest is still being planned), and the replies are parsed by hiredis's public ``Reader`` (its
``gets()`` answers the ``notEnoughData`` sentinel while it needs more bytes), error replies as
redis-py's exception classes in their slot instead of failing the batch.

redis-py exposes neither a connection's socket nor its reader, so this module keeps connections of
its own (:class:`RawConnection`), made from the client's public pool settings
(``connection_pool.connection_class`` and ``connection_kwargs``: TCP or a Unix socket, username and
password, database, client name, timeouts). A client this cannot reproduce (TLS, a credential
provider, RESP3) goes through redis-py's own connections and their public ``send_packed_command``
and ``read_response``. Either way the client's Retry (``get_retry()``, with its backoff) wraps the
round trip, exactly as for a redis-py pipeline. This is the only module that packs or parses RESP.
"""

from __future__ import annotations

import os
import socket
from itertools import repeat
from typing import Any, Callable, Sequence
from weakref import WeakKeyDictionary

import hiredis
import redis
from redis import exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

#: what ``Reader.gets()`` answers while a reply is incomplete (never equal to a reply: 0 == False)
_MORE = object()

#: error prefix -> redis-py's class (as redis-py parses them, so callers match on the same classes)
_ERRORS: dict[str, type[Exception]] = {
    "OOM": exceptions.OutOfMemoryError, "NOSCRIPT": exceptions.NoScriptError, "READONLY": exceptions.ReadOnlyError,
    "LOADING": exceptions.BusyLoadingError, "WRONGPASS": exceptions.AuthenticationError,
    "NOAUTH": exceptions.AuthenticationError, "NOPERM": exceptions.NoPermissionError,
    "EXECABORT": exceptions.ExecAbortError, "ASK": exceptions.AskError, "MOVED": exceptions.MovedError,
    "TRYAGAIN": exceptions.TryAgainError, "CLUSTERDOWN": exceptions.ClusterDownError,
    "CROSSSLOT": exceptions.ClusterCrossSlotError, "MASTERDOWN": exceptions.MasterDownError,
}

#: idle connections kept per client pool
_IDLE_MAX = 8


def error_reply(text: str) -> Exception:
    """An error reply as redis-py's exception class for its prefix (the prefix stripped, as
    redis-py does), else a plain ``ResponseError`` with the whole text."""
    code, _, rest = text.partition(" ")
    cls = _ERRORS.get(code)
    return cls(rest) if cls is not None else exceptions.ResponseError(text)


def _pack_in_python(args: Sequence[Any]) -> bytes:  # pragma: no cover - only without hiredis's packer
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode("utf-8", "surrogatepass")
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


#: one command (a tuple of str, bytes and int arguments) as the bytes sent to Redis
pack: Callable[[Sequence[Any]], bytes] = getattr(hiredis, "pack_command", _pack_in_python)


def _lost(exc: OSError) -> redis.RedisError:
    """A socket error as the error the client's Retry retries."""
    if isinstance(exc, socket.timeout):
        return redis.TimeoutError(f"Timeout reading from socket: {exc}")
    return redis.ConnectionError(f"{type(exc).__name__}: {exc}")


class RawConnection:
    """One connection of the fast path: a socket, a hiredis Reader, the client's handshake."""

    __slots__ = ("_options", "_sock", "_reader", "pid")

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._sock: socket.socket | None = None
        self._reader: Any = None
        self.pid = os.getpid()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        o = self._options
        try:
            if o.get("path"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(o["connect_timeout"])
                sock.connect(o["path"])
            else:
                sock = socket.create_connection((o["host"], o["port"]), o["connect_timeout"])
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(o["timeout"])
        except OSError as exc:
            raise redis.ConnectionError(f"Error connecting to Redis: {exc}") from exc
        self._sock = sock
        self._reader = hiredis.Reader(replyError=error_reply, notEnoughData=_MORE)
        self._handshake()

    def _handshake(self) -> None:
        """What redis-py's connection does on connect: AUTH, CLIENT SETNAME, SELECT."""
        o = self._options
        commands: list[tuple[Any, ...]] = []
        if o.get("password") is not None:
            commands.append(("AUTH", o["username"], o["password"]) if o.get("username") else ("AUTH", o["password"]))
        if o.get("client_name"):
            commands.append(("CLIENT", "SETNAME", o["client_name"]))
        if o.get("db"):
            commands.append(("SELECT", o["db"]))
        if not commands:
            return
        self.send(b"".join(map(pack, commands)))
        for reply in self.read(len(commands)):
            if isinstance(reply, Exception):
                self.close()
                raise reply if isinstance(reply, redis.ConnectionError) else redis.ConnectionError(str(reply))

    def send(self, payload: bytes) -> None:
        if self._sock is None:
            self.connect()
        try:
            self._sock.sendall(payload)  # type: ignore[union-attr]
        except OSError as exc:
            self.close()
            raise _lost(exc) from exc

    def read(self, n: int) -> list[Any]:
        """``n`` replies (every complete reply in the buffer is parsed in C, without a Python step
        per reply); a ``ConnectionError`` reply (``LOADING``) is raised, to be retried."""
        reader, sock = self._reader, self._sock
        if sock is None:
            raise redis.ConnectionError("Connection closed before the replies were read")
        replies = reader.gets
        out: list[Any] = list(iter(replies, _MORE))
        try:
            while len(out) < n:
                data = sock.recv(1 << 16)
                if not data:
                    raise redis.ConnectionError("Connection closed by server.")
                reader.feed(data)
                out.extend(iter(replies, _MORE))
        except OSError as exc:
            self.close()
            raise _lost(exc) from exc
        if any(map(isinstance, out, repeat(redis.ConnectionError))):
            raise next(r for r in out if isinstance(r, redis.ConnectionError))
        return out

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:  # pragma: no cover
                pass


def _raw_options(pool: Any) -> dict[str, Any] | None:
    """The settings a :class:`RawConnection` needs from a redis-py pool; None when it cannot
    reproduce that pool's connections (TLS, a credential provider, RESP3, another class)."""
    kw = pool.connection_kwargs
    cls = pool.connection_class
    if cls not in (redis.Connection, redis.UnixDomainSocketConnection):
        return None
    if kw.get("credential_provider") is not None or str(kw.get("protocol") or 2) != "2":
        return None
    timeout = kw.get("socket_timeout")
    return {
        "path": kw.get("path") if cls is redis.UnixDomainSocketConnection else None,
        "host": kw.get("host", "localhost"), "port": int(kw.get("port", 6379)),
        "username": kw.get("username"), "password": kw.get("password"), "db": int(kw.get("db") or 0),
        "client_name": kw.get("client_name"), "timeout": timeout,
        "connect_timeout": kw.get("socket_connect_timeout") or timeout,
    }


class _RawPool:
    """The idle fast-path connections of one client pool, in this process only (a forked child
    starts with none: the parent's sockets are never shared). list.pop/append need no lock."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.pid = os.getpid()
        self.idle: list[RawConnection] = []

    def get(self) -> RawConnection:
        if self.pid != os.getpid():
            self.pid, self.idle = os.getpid(), []
        try:
            return self.idle.pop()
        except IndexError:
            return RawConnection(self.options)

    def release(self, conn: RawConnection) -> None:
        if conn.pid == self.pid and conn.connected and len(self.idle) < _IDLE_MAX:
            self.idle.append(conn)
        else:
            conn.close()


#: client pool -> its fast-path connections (None: that pool's connections cannot be reproduced)
_POOLS: "WeakKeyDictionary[Any, _RawPool | None]" = WeakKeyDictionary()


def _raw_pool(client: redis.Redis) -> _RawPool | None:
    pool = client.connection_pool
    try:
        return _POOLS[pool]
    except KeyError:
        options = _raw_options(pool)
        raw = _POOLS[pool] = _RawPool(options) if options is not None else None
        return raw


class _PoolConnection:
    """A redis-py connection behind the same three calls (the path for clients the fast path
    cannot reproduce): public ``send_packed_command`` and ``read_response``, one reply at a time."""

    __slots__ = ("_client", "_conn")

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        pool = client.connection_pool
        try:
            self._conn = pool.get_connection()
        except TypeError:  # pragma: no cover - redis-py < 6 wants a command name
            self._conn = pool.get_connection("PIPELINE")

    def send(self, payload: bytes) -> None:
        self._conn.send_packed_command([payload])

    def read(self, n: int) -> list[Any]:
        out: list[Any] = []
        for _ in range(n):
            try:
                out.append(self._conn.read_response(disable_decoding=True))
            except exceptions.ResponseError as exc:
                out.append(exc)
        return out

    def close(self) -> None:
        self._conn.disconnect()

    def release(self) -> None:
        self._client.connection_pool.release(self._conn)


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
        self._payloads: list[bytes] = []
        self._sent = 0
        self._failed = None

    def _connection(self) -> Any:
        raw = _raw_pool(self._client)
        return raw.get() if raw is not None else _PoolConnection(self._client)

    def flush(self) -> None:
        args = self.args
        if self._sent == len(args):
            return
        if self._conn is None:
            self._conn = self._connection()
        part = args[self._sent :]
        payload = b"".join(part if self._packed else map(pack, part))
        self._sent = len(args)
        self._payloads.append(payload)
        if self._failed is None:
            try:
                self._conn.send(payload)
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
                    return conn.read(n)
                for payload in payloads:
                    conn.send(payload)
                return conn.read(n)
            except OSError as exc:  # a reset read (a killed server) is a lost connection: retried too
                raise redis.ConnectionError(f"{type(exc).__name__}: {exc}") from exc

        retry = self._client.get_retry() or Retry(NoBackoff(), 0)
        try:
            replies = retry.call_with_retry(attempt, lambda _error: conn.close())
        except BaseException:
            conn.close()  # a half-read reply stream must not go back to the pool
            self._release(conn)
            raise
        self._release(conn)
        return replies

    def _release(self, conn: Any) -> None:
        self._conn = None
        if isinstance(conn, _PoolConnection):
            conn.release()
            return
        raw = _raw_pool(self._client)
        if raw is not None:
            raw.release(conn)


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
