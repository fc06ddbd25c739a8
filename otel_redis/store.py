"""The one write path (a batch of LogEntry -> one pipelined round trip) and the basic read path.

The write path is a pure planner (plan.py: entries in, commands and guarded ops out, no Redis) and
a sender (transport.py: one implementation for a standalone server, one for a Cluster); this module
runs them and maps each reply back to its record (:class:`~otel_redis.write_result.WriteResult`).

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
  it once; everything sent before it (hashes, expiries, index members) comes out the same. On a
  Redis Cluster that call is split by hash slot, one call per slot under a marker in that slot
  (guard.split), so a share resent to a master (a timeout, a failover, redis-py's pipeline retry)
  is applied once there too;
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
import time
from typing import Any, Iterable, Sequence

import redis
from redis.exceptions import ClusterError, TryAgainError

from . import aggregates, guard, histogram, resp, schema, scripts, transport, window_stats
from .connection import layout_shards
from .config import Retention, Settings
from .plan import (  # noqa: F401 (re-exported: the write path's constants)
    EARLY_SEND_RECORDS, OAUTH_FLOW_MAX_STEPS, OAUTH_FLOW_STEP, REFRESH_INTERVAL_S, TRIM_STEP, Plan, Planner, RefreshCache,
)
from .record import LogEntry
from .values import SharedValues
from .write_result import WriteResult

from .bounds import KNOWN_METHODS, OTHER, KeyBounds, bounded_method, bounded_status  # noqa: F401 (re-exported)


@functools.lru_cache(maxsize=4096)
def _stream_id(value: Any) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else str(value or "0-0")
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)



def _migrating(reply: Any) -> bool:
    """A guarded call's reply saying its slot is migrating with its keys on two nodes: TRYAGAIN, or
    redis-py's "TTL exhausted" after following ASK/TRYAGAIN (the call ran nowhere, either way)."""
    return isinstance(reply, TryAgainError) or type(reply) is ClusterError


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


