"""The one write path (a batch of LogEntry -> one pipelined round trip) and the basic read path.

Write rules (see the README's key schema):
- each record is a hash with an absolute expiry (``EXPIREAT`` = record time + its retention);
- each stream gets one entry per record holding the record key (``k``), in the guarded call
  (standalone; a plain ``XADD`` on a Redis Cluster);
- index members are added with one ``ZADD`` per distinct index key per slice of
  :data:`EARLY_SEND_RECORDS` records, scored by record time; the slices leave early
  (resp.EarlySend) so Redis works while we plan, and little is left for Redis after the last one;
- index and stats keys get their ``EXPIRE`` (and indexes a trim of members past retention) at most
  once per :data:`REFRESH_INTERVAL_S` per key and process; the expiry carries that interval as
  margin, so a key never expires before its newest member is past retention and an index never
  keeps a member whose record has expired. A due index gets its ZADD, trim and EXPIRE in one
  single-key script; the trim removes at most :data:`TRIM_STEP` of the oldest members
  (``ZREMRANGEBYRANK``), so no step blocks Redis for long on a busy index; an index whose trim hit
  that bound is trimmed again by the next batch;
- counters are summed per batch; a response-time histogram hash gets all of a batch's bucket
  increments in one op, other counters one ``HINCRBY`` per field;
- what a second run would change (stream entries, counters, histograms, aggregates, HyperLogLogs,
  OAuth flow lists, and the expiries and trims of those keys) goes in one guarded script call at the
  end of the batch (guard.py): a round trip the client's Retry resends after lost replies applies
  it once; everything sent before it (hashes, expiries, index members) comes out the same. That
  call spans hash slots, so on a Redis Cluster these stay plain commands (a resent round trip may
  apply them twice: at-least-once; a guarded call per slot is not built yet);
- the trace index is one lexicographic sorted set per hour (``idx:trace:{YYYYMMDD:HH}``, see
  :func:`schema.idx_trace`): one ``ZADD`` per slice, and an ``EXPIREAT`` at the end of its hour plus
  the requests' retention; it is not trimmed, so a member outlives its record by up to an hour;
- streams are trimmed by age (``MINID``) once per interval; beyond ``OTEL_REDIS_STREAM_MAXLEN``
  entries they are trimmed by length too, but never past what a consumer group (the forwarder) has
  not read and acknowledged, unless the stream also exceeds ``OTEL_REDIS_STREAM_UNREAD_MAXLEN``: the
  unread entries trimmed then are counted (``WriteResult.unread_trimmed``).
Each reply is mapped back to its record (:class:`~otel_redis.write_result.WriteResult`): a record
is stored only when its hash, expiry and stream entry were accepted; failed commands are resent once,
and a record still refused is deleted (with its stream entry) and reported as dropped, by error kind.
On a Cluster no command spans hash slots. The round trip is the client's sender (transport.py): on a standalone
server resp.EarlySend on one connection; on a Redis Cluster each master's share on its own connection,
redirections through a ``RedisCluster`` pipeline (transport_cluster.py), and the hot keys (schema.is_hot) are written under their sharded names: each
slice of :data:`EARLY_SEND_RECORDS` records takes the next of the S parts (round robin per process,
one part of each master in turn), so a record's stream entry, hot index members and counters all land on one shard.
"""

from __future__ import annotations

import functools
import itertools
import os
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Iterable, Iterator, Sequence

import redis

from . import aggregates, forksafe, guard, histogram, resp, schema, transport, window_stats
from .connection import layout_shards
from .config import Retention, Settings
from .client_ip import valid_ip
from .histogram import bucket_of, error_field
from .levels import is_error_severity
from .record import LogEntry
from .write_result import WriteResult

from .bounds import KNOWN_METHODS, OTHER, KeyBounds, bounded_method, bounded_status  # noqa: F401 (re-exported)

#: only set the hostname of a record that still exists (HSET on an expired key would recreate it)
_PATCH_HOSTNAME = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'client_hostname', ARGV[1])
  return 1