class PendingWrite:
    """A batch planned and sent whose replies are not read yet (:meth:`RedisStore.begin`)."""

    __slots__ = (
        "store", "send", "keys", "scripted", "long_streams", "held", "record_at", "held_base", "guarded", "calls",
        "call_replies", "shards", "plan",
    )

    def __init__(self, store: "RedisStore", send: transport.Sender) -> None:
        self.store = store
        self.send = send
        self.keys: list[str] = []
        #: position in ``send.args`` of each record's HSET (its EXPIREAT follows); its stream entry
        #: is the guarded op with the record's own position, whose reply is at ``held_base`` + it
        self.record_at: list[int] = []
        self.held_base = -1
        #: the batch's stream entries and counters (guard.py), applied once: standalone one call, on
        #: a Cluster one call per hash slot (``calls``, sent from ``held_base`` on)
        self.guarded = guard.Guarded()
        self.calls: list[guard.SlotCall] = []
        #: the reply of each of ``calls`` (an exception: that call did not run, or its reply was lost)
        self.call_replies: list[Any] = []
        #: (position, index key) of each script call; ``None`` for a histogram's increments
        self.scripted: list[tuple[int, str | None]] = []
        self.long_streams: list[str] = []
        self.held: list[bytes] = []
        #: (first record, shard) of each slice that changed shard (cluster mode; else [(0, 0)])
        self.shards: list[tuple[int, int]] = [(0, 0)]
        #: the planner's output; its lists are the ones above
        self.plan = Plan(args=send.args, keys=self.keys, record_at=self.record_at, scripted=self.scripted,
                         long_streams=self.long_streams, shards=self.shards, guarded=self.guarded)

    def shard_of(self, n: int) -> int:
        """The shard record ``n`` of the batch was written to."""
        shard = 0
        for first, part in self.shards:
            if first > n:
                break
            shard = part
        return shard

    def release_streams(self) -> None:
        """Send the guarded calls (stream entries and counters) ``begin(..., hold_streams=True)``
        kept back; they are the batch's last commands, their replies expand from ``held_base`` on."""
        if self.held_base < 0:
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
        self._refresh = RefreshCache()
        self.values = SharedValues()  # the shared long values this store's reads have fetched
        #: the bounds of every client-controlled key part (otel_redis/bounds.py)
        self.bounds = KeyBounds(settings)
        self._scripts_loaded = False
        #: redis-py Script objects of the calls outside the batch (see :meth:`_script`)
        self._scripts: dict[str, Any] = {}
        #: how batches are sent: EarlySend on a standalone server, the cluster sender on a Cluster
        self._transport = transport.for_client(client)
        #: the hash slot of a key, to split the guarded part per slot (None: one call, standalone)
        self._slot_of = schema.key_slot if self._transport.cluster else None
        #: what each batch writes (plan.py: no Redis); the store sends it and reads the replies
        self.planner = Planner(settings, self._transport.pack, self._transport.cluster, self._refresh, self.bounds)
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
        commands Redis may interleave). What is kept back is the guarded part (stream entries and
        counters, guard.py): one call, or on a Cluster one call per hash slot."""
        if not self._scripts_loaded:
            self._load_scripts()
        if not self.shards:
            shards = layout_shards(self.settings, self.client)
            self._shard_order = self.planner.shard_order = transport.shard_order(self.client, shards)
            self.shards = self.planner.shards = shards
        pending = PendingWrite(self, self._transport.new())
        try:
            self.planner.plan(entries, pending.plan, flush=pending.send.flush)
        except BaseException:
            if self._transport.cluster:  # the cluster sender sends nothing before finish(): drop it all
                raise
            try:  # the slices already sent: read their replies, so the connection goes back clean
                pending.send.finish()
            except Exception:  # noqa: BLE001 - the planning error is the one to report
                pass
            raise
        pending.calls = guard.split(pending.guarded, self._marker_ttl(), self._slot_of)
        pack = self._transport.pack
        pending.held = [pack(call.command) for call in pending.calls]
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
        base = pending.held_base
        pending.call_replies = calls = results[base:]
        ops, result.replayed = guard.expand_calls(pending.calls, calls, pending.guarded.count)
        results[base:] = ops  # each guarded op's reply at base + its index, like any command's
        call_lost = any(isinstance(r, redis.exceptions.NoScriptError) or "NOSCRIPT" in str(r) for r in calls
                        if isinstance(r, Exception))
        if pending.plan.capped:
            self._learn_full_hashes(results, pending)
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
        stopped part-way (its first increments applied): that one is not sent again. A guarded call
        that failed whole (refused, or its reply lost: it may have run) is sent again as it is, same
        marker, so a copy that ran is found and not applied twice; the ops that failed inside a
        call that ran go again in new calls (new markers, one per slot on a Cluster)."""
        base = pending.held_base
        plain = [p for p in failed if p < base]
        failed_ops = {p - base for p in failed if p >= base}
        whole: list[guard.SlotCall] = []
        migrating: list[guard.SlotCall] = []
        again: list[int] = []
        partial = pending.guarded.partial
        for call, reply in zip(pending.calls, pending.call_replies):
            if _migrating(reply):  # its slot migrates, its keys on two nodes: plain commands
                migrating.append(call)
            elif isinstance(reply, Exception):
                whole.append(call)
            else:
                again += [i for i in call.ops if i in failed_ops and i not in partial
                          and not isinstance(results[base + i], guard.ReplayedError)]
        calls = whole + (guard.split(pending.guarded, self._marker_ttl(), self._slot_of, only=sorted(again)) if again else [])
        if not plain and not calls and not migrating:
            return
        send = self._transport.new()
        pack = self._transport.pack
        send.args.extend(pending.send.args[p] for p in plain)
        send.args.extend(pack(call.command) for call in calls)
        for call in migrating:
            send.args.extend(pack(command) for command in call.guarded.plain())
        replies = self._send_again(send, result)
        if replies is None:
            return
        result.resent = len(plain) + sum(call.guarded.count for call in calls + migrating)
        for position, reply in zip(plain, replies):
            results[position] = reply
        at = len(plain) + len(calls)
        op_replies, _replayed = guard.expand_calls(calls, replies[len(plain):at], pending.guarded.count)
        for call in calls:
            for i in call.ops:
                results[base + i] = op_replies[i]
        for call in migrating:
            for i in call.ops:
                results[base + i] = replies[at]
                at += 1

    def _send_again(self, send: transport.Sender, result: WriteResult) -> list[Any] | None:
        """One resend round trip; None when it failed (the first errors stand, this one is quoted)."""
        try:
            replies = send.finish()
        except redis.RedisError as exc:
            result.note(exc)
            return None
        self.commands_sent += len(replies)
        return replies

    def _undo_dropped(self, pending: "PendingWrite", results: list[Any], result: WriteResult) -> None:
        """A dropped record leaves nothing half-written behind: its hash (stored without its
        expiry, say) is deleted and a stream entry Redis did accept is removed (``XDEL`` of the id
        it answered), so followers never see a record that was counted as dropped. Neither command
        needs memory, so they succeed on a full Redis too."""
        pipe = self.client.pipeline(transaction=False)
        held_base = pending.held_base
        for n in result.failed:
            key = pending.keys[n]
            reply = results[held_base + n]  # its stream entry: the guarded op with the record's position
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
            positions = (at, at + 1, held_base + n)
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
            self.client.script_load(scripts.ADD_TRIM_EXPIRE)
            self.client.script_load(scripts.HINCRBY_PAIRS)
            self.client.script_load(guard.SCRIPT)
            for script in aggregates.SCRIPTS:
                self.client.script_load(script)
            self._scripts_loaded = True
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.script_load(scripts.ADD_TRIM_EXPIRE)
        pipe.script_load(scripts.HINCRBY_PAIRS)
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
        """After the keys were deleted (DELETE /logs): set TTLs again on the next write of each key,
        and ask the capped scripts again which aggregate hashes are full."""
        self._refresh.clear()
        self.planner.known_fields.clear()

    def _learn_full_hashes(self, results: Sequence[Any], pending: "PendingWrite") -> None:
        """The capped aggregate calls that replied their hash's names (it is full): kept, so the
        next batches fold into ``_OTHER`` here (aggregates.KnownFields)."""
        base = pending.held_base
        known, now = self.planner.known_fields, time.time()
        for at, key in pending.plan.capped:
            known.learn(key, results[base + at], now)


    def patch_hostname(self, hostname: str, items: Sequence[tuple[str, int]]) -> int:
        """A late reverse-DNS answer: set ``client_hostname`` on the stored request records
        ``items`` (record key, record time ms) and add them to ``idx:req:fqdn:{hostname}``.
        Records that expired meanwhile are skipped. Returns how many were patched."""
        if not items:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for key, _ts in items:
            self._script(pipe, scripts.PATCH_HOSTNAME, key, hostname)
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
                self._script(pipe, scripts.ADD_TRIM_EXPIRE, index, cutoff, TRIM_STEP, keep + REFRESH_INTERVAL_S)
            pipe.execute()
        return len(live)

    def _script(self, pipe: Any, body: str, key: str, *args: Any) -> None:
        """A one-key script call outside the batch: through redis-py's ``Script`` (its pipeline
        loads what Redis lacks, so NOSCRIPT is handled there); by body (``EVAL``) on a Cluster,
        whose pipeline refuses script objects."""
        if self._transport.cluster:
            pipe.execute_command("EVAL", body, 1, key, *args)
            return
        script = self._scripts.get(body)
        if script is None:
            script = self._scripts[body] = self.client.register_script(body)
        script(keys=[key], args=list(args), client=pipe)

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
        missing = self.values.missing(rows)
        if missing:
            for digest, raw in zip(missing, self._get_each(missing)):
                self.values.remember(digest, raw)
        out = []
        for key, data in zip(keys, rows):
            if data:
                out.append((key, schema.decode_entry(data, self.values)))
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