end
return 0
"""

REFRESH_INTERVAL_S = 60

#: records whose commands are planned before they are sent (see resp.EarlySend)
EARLY_SEND_RECORDS = 64

#: most index members one trim step removes (about a millisecond of Redis time)
TRIM_STEP = 1000

#: a due index in one command: add the members ARGV[4..] (score, member pairs; 500 pairs per ZADD so
#: that unpack stays within Lua's stack), remove up to ARGV[2] of the oldest members scored below
#: ARGV[1] (the trim), and set the expiry ARGV[3]; returns how many members the trim removed. One
#: key, so Cluster-safe.
_ADD_TRIM_EXPIRE = """
local n = #ARGV
local i = 4
while i <= n do
  local j = i + 999
  if j > n then j = n end
  redis.call('ZADD', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
local removed = 0
local old = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
if old > 0 then
  local cap = tonumber(ARGV[2])
  if old > cap then old = cap end
  removed = redis.call('ZREMRANGEBYRANK', KEYS[1], 0, old - 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return removed
"""
ADD_TRIM_EXPIRE_SHA = __import__("hashlib").sha1(_ADD_TRIM_EXPIRE.encode()).hexdigest()

#: many counters of one hash in one command: ARGV holds (field, increment) pairs. A batch's
#: response-time histogram for one hash is a few hundred buckets: one call instead of one HINCRBY
#: each (the same hash updates for Redis, a fraction of the commands to plan, pack and parse). One
#: key, so Cluster-safe.
_HINCRBY_PAIRS = """
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 0
"""
HINCRBY_PAIRS_SHA = __import__("hashlib").sha1(_HINCRBY_PAIRS.encode()).hexdigest()
#: attribute that marks a track_oauth_flow record; its key is appended to ``oauth:flow:{session}``
OAUTH_FLOW_STEP = "oauth.flow.step"
OAUTH_FLOW_MAX_STEPS = 200
_REFRESH_CACHE_MAX = 100_000
_ROUTE_MEMO_MAX = 8192


class _Uid:
    """Process-unique record suffixes: a random prefix (new after fork) and a counter."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(3)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"

    def current(self) -> tuple[str, Iterator[int]]:
        """(prefix, counter) for a batch: suffix = prefix + hex(next(counter))."""
        return self._prefix, self._counter


_uid = _Uid()

#: the shard the next slice writes to on a Cluster (modulo S): round robin over the process's slices
_next_shard = itertools.count()  # an index into RedisStore._shard_order


@functools.lru_cache(maxsize=8192)
def _shard_part(key: str, n: int, shards: int) -> str:
    """Part ``n`` of ``key`` when it is a hot key, else ``key`` (cluster mode only)."""
    return schema.shard_key(key, n, shards) if schema.is_hot(key) else key


class _RefreshCache:
    """Remembers when a key's TTL was last refreshed by this process (bounded, LRU)."""

    def __init__(self, max_size: int = _REFRESH_CACHE_MAX) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max = max_size
        self._lock = threading.Lock()
        forksafe.renew_in_child(self.renew_lock)

    def renew_lock(self) -> None:
        """In a forked child: the parent's exporter thread may have held the lock at the fork (the
        child would wait on it forever); the entries stay (each is a whole dict operation)."""
        self._lock = threading.Lock()

    def due(self, key: str, now: float) -> bool:
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last < REFRESH_INTERVAL_S:
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            if len(self._seen) > self._max:
                self._seen.popitem(last=False)
            return True

    def due_many(self, keys: Iterable[str], now: float) -> list[str]:
        """The keys among ``keys`` that are due (and are now marked refreshed), under one lock."""
        out = []
        seen = self._seen
        with self._lock:
            for key in keys:
                last = seen.get(key)
                if last is not None and now - last < REFRESH_INTERVAL_S:
                    continue
                seen[key] = now
                seen.move_to_end(key)
                out.append(key)
            while len(seen) > self._max:
                seen.popitem(last=False)
        return out

    def forget(self, keys: Iterable[str]) -> None:
        """Make ``keys`` due again at their next write."""
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


@functools.lru_cache(maxsize=4096)
def _stream_id(value: Any) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else str(value or "0-0")
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _route_keys(method: str, status: int, indexed: str) -> tuple[str, str, str, str]:
    """What a request's bounded method, status and indexed path decide: the status, method and path
    index keys and the ``stats:paths`` field (cached per store, see :meth:`RedisStore._route_of`)."""
    method = bounded_method(method)
    return (
        schema.idx_req_status(bounded_status(status)),
        schema.idx_req_method(method),
        schema.idx_req_path(method, indexed),
        f"{method} {indexed}",
    )


@functools.lru_cache(maxsize=8192)
def _ip_index(ip: str) -> str | None:
    """``idx:req:ip:{ip}`` for a valid address, else None (garbage never becomes a key)."""
    return schema.idx_req_ip(ip) if valid_ip(ip) else None


@functools.lru_cache(maxsize=1024)
def _rt_keys(minute: str, hour: str, host: str) -> tuple[str, str]:
    """The (minute, hour) response-time histogram keys of a hostname, or overall for ``""``."""
    if not host:
        return schema.stats_rt_all(minute), schema.stats_rt_all(hour)
    return schema.stats_rt(host, minute), schema.stats_rt(host, hour)


def trace_keys(client: redis.Redis, trace_id: str, since_ms: int = 0, keep_s: int = Retention.requests) -> list[str]:
    """The record keys of one trace (as stored: normalised), oldest first: one ``ZRANGEBYLEX`` per
    hourly trace index from ``since_ms`` (at most the requests' retention ``keep_s`` back) to an
    hour from now, in one round trip."""
    now_ms = int(time.time() * 1000)
    low, high = schema.trace_range(trace_id, since_ms)
    pipe = client.pipeline(transaction=False)
    for key in schema.trace_hours(since_ms, now_ms + schema.HOUR_MS, keep_s):
        pipe.zrangebylex(key, low, high)
    found = [schema.parse_trace_member(m.decode() if isinstance(m, bytes) else m) for rows in pipe.execute() for m in rows]
    return [key for _ts, key in sorted(found)]


def _response_time_commands(
    rt_hists: dict[str, dict[str, dict[int, int]]],
    rt_errors: dict[tuple[str, str, str], int],
    minute_keys: set[str],
    hour_keys: set[str],
    part: Callable[[str], str] | None = None,
) -> list[tuple[Any, ...]]:
    """The batch's response-time tallies (minute -> hostname -> bucket -> count, and errors per
    minute, hostname and class) as increments of the histogram hashes, per minute and per hour,
    overall and (with a hostname) per hostname: one :data:`_HINCRBY_PAIRS` call per hash and minute
    of the batch, carrying every (field, count) pair for it. Each tally goes straight to its keys
    (a batch spanning two minutes increments an hour's field twice, which adds up the same).
    On a Cluster ``part`` names the slice's shard of each key."""
    tallies: dict[tuple[str, str], dict[Any, int]] = {}  # (minute, hostname or "" for overall) -> field -> count
    for minute, per_host in rt_hists.items():
        if not per_host:  # a minute of application logs only
            continue
        overall = tallies.setdefault((minute, ""), {})  # the hostnames' histograms summed
        for host, counts in per_host.items():
            for bucket, n in counts.items():
                overall[bucket] = overall.get(bucket, 0) + n
            if host:
                tallies[(minute, host)] = counts
    for (minute, host, error_class), n in rt_errors.items():
        for scope in ((minute, ""), (minute, host)) if host else ((minute, ""),):
            counts = tallies.setdefault(scope, {})
            counts[error_class] = counts.get(error_class, 0) + n
    commands: list[tuple[Any, ...]] = []
    for (minute, host), counts in tallies.items():
        minute_key, hour_key = _rt_keys(minute, minute[:-2], host)
        if part is not None:
            minute_key, hour_key = part(minute_key), part(hour_key)
        minute_keys.add(minute_key)
        hour_keys.add(hour_key)
        pairs = list(itertools.chain.from_iterable(counts.items()))
        commands.append(("EVALSHA", HINCRBY_PAIRS_SHA, 1, minute_key, *pairs))
        commands.append(("EVALSHA", HINCRBY_PAIRS_SHA, 1, hour_key, *pairs))
    return commands


def _chunks(members: list[Any], size: int = 1000) -> list[list[Any]]:
    """``members`` in parts a script can unpack (Lua's stack bounds one call's arguments)."""
    return [members[i : i + size] for i in range(0, len(members), size)] if len(members) > size else [members]


class PendingWrite:
    """A batch planned and sent whose replies are not read yet (:meth:`RedisStore.begin`)."""

    __slots__ = (
        "store", "send", "keys", "scripted", "long_streams", "held", "record_at", "held_base", "guarded", "call_failed",
        "shards",
    )

    def __init__(self, store: "RedisStore", send: transport.Sender, guarded: bool = True) -> None:
        self.store = store
        self.send = send
        self.keys: list[str] = []
        #: position in ``send.args`` of each record's HSET (its EXPIREAT follows); its stream entry
        #: is the guarded op with the record's own position, whose reply is at ``held_base`` + it
        self.record_at: list[int] = []
        self.held_base = -1
        #: the batch's stream entries and counters, sent as one guarded call (guard.py); None on a
        #: Cluster (a guarded call per slot is not built yet: plain commands, at-least-once on a resend)
        self.guarded: guard.Guarded | None = guard.Guarded() if guarded else None
        #: the guarded call itself was refused (it did not run: it may be sent again as it is)
        self.call_failed = False
        #: (position, index key) of each script call; ``None`` for a histogram's increments
        self.scripted: list[tuple[int, str | None]] = []
        self.long_streams: list[str] = []
        self.held: list[bytes] = []
        #: (first record, shard) of each slice that changed shard (cluster mode; else [(0, 0)])
        self.shards: list[tuple[int, int]] = [(0, 0)]

    def shard_of(self, n: int) -> int:
        """The shard record ``n`` of the batch was written to."""
        shard = 0
        for first, part in self.shards:
            if first > n:
                break
            shard = part
        return shard

    def release_streams(self) -> None:
        """Send the guarded call (stream entries and counters) ``begin(..., hold_streams=True)``
        kept back; it is the batch's last command, its replies expand from ``held_base`` on."""
        if self.held:
            self.held_base = len(self.send.args)
            self.send.args.extend(self.held)
            self.held = []
            self.send.flush()

    def complete(self) -> WriteResult:
        """Read every reply (sending what is still held first): what became of each record.
        Raises what :meth:`RedisStore.write` raises."""
        self.release_streams()
        return self.store._complete(self)


class RedisStore:
    """Write and read records under the schema; thread-safe, one pipeline per batch."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._refresh = _RefreshCache()
        #: the bounds of every client-controlled key part (otel_redis/bounds.py)
        self.bounds = KeyBounds(settings)
        self._hostnames = self.bounds.hostname
        self._routes: dict[tuple[str, int, str, str], tuple[str, str, str, str]] = {}
        self._scripts_loaded = False
        #: how batches are sent: EarlySend on a standalone server, the cluster sender on a Cluster
        self._transport = transport.for_client(client)
        #: parts per hot key (1 standalone; on a Cluster the persisted layout, read at first write)
        self.shards = 0 if self._transport.cluster else 1
        #: the order slices visit the parts in (cluster mode: one part of each master in turn)
        self._shard_order: list[int] = [0]
        #: commands sent by the write path (a script call counts once, whatever it runs inside)
        self.commands_sent = 0

    # ------------------------------------------------------------------ write path

    def write(self, entries: Iterable[LogEntry]) -> list[str]:
        """Store ``entries`` in one round trip; returns their record keys.

        ``entries`` may be an iterator: it is consumed once, as the commands are planned, so a
        caller can produce the entries while the first slices are already on their way.

        Connection errors are retried with backoff by the client's Retry (see connection.py) and
        re-raised once the retries are used up. Per-command errors (for example a foreign key of the
        wrong type) do not fail the batch: they are resent once, and :meth:`write_batch` says which
        records were not stored and which index updates failed.
        """
        return self.write_batch(entries).keys

    def write_batch(self, entries: Iterable[LogEntry]) -> WriteResult:
        """:meth:`write`, returning what became of each record (stored, dropped and why)."""
        if isinstance(entries, Sequence) and not entries:
            return WriteResult()
        return self.begin(entries).complete()

    def begin(self, entries: Iterable[LogEntry], *, hold_streams: bool = False) -> "PendingWrite":
        """Plan and send a batch without reading Redis's replies: :meth:`PendingWrite.complete` does
        (what :meth:`write` does at once). A writer that completes batch N after planning batch N+1
        keeps Redis busy with N's last commands while Python plans N+1.

        With ``hold_streams`` the batch's stream entries (``XADD``) are kept back until
        :meth:`PendingWrite.release_streams`: called after the previous batch completed, it keeps
        the streams in time order across batches (two batches in flight use two connections, whose
        commands Redis may interleave). On a standalone server what is kept back is the guarded call
        (stream entries and counters, guard.py); on a Cluster the plain ``XADD`` commands."""
        if not self._scripts_loaded:
            self._load_scripts()
        if not self.shards:
            shards = layout_shards(self.settings, self.client)
            self._shard_order = transport.shard_order(self.client, shards)
            self.shards = shards
        cluster = self._transport.cluster
        pending = PendingWrite(self, self._transport.new(), guarded=not cluster)
        held: list[Any] | None = [] if cluster and hold_streams else None
        try:
            pending.keys = self._plan(
                entries, pending.send, pending.scripted, pending.long_streams, pending.guarded, pending.record_at,
                pending.shards, held,
            )
        except BaseException:
            if self._transport.cluster:  # the cluster sender sends nothing before finish(): drop it all
                raise
            try:  # the slices already sent: read their replies, so the connection goes back clean
                pending.send.finish()
            except Exception:  # noqa: BLE001 - the planning error is the one to report
                pass
            raise
        if pending.guarded is None:  # a Cluster: the plain commands, the stream entries held back or not
            pending.held = held or []
        else:
            pending.held = [resp.pack(pending.guarded.call(self._marker_ttl()))]
            if not hold_streams:
                pending.release_streams()
        pending.send.flush()
        return pending

    def _marker_ttl(self) -> int:
        """A batch marker outlives every resend of its batch: the client's whole retry window
        (each attempt's timeouts and backoff), with margin."""
        s = self.settings
        window = (s.retry_attempts + 1) * (2 * s.socket_timeout_s + s.retry_backoff_cap_s)
        return int(window) + guard.MIN_MARKER_TTL_S

    def _complete(self, pending: "PendingWrite") -> WriteResult:
        results = pending.send.finish()
        self.commands_sent += len(results)
        result = WriteResult(keys=pending.keys)
        call_lost = False
        if pending.guarded is not None:
            base = pending.held_base
            call_reply = results[base]
            pending.call_failed = isinstance(call_reply, Exception)
            ops, result.replayed = guard.expand(call_reply, pending.guarded.count)
            results[base:] = ops  # each guarded op's reply at base + its index, like any command's
            call_lost = isinstance(call_reply, redis.exceptions.NoScriptError) or "NOSCRIPT" in str(call_reply)
        lost = self._after_scripts(results, pending.scripted)
        if lost or call_lost:
            self._load_scripts()  # Redis lost a script (restart, SCRIPT FLUSH): load it before resending
        failed = resp.error_positions(results)
        if failed:
            self._resend(pending, results, failed, result)
            self._account(pending, results, result)
            if result.failed:
                self._undo_dropped(pending, results, result)
        for stream in pending.long_streams:
            try:
                result.unread_trimmed += self._trim_stream_length(stream)
            except redis.RedisError:  # the records are written; trim again on the next batch
                self._refresh.forget([stream])
        return result

    def _resend(self, pending: "PendingWrite", results: list[Any], failed: list[int], result: WriteResult) -> None:
        """Send the failed commands once more, in one round trip. A command Redis answered with an
        error did not run, so sending it again repeats nothing, except a histogram script that
        stopped part-way (its first increments applied): that one is resent only after NOSCRIPT.
        Standalone, a failed op of the guarded call is sent again in a new guarded call (a new
        marker); the call itself refused, the same call (same marker). A Cluster has no guarded call:
        its failed commands are sent again as they are."""
        if pending.guarded is None:
            self._resend_plain(pending, results, failed, result)
            return
        base = pending.held_base
        plain = [p for p in failed if p < base]
        guarded = pending.guarded
        ops = [p - base for p in failed if p >= base]
        whole = pending.call_failed
        if not whole:  # ops that failed inside a call that ran: again under a new marker
            ops = [i for i in ops if i not in guarded.partial and not isinstance(results[base + i], guard.ReplayedError)]
        if not plain and not ops:
            return
        send = self._transport.new()
        send.args.extend(pending.send.args[p] for p in plain)
        if ops:
            if whole:  # the call itself was refused (it did not run): the same call, same marker
                send.args.append(pending.send.args[base])
            else:
                again = guard.Guarded()
                again.argv = [x for i in ops for x in guarded.op_argv(i)]
                again.count = len(ops)
                send.args.append(resp.pack(again.call(self._marker_ttl())))
        replies = self._send_again(send, result)
        if replies is None:
            return
        result.resent = len(plain) + len(ops)
        for position, reply in zip(plain, replies):
            results[position] = reply
        if ops:
            op_replies, _replayed = guard.expand(replies[len(plain)], guarded.count if whole else len(ops))
            if whole:
                results[base:] = op_replies
            else:
                for i, reply in zip(ops, op_replies):
                    results[base + i] = reply

    def _send_again(self, send: transport.Sender, result: WriteResult) -> list[Any] | None:
        """One resend round trip; None when it failed (the first errors stand, this one is quoted)."""
        try:
            replies = send.finish()
        except redis.RedisError as exc:
            result.note(exc)
            return None
        self.commands_sent += len(replies)
        return replies

    def _resend_plain(self, pending: "PendingWrite", results: list[Any], failed: list[int], result: WriteResult) -> None:
        """:meth:`_resend` of a batch without a guarded call (a Cluster): the failed commands as they
        are, but a histogram script that stopped part-way only after NOSCRIPT."""
        partial = {position for position, index in pending.scripted if index is None}
        again = [p for p in failed if p not in partial or isinstance(results[p], redis.exceptions.NoScriptError)]
        if not again:
            return
        send = self._transport.new()
        send.args.extend(pending.send.args[p] for p in again)
        replies = self._send_again(send, result)
        if replies is None:
            return
        result.resent = len(again)
        for position, reply in zip(again, replies):
            results[position] = reply

    def _undo_dropped(self, pending: "PendingWrite", results: list[Any], result: WriteResult) -> None:
        """A dropped record leaves nothing half-written behind: its hash (stored without its
        expiry, say) is deleted and a stream entry Redis did accept is removed (``XDEL`` of the id
        it answered), so followers never see a record that was counted as dropped. Neither command
        needs memory, so they succeed on a full Redis too."""
        pipe = self.client.pipeline(transaction=False)
        held_base = pending.held_base
        for n in result.failed:
            key = pending.keys[n]
            at = pending.record_at[n]
            reply = results[held_base + n if held_base >= 0 else at + 2]  # held_base < 0: a Cluster's XADD follows
            pipe.delete(key)
            if not isinstance(reply, Exception) and reply != b"replayed":  # a replay's id is unknown
                stream = schema.STREAM_REQUESTS if key.startswith("req:") else schema.STREAM_LOGS
                pipe.xdel(schema.shard_key(stream, pending.shard_of(n), self.shards), reply)
        try:
            pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:  # the records stay counted as dropped; say why in the warning
            result.note(exc)

    @staticmethod
    def _account(pending: "PendingWrite", results: list[Any], result: WriteResult) -> None:
        """Map each error reply back to its record (hash, expiry, stream entry) or count it as an
        index/stats error of the batch."""
        own: set[int] = set()
        held_base = pending.held_base
        for n, at in enumerate(pending.record_at):
            positions = (at, at + 1, held_base + n if held_base >= 0 else at + 2)
            own.update(positions)
            for position in positions:
                reply = results[position]
                if isinstance(reply, Exception):
                    result.failed[n] = result.note(reply)
                    break
        for position in resp.error_positions(results):
            if position not in own:
                result.note(results[position])
                result.index_errors += 1

    def _trim_stream_length(self, stream: str) -> int:
        """Once a minute per stream (a second round trip): trim to OTEL_REDIS_STREAM_MAXLEN, keeping
        every entry a consumer group has not read and acknowledged, up to the unread bound; returns
        how many unread entries that bound trimmed. On a Cluster ``stream`` is one of S parts and each
        bound is split evenly over them, so the whole stream keeps the configured bounds."""
        settings = self.settings
        parts = self.shards or 1
        maxlen, unread_maxlen = -(-settings.stream_maxlen // parts), -(-settings.stream_unread_maxlen // parts)
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(stream)
        pipe.xinfo_groups(stream)
        length, groups = pipe.execute(raise_on_error=False)
        if isinstance(length, Exception) or length <= maxlen:
            return 0
        if isinstance(groups, Exception) or not groups:
            self.client.xtrim(stream, maxlen=maxlen, approximate=True)
            return 0
        safe: tuple[int, int] | None = None
        for group in groups:
            pending = self.client.xpending(stream, group["name"])
            oldest = pending["min"] if pending.get("pending") else group["last-delivered-id"]
            point = _stream_id(oldest)
            safe = point if safe is None or point < safe else safe
        if safe is not None and safe > (0, 0):
            self.client.xtrim(stream, minid=f"{safe[0]}-{safe[1]}", approximate=False)
        if self.client.xlen(stream) > unread_maxlen:
            return int(self.client.xtrim(stream, maxlen=unread_maxlen, approximate=False) or 0)
        return 0

    def _load_scripts(self) -> None:
        if self._transport.cluster:  # SCRIPT LOAD goes to every master (not pipelined: many targets)
            self.client.script_load(_ADD_TRIM_EXPIRE)
            self.client.script_load(_HINCRBY_PAIRS)
            for script in aggregates.SCRIPTS:
                self.client.script_load(script)
            self._scripts_loaded = True
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.script_load(_ADD_TRIM_EXPIRE)
        pipe.script_load(_HINCRBY_PAIRS)
        pipe.script_load(guard.SCRIPT)
        for script in aggregates.SCRIPTS:
            pipe.script_load(script)
        pipe.execute()
        self._scripts_loaded = True

    def _after_scripts(self, results: Sequence[Any], scripted: Sequence[tuple[int, str | None]]) -> list[int]:
        """Indexes whose trim hit TRIM_STEP (or failed) are trimmed again next batch; returns the
        positions of the scripts (index trims, and histogram increments: ``None``) Redis did not
        have (restart, SCRIPT FLUSH), to send again."""
        again = []
        lost = []
        for position, index in scripted:
            result = results[position]
            if isinstance(result, Exception):
                if isinstance(result, redis.exceptions.NoScriptError) or "NOSCRIPT" in str(result):
                    lost.append(position)
                if index is not None:
                    again.append(index)
            elif index is not None and result == TRIM_STEP:
                again.append(index)
        if again:
            self._refresh.forget(again)
        return lost

    def forget_refreshes(self) -> None:
        """After the keys were deleted (DELETE /logs): set TTLs again on the next write of each key."""
        self._refresh.clear()

    def _plan(
        self,
        entries: Iterable[LogEntry],
        pipe: Any,
        scripted: list[tuple[int, str | None]] | None = None,
        long_streams: list[str] | None = None,
        guarded: guard.Guarded | None = None,
        record_at: list[int] | None = None,
        shards_at: list[tuple[int, int]] | None = None,
        held: list[Any] | None = None,
    ) -> list[str]:
        """Append the batch's commands to ``pipe.args`` (packed, :func:`resp.pack`); the record keys,
        in order.
        Standalone, the stream entries and counters go to ``guarded`` (sent as one call applied
        once, see guard.py); without it they are appended as that call at the end.
        On a Cluster (no guarded call yet: its ops span slots) they are plain commands, and with
        ``held`` the stream entries (``XADD``) go there instead (see :meth:`begin`); each slice
        writes the hot keys of one shard (``shards_at`` gets the first record and shard of each slice).

        The hot loop does per record only what differs per record; everything derived from values
        that repeat (index keys, route and status keys, time buckets, hostname keys) comes from
        bounded caches, and counters are aggregated per batch before they become HINCRBYs.
        """
        settings = self.settings
        retention = settings.retention
        now = time.time()
        now_s = int(now)
        now_ms = int(now * 1000)
        # commands are packed as they are planned: a batch holds bytes, not argument tuples (which
        # the garbage collector would track until the batch ends); the per-record ones inline
        args: list[bytes] = pipe.args
        append = args.append
        pack = self._transport.pack

        def add(command: tuple[Any, ...]) -> None:
            append(pack(command))

        own_guard = guarded is None and not self._transport.cluster
        if own_guard:
            guarded = guard.Guarded()
        if guarded is not None:  # standalone: what a resend must not repeat goes in the guarded call
            stream_entry = guarded.xadd
            gadd = guarded.command
            hincrby = guarded.hincrby
            chunks = _chunks
        else:  # a Cluster: plain commands, as they are
            append_stream = held.append if held is not None else append

            def stream_entry(stream: str, key: str) -> None:
                append_stream(pack(("XADD", stream, "*", "k", key)))

            gadd = add

            def hincrby(key: str, field: str, amount: int) -> None:
                append(pack(("HINCRBY", key, field, amount)))

            def chunks(members: list[Any]) -> list[list[Any]]:
                return [members]
        # the per-record commands leave in slices while the loop goes on (resp.EarlySend), so Redis
        # executes them while this thread plans; the grouped commands follow at the end
        flush = getattr(pipe, "flush", None)
        next_flush = EARLY_SEND_RECORDS if flush is not None else -1  # -1: never (a plan without sending)
        done = 0
        zadds: dict[str, list[Any]] = {}
        zget = zadds.get
        # per-request indexes keyed by (nearly) per-record values: IP, hostname, user, trace...
        hot: dict[str, list[Any]] = {}
        hget = hot.get
        cutoffs: dict[int, str] = {}
        refresh = self._refresh
        # the slice's shard on a Cluster: hot key -> its part (None on a standalone server)
        part: Callable[[str], str] | None = None

        def emit_indexes(groups: dict[str, list[Any]]) -> None:
            names = {index: part(index) for index in groups} if part is not None else None
            due = set(refresh.due_many(groups if names is None else names.values(), now))
            for index, members in groups.items():
                name = index if names is None else names[index]
                if name not in due:
                    append(pack(("ZADD", name, *members)))
                    continue
                keep_s = schema.index_retention(index, retention)
                cutoff = cutoffs.get(keep_s)
                if cutoff is None:
                    cutoff = cutoffs[keep_s] = f"({now_ms - keep_s * 1000}"
                if scripted is not None:
                    scripted.append((len(args), name))
                append(pack(("EVALSHA", ADD_TRIM_EXPIRE_SHA, 1, name, cutoff, TRIM_STEP, keep_s + REFRESH_INTERVAL_S, *members)))
        hincr: dict[tuple[str, str], int] = {}
        all_requests: list[Any] = []
        slow: list[Any] = []
        by_route: dict[tuple[str, int, tuple[str, str, str, str]], list[Any]] = {}
        by_host: dict[tuple[str, str], tuple[list[Any], set[str]]] = {}
        # response times: minute -> hostname -> histogram bucket -> count, and the errors per class
        rt_hists: dict[str, dict[str, dict[int, int]]] = {}
        minute_hists: dict[str, dict[int, int]] = {}
        rt_errors: dict[tuple[str, str, str], int] = {}
        # per shard: its response-time tallies (one shard, 0, on a standalone server)
        rt_parts: dict[int, tuple[dict[str, dict[str, dict[int, int]]], dict[tuple[str, str, str], int]]] = {0: (rt_hists, rt_errors)}
        pfadds: dict[str, set[str]] = {}
        hosts: dict[str, set[str]] = {}
        streams: set[str] = set()
        flows: dict[str, list[str]] = {}
        interned: dict[str, bytes] = {}
        keys: list[str] = []
        keep = keys.append
        mark = record_at.append if record_at is not None else (lambda _position: None)
        uid_prefix, uid_counter = _uid.current()
        request_ttl = schema.record_retention(False, False, retention)
        error_ttl = schema.record_retention(True, False, retention)
        slow_ms = settings.slow_request_ms
        bounded_host = self._hostnames
        bounded_user = self.bounds.user
        bounded_fqdn = self.bounds.client_hostname
        route_of = self._route_of
        routes_get = self._routes.get
        shared_agent = self.bounds.user_agent.admits
        encode = schema.encode_fields
        record_key = schema.request_record_key
        stream_requests = schema.STREAM_REQUESTS
        stream_logs = schema.STREAM_LOGS
        shards = self.shards or 1
        shard_order = self._shard_order
        last_minute = -1
        minute_text = hour = ""

        minute_keys: set[str] = set()
        # the hourly trace indexes: members per key (emptied by each slice) and the end of each hour
        traces: dict[str, list[str]] = {}
        trace_ends: dict[str, int] = {}
        traced: list[str] = []
        trace_member = schema.trace_member

        def close_slice() -> None:
            """Every index member planned so far goes out with this slice (so Redis adds them while
            the next slice is planned, and little is left for the end); counters stay batch-wide."""
            if all_requests:
                streams.add(stream_requests)
                self._group_requests(all_requests, slow, by_route, by_host, zadds, hincr, pfadds, hosts, part)
                all_requests.clear()
                slow.clear()
                by_route.clear()
                by_host.clear()
            emit_indexes(hot)
            hot.clear()
            emit_indexes(zadds)
            zadds.clear()
            for index, members in traces.items():
                if members:
                    add(("ZADD", index, *members))
                    members.clear()  # the list stays: the loop appends to it while in that hour

        def expire_trace_indexes() -> None:
            """An hour's trace index expires once its newest possible member is past retention."""
            keep_s = retention.requests + REFRESH_INTERVAL_S
            for index in refresh.due_many(trace_ends, now):
                at = trace_ends[index] // 1000 + keep_s
                add(("EXPIREAT", index, at if at > now_s else now_s + 1))

        def next_shard(first: int) -> None:
            """Cluster mode: the slice starting at record ``first`` writes to the next shard."""
            nonlocal part, stream_requests, stream_logs, rt_hists, rt_errors, last_minute
            n = shard_order[next(_next_shard) % shards]
            part = functools.partial(_shard_part, n=n, shards=shards)
            stream_requests = schema.shard_key(schema.STREAM_REQUESTS, n, shards)
            stream_logs = schema.shard_key(schema.STREAM_LOGS, n, shards)
            tallies = rt_parts.get(n)
            if tallies is None:
                tallies = rt_parts[n] = ({}, {})
            rt_hists, rt_errors = tallies
            last_minute = -1  # the minute's histogram is looked up again, in this shard's tallies
            if shards_at is not None:
                if first == 0:
                    shards_at[:] = [(0, n)]
                else:
                    shards_at.append((first, n))

        if shards > 1:
            rt_parts.clear()
            next_shard(0)

        seen: list[LogEntry] = []  # the batch, for the console aggregates (aggregates.py)
        remember = seen.append if settings.console_aggregates else None
        for entry in entries:
            if remember is not None:
                remember(entry)
            done += 1
            if done == next_flush:
                close_slice()
                flush()
                next_flush += EARLY_SEND_RECORDS
                if shards > 1:
                    next_shard(done - 1)
            ts_ms = entry.timestamp_ns // 1_000_000
            score = str(ts_ms)  # formatted once, not by the packer for each index it goes to
            minute = ts_ms // 60_000
            if minute != last_minute:
                last_minute = minute
                minute_text = schema.minute_bucket(ts_ms)
                hour = minute_text[:-2]
                minute_hists = rt_hists.get(minute_text)
                if minute_hists is None:
                    minute_hists = rt_hists[minute_text] = {}
                trace_index = schema.idx_trace(hour)
                traced = traces.get(trace_index)
                if traced is None:
                    traced = traces[trace_index] = []
                    trace_ends[trace_index] = ts_ms - ts_ms % schema.HOUR_MS + schema.HOUR_MS
            req = entry.request
            if req is not None:
                ip = req.client_ip
                key = record_key(ts_ms, f"{uid_prefix}{next(uid_counter):x}", ip)
                pair = (score, key)
                all_requests += pair
                status = req.status_code
                route = req.route
                # the path matters only without a route template (and not for unmatched 404/405);
                # the status, method and path indexes and counters are filled per group at the end
                memo_key = (req.method, status, route, "" if route or status == 404 or status == 405 else req.path)
                group_key = (hour, status, routes_get(memo_key) or route_of(memo_key))
                members = by_route.get(group_key)
                if members is None:
                    by_route[group_key] = [score, key]
                else:
                    members += pair
                # the indexes keyed by (nearly) per-record values are added to inline: this loop runs
                # once per record, and a helper call or a loop over them costs 10 % of the plan
                if ip:
                    index = _ip_index(ip)
                    if index is not None:
                        members = hget(index)
                        if members is None:
                            hot[index] = [score, key]
                        else:
                            members += pair
                if req.client_hostname:
                    index = schema.idx_req_fqdn(bounded_fqdn(req.client_hostname))
                    members = hget(index)
                    if members is None:
                        hot[index] = [score, key]
                    else:
                        members += pair
                host = bounded_host(req.proxy_hostname) if req.proxy_hostname else ""
                if host:
                    host_group = by_host.get((host, hour))
                    if host_group is None:
                        by_host[(host, hour)] = ([score, key], {ip} if ip else set())
                    else:
                        host_group[0].extend(pair)
                        if ip:
                            host_group[1].add(ip)
                if req.user_id:
                    index = schema.idx_req_user(bounded_user(req.user_id))
                    members = hget(index)
                    if members is None:
                        hot[index] = [score, key]
                    else:
                        members += pair
                if req.oauth_client_id or req.session_id:
                    for index in self._request_extra_indexes(req):
                        hot.setdefault(index, []).extend(pair)
                rt = round(req.response_time_ms, 3)  # the stored value's precision: bucket what is stored
                if rt > slow_ms:
                    slow += pair
                if entry.trace_id:
                    traced += ("0", trace_member(entry.trace_id, ts_ms, key))
                hist = minute_hists.get(host)
                if hist is None:
                    hist = minute_hists[host] = {}
                bucket = bucket_of(rt)
                hist[bucket] = hist.get(bucket, 0) + 1
                if status >= 400:
                    k3 = (minute_text, host, error_field(status))
                    rt_errors[k3] = rt_errors.get(k3, 0) + 1
                ttl = error_ttl if status >= 400 else request_ttl
                keep(key)
                mark(len(args))
                append(pack(("HSET", key, *encode(entry, interned, shared_agent))))
                expire_at = ts_ms // 1000 + ttl
                append(pack(("EXPIREAT", key, expire_at if expire_at > now_s else now_s + 1)))
                stream_entry(stream_requests, key)
                continue
            else:
                key = schema.log_record_key(ts_ms, f"{uid_prefix}{next(uid_counter):x}")
                stream = stream_logs
                indexes, is_oauth = self._log_indexes(entry)
                flow = entry.attributes.get(OAUTH_FLOW_STEP)
                if flow is not None:
                    is_oauth = True
                    session = entry.index_value("session")
                    if session:
                        flows.setdefault(schema.oauth_flow(self.bounds.session(session)), []).append(key)
                skey = schema.stats_logs(hour) if part is None else part(schema.stats_logs(hour))
                for field in ("total", f"level_{entry.level}"):
                    hincr[(skey, field)] = hincr.get((skey, field), 0) + 1
                if entry.event:
                    ekey = schema.stats_events(hour)
                    k4 = (ekey if part is None else part(ekey), self.bounds.event(entry.event))
                    hincr[k4] = hincr.get(k4, 0) + 1
                ttl = schema.record_retention(entry.is_error, is_oauth, retention)
            if entry.trace_id:
                traced += ("0", trace_member(entry.trace_id, ts_ms, key))
            keep(key)
            mark(len(args))
            append(pack(("HSET", key, *encode(entry, interned, shared_agent))))
            expire_at = ts_ms // 1000 + ttl
            append(pack(("EXPIREAT", key, expire_at if expire_at > now_s else now_s + 1)))
            stream_entry(stream, key)
            streams.add(stream)
            for index in indexes:
                members = zget(index)
                if members is None:
                    zadds[index] = [score, key]
                else:
                    members += (score, key)

        close_slice()
        expire_trace_indexes()
        # shared long values: written (and their TTL renewed) by every batch that references them,
        # so a value never expires before a record pointing at it
        value_ttl = max(retention.requests, retention.errors, retention.oauth) + REFRESH_INTERVAL_S
        for vkey, raw in interned.items():
            add(("SET", vkey, raw, "EX", value_ttl))
        # the rest is not idempotent (or must follow what is not): guarded, applied once
        for command in aggregates.commands(seen, retention.stats + REFRESH_INTERVAL_S):
            if guarded is None and scripted is not None:  # a Cluster's capped-hash EVALSHA: resent after NOSCRIPT
                scripted.append((len(args), None))
            gadd(command)
        stats_keys: set[str] = {skey for skey, _field in hincr}
        for n, (hists, errors) in rt_parts.items():
            if not hists:
                continue
            shard_part = None if shards == 1 else functools.partial(_shard_part, n=n, shards=shards)
            for command in _response_time_commands(hists, errors, minute_keys, stats_keys, shard_part):
                if guarded is not None:
                    gadd(command)
                    continue
                if scripted is not None:
                    scripted.append((len(args), None))
                append(pack(command))
        for (skey, field), amount in hincr.items():
            hincrby(skey, field, amount)
        for ukey, members in pfadds.items():
            for chunk in chunks(list(members)):
                gadd(("PFADD", ukey, *chunk))
            stats_keys.add(ukey)
        for bucket, names in hosts.items():
            hkey = schema.stats_hosts(bucket)
            for chunk in chunks(list(names)):
                gadd(("SADD", hkey, *chunk))
            stats_keys.add(hkey)
        stats_ttl = retention.stats + REFRESH_INTERVAL_S
        for skey in refresh.due_many(stats_keys, now):
            gadd(("EXPIRE", skey, stats_ttl))
        for mkey in refresh.due_many(minute_keys, now):
            gadd(("EXPIRE", mkey, schema.RT_MINUTE_TTL_S))
        flow_ttl = settings.oauth_flow_ttl_s
        for fkey, members in flows.items():
            for chunk in chunks(members):
                gadd(("RPUSH", fkey, *chunk))
            gadd(("LTRIM", fkey, -OAUTH_FLOW_MAX_STEPS, -1))
            gadd(("EXPIRE", fkey, flow_ttl))  # per session: the flow lives flow_ttl after its last step
        for stream in refresh.due_many(streams, now):
            gadd(("XTRIM", stream, "MINID", "~", f"{now_ms - retention.requests * 1000}"))
            gadd(("EXPIRE", stream, retention.requests + REFRESH_INTERVAL_S))
            if long_streams is not None:
                long_streams.append(stream)
        if own_guard and guarded is not None:
            add(guarded.call(guard.MIN_MARKER_TTL_S))
        return keys

    def _group_requests(
        self,
        all_requests: list[Any],
        slow: list[Any],
        by_route: dict[tuple[str, int, tuple[str, str, str, str]], list[Any]],
        by_host: dict[tuple[str, str], tuple[list[Any], set[str]]],
        zadds: dict[str, list[Any]],
        hincr: dict[tuple[str, str], int],
        pfadds: dict[str, set[str]],
        hosts: dict[str, set[str]],
        part: Callable[[str], str] | None = None,
    ) -> None:
        """The batch's request members and tallies, grouped in the loop, turned into index members
        (``idx:req:all``, status, method, path, errors, slow, host) and hash increments:
        ``stats:requests`` (``total``, ``status_{code}``), ``stats:errors`` (by code), ``stats:paths``,
        and the unique-visitor HyperLogLogs and hostname sets. On a Cluster ``part`` names the
        slice's shard of the hot stats hashes (the hot indexes are named so when emitted)."""

        def members_of(index: str) -> list[Any]:
            members = zadds.get(index)
            if members is None:
                members = zadds[index] = []
            return members

        def bump(skey: str, field: str, amount: int) -> None:
            if part is not None:
                skey = part(skey)
            k = (skey, field)
            hincr[k] = hincr.get(k, 0) + amount

        members_of(schema.IDX_REQ_ALL).extend(all_requests)
        if slow:
            members_of(schema.IDX_REQ_SLOW).extend(slow)
        for (hour, status, (status_index, method_index, path_index, path_field)), members in by_route.items():
            members_of(status_index).extend(members)
            members_of(method_index).extend(members)
            members_of(path_index).extend(members)
            n = len(members) // 2
            skey = schema.stats_requests(hour)
            bump(skey, "total", n)
            code = bounded_status(status)
            bump(skey, f"status_{code}", n)
            if status >= 400:
                members_of(schema.IDX_REQ_ERRORS).extend(members)
                bump(schema.stats_errors(hour), str(code), n)
            bump(schema.stats_paths(hour), path_field, n)
        for (host, hour), (members, ips) in by_host.items():
            members_of(schema.idx_req_host(host)).extend(members)
            if ips:
                pfadds.setdefault(schema.stats_unique_ips(host, hour), set()).update(ips)
            hosts.setdefault(hour, set()).add(host)

    def _request_extra_indexes(self, req: Any) -> list[str]:
        """The rarer request indexes: OAuth client and session."""
        out = []
        if req.oauth_client_id:
            out.append(schema.idx_req_client(self.bounds.client(req.oauth_client_id)))
        if req.session_id:
            out.append(schema.idx_req_session(self.bounds.session(req.session_id)))
        return out

    def _route_of(self, memo_key: tuple[str, int, str, str]) -> tuple[str, str, str, str]:
        """:func:`_route_keys` of a request's (method, status, route, path), its path bounded
        (``self.bounds.path``); remembered in ``self._routes`` (a bounded path's answer never changes
        once given), which is emptied when full."""
        method, status, route, path = memo_key
        if len(self._routes) >= _ROUTE_MEMO_MAX:
            self._routes.clear()
        hit = self._routes[memo_key] = _route_keys(method, status, self.bounds.path(route, path, status))
        return hit

    def _log_indexes(self, entry: LogEntry) -> tuple[list[str], bool]:
        """The indexes of an application log (every sender-chosen part bounded, see bounds.py) and
        whether it is OAuth activity."""
        bounds = self.bounds
        out = [schema.IDX_LOG_ALL, schema.idx_log_level(entry.level)]
        if entry.component:
            out.append(schema.idx_log_component(bounds.component(entry.component)))
        if entry.event:
            out.append(schema.idx_log_event(bounds.event(entry.event)))
        if is_error_severity(entry.severity_number):
            out.append(schema.IDX_LOG_ERRORS)
        for name in ("ip", "client", "user", "session", "host"):
            value = entry.index_value(name)
            if value:
                if name == "ip":  # an address is indexed (canonical, like a request's), anything else is _OTHER
                    value = valid_ip(value) or OTHER
                else:
                    value = bounds.log_fields[name](value)
                out.append(schema.idx_log_field(name, value))
        oauth_event = entry.attributes.get("oauth.event_type")
        is_oauth = bool(oauth_event)
        if is_oauth:
            out.append(schema.idx_oauth_event(bounds.event(str(oauth_event))))
            client = entry.index_value("client")
            user = entry.index_value("user")
            if client:
                out.append(schema.idx_oauth_client(bounds.client(client)))
            if user:
                out.append(schema.idx_oauth_user(bounds.user(user)))
            ip = entry.index_value("ip")
            if ip:
                out.append(schema.idx_oauth_ip(valid_ip(ip) or OTHER))
        return out, is_oauth

    @staticmethod
    def _method(method: str) -> str:
        return bounded_method(method)

    def patch_hostname(self, hostname: str, items: Sequence[tuple[str, int]]) -> int:
        """A late reverse-DNS answer: set ``client_hostname`` on the stored request records
        ``items`` (record key, record time ms) and add them to ``idx:req:fqdn:{hostname}``.
        Records that expired meanwhile are skipped. Returns how many were patched."""
        if not items:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for key, _ts in items:  # EVAL by name: redis-py's cluster pipeline refuses its script objects
            pipe.execute_command("EVAL", _PATCH_HOSTNAME, 1, key, hostname)
        results = pipe.execute()
        live = {key: ts for (key, ts), ok in zip(items, results) if ok == 1}
        if live:
            index = schema.idx_req_fqdn(self.bounds.client_hostname(hostname))
            now = time.time()
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(index, live)
            if self._refresh.due(index, now):
                keep = schema.index_retention(index, self.settings.retention)
                cutoff = f"({int(now * 1000) - keep * 1000}"
                pipe.execute_command("EVAL", _ADD_TRIM_EXPIRE, 1, index, cutoff, TRIM_STEP, keep + REFRESH_INTERVAL_S)
            pipe.execute()
        return len(live)

    def publish_counters(
        self, registry: str, member: str, key: str, counters: dict[str, int | float | str], ttl_s: int
    ) -> None:
        """Replace the counters hash ``key`` (a process's own figures, for other processes to read) and
        list ``member`` as live in the ``registry`` zset (members silent for ``ttl_s`` are dropped)."""
        now_ms = int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, mapping=counters)
        pipe.expire(key, ttl_s)
        pipe.zadd(registry, {member: now_ms})
        pipe.zremrangebyscore(registry, "-inf", f"({now_ms - ttl_s * 1000}")
        pipe.expire(registry, ttl_s)
        pipe.execute()

    # ------------------------------------------------------------------ read path

    def response_time_histogram(self, start_ms: int, end_ms: int, hostname: str | None = None) -> dict[int, int]:
        """Merged response-time histogram of [start_ms, end_ms] (see :func:`schema.rt_window_keys`)."""
        sources = window_stats.histogram_sources(start_ms, end_ms, hostname, int(time.time() * 1000))
        merged = window_stats.run_sync(self.client, window_stats.histograms({None: sources}))
        return merged[None].counts

    def response_time_percentiles(
        self, start_ms: int, end_ms: int, hostname: str | None = None, qs: Iterable[float] = (50, 95, 99)
    ) -> dict[str, float | None]:
        """``{"count": n, "p50": ms, "p95": ms, "p99": ms}`` over a window (None when empty)."""
        return histogram.summary(self.response_time_histogram(start_ms, end_ms, hostname), qs)

    def fetch(self, keys: Iterable[str]) -> list[tuple[str, LogEntry]]:
        """The records behind ``keys`` in one round trip, in the given order; expired ones skipped."""
        keys = list(keys)
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        rows = pipe.execute()
        missing = schema.missing_values(rows)
        if missing:
            for digest, raw in zip(missing, self._get_each(missing)):
                if raw is not None:
                    schema.remember_value(digest, raw)
        out = []
        for key, data in zip(keys, rows):
            if data:
                out.append((key, schema.decode_entry(data)))
        return out

    def _get_each(self, digests: list[str]) -> list[bytes | None]:
        """GET each shared value (one pipeline; no multi-key command, so Cluster-safe)."""
        pipe = self.client.pipeline(transaction=False)
        for digest in digests:
            pipe.get(schema.value_key(digest))
        return pipe.execute()

    def recent(self, index: str, limit: int = 100, since_ms: int | None = None) -> list[tuple[str, LogEntry]]:
        """The newest ``limit`` records of one index, oldest first."""
        low = "-inf" if since_ms is None else since_ms
        keys = self.client.zrevrangebyscore(index, "+inf", low, start=0, num=limit)
        keys = [k.decode() if isinstance(k, bytes) else k for k in keys]
        return list(reversed(self.fetch(keys)))

    def stream_entries(self, stream: str, last_id: str = "0", count: int = 1000) -> list[tuple[str, str]]:
        """(stream id, record key) pairs after ``last_id``."""
        rows = self.client.xrange(stream, min=f"({last_id}" if last_id != "0" else "-", count=count)
        out = []
        for sid, fields in rows:
            key = fields.get(b"k") or fields.get("k")
            out.append((sid.decode() if isinstance(sid, bytes) else sid, key.decode() if isinstance(key, bytes) else key))
        return out
