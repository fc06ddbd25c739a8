"""The write path's planner: a batch of entries in, the batch's commands out, no Redis.

The planner decides everything a batch writes (see the write rules in store.py): each record's
hash, expiry and stream entry; the index members (one ``ZADD`` per index key and slice of
:data:`EARLY_SEND_RECORDS` records, or the add-trim-expire script for an index whose trim is due);
the counters summed per batch; the response-time histograms; the HyperLogLog and hostname-set adds;
the OAuth flow lists; the expiries and trims due once per :data:`REFRESH_INTERVAL_S`; and on a
Cluster which shard each slice's hot keys go to. It only appends: commands to :attr:`Plan.args`
(packed by the transport's ``pack``), and the non-idempotent ones to the guarded ops
(:class:`guard.Guarded`; the store sends them as one call, or on a Cluster one call per slot). Replies are the sender's and the store's business, so the plan can be
checked as data (tests/otel_redis/test_plan.py) and timed without a server.
"""

from __future__ import annotations

import functools
import itertools
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from . import aggregates, forksafe, guard, schema
from .bounds import OTHER, KeyBounds, bounded_method, bounded_status
from .client_ip import valid_ip
from .config import Settings
from .histogram import bucket_of, error_field
from .levels import is_error_severity
from .record import LogEntry
from .scripts import ADD_TRIM_EXPIRE_SHA, HINCRBY_PAIRS_SHA

REFRESH_INTERVAL_S = 60
#: records whose commands are planned before a slice is sent (see resp.EarlySend)
EARLY_SEND_RECORDS = 64
#: most index members one trim step removes (about a millisecond of Redis time)
TRIM_STEP = 1000
#: attribute that marks a track_oauth_flow record; its key is appended to ``oauth:flow:{session}``
OAUTH_FLOW_STEP = "oauth.flow.step"
OAUTH_FLOW_MAX_STEPS = 200
_REFRESH_CACHE_MAX = 100_000
_ROUTE_MEMO_MAX = 8192

Route = tuple[str, str, str, str]


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
_next_shard = itertools.count()  # an index into Planner.shard_order


class RefreshCache:
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
        return bool(self.due_many((key,), now))

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


@dataclass
class Plan:
    """One batch as planned: what the sender sends and what the store needs to read the replies."""

    #: the commands, in send order, as the transport's ``pack`` made them (argument tuples unpacked)
    args: list[Any] = field(default_factory=list)
    #: every record key, in the order of the entries
    keys: list[str] = field(default_factory=list)
    #: position in ``args`` of each record's HSET (its EXPIREAT follows; without guarded ops its XADD too)
    record_at: list[int] = field(default_factory=list)
    #: (position, index key) of each script call; ``None`` for a histogram's or aggregate's increments
    scripted: list[tuple[int, str | None]] = field(default_factory=list)
    #: the streams whose length trim is due (a second round trip after the batch)
    long_streams: list[str] = field(default_factory=list)
    #: (first record, shard) of each slice that changed shard (cluster mode; else [(0, 0)])
    shards: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)])
    #: the stream entries and counters, applied once (guard.py; the store brings them, standalone and
    #: on a Cluster); None: plain commands (a cluster plan made without a store)
    guarded: guard.Guarded | None = None
    #: a Cluster's stream entries kept back (``hold_streams``); None: they go to ``args``
    held: list[Any] | None = None
    #: (guarded op index, key) of each capped-increment aggregate op, whose reply may be the hash's
    #: names (aggregates.KnownFields)
    capped: list[tuple[int, str]] = field(default_factory=list)


@functools.lru_cache(maxsize=8192)
def shard_part(key: str, n: int, shards: int) -> str:
    """Part ``n`` of ``key`` when it is a hot key, else ``key`` (cluster mode only)."""
    return schema.shard_key(key, n, shards) if schema.is_hot(key) else key


def route_keys(method: str, status: int, indexed: str) -> Route:
    """What a request's bounded method, status and indexed path decide: the status, method and path
    index keys and the ``stats:paths`` field (cached per planner, see :meth:`Planner.route_of`)."""
    method = bounded_method(method)
    return (
        schema.idx_req_status(bounded_status(status)),
        schema.idx_req_method(method),
        schema.idx_req_path(method, indexed),
        f"{method} {indexed}",
    )


@functools.lru_cache(maxsize=8192)
def ip_index(ip: str) -> str | None:
    """``idx:req:ip:{ip}`` for a valid address, else None (garbage never becomes a key)."""
    return schema.idx_req_ip(ip) if valid_ip(ip) else None


@functools.lru_cache(maxsize=1024)
def rt_keys(minute: str, hour: str, host: str) -> tuple[str, str]:
    """The (minute, hour) response-time histogram keys of a hostname, or overall for ``""``."""
    if not host:
        return schema.stats_rt_all(minute), schema.stats_rt_all(hour)
    return schema.stats_rt(host, minute), schema.stats_rt(host, hour)


def chunks(members: list[Any], size: int = 1000) -> list[list[Any]]:
    """``members`` in parts a script can unpack (Lua's stack bounds one call's arguments)."""
    return [members[i : i + size] for i in range(0, len(members), size)] if len(members) > size else [members]


def _whole(members: list[Any]) -> list[list[Any]]:
    """A plain command takes every member at once (no script stack to respect)."""
    return [members]


def response_time_commands(
    rt_hists: dict[str, dict[str, dict[int, int]]],
    rt_errors: dict[tuple[str, str, str], int],
    minute_keys: set[str],
    hour_keys: set[str],
    part: Callable[[str], str] | None = None,
) -> list[tuple[Any, ...]]:
    """The batch's response-time tallies (minute -> hostname -> bucket -> count, and errors per
    minute, hostname and class) as increments of the histogram hashes, per minute and per hour,
    overall and (with a hostname) per hostname: one hincrby-pairs script call per hash and minute
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
        minute_key, hour_key = rt_keys(minute, minute[:-2], host)
        if part is not None:
            minute_key, hour_key = part(minute_key), part(hour_key)
        minute_keys.add(minute_key)
        hour_keys.add(hour_key)
        pairs = list(itertools.chain.from_iterable(counts.items()))
        commands.append(("EVALSHA", HINCRBY_PAIRS_SHA, 1, minute_key, *pairs))
        commands.append(("EVALSHA", HINCRBY_PAIRS_SHA, 1, hour_key, *pairs))
    return commands


def log_indexes(bounds: KeyBounds, entry: LogEntry) -> tuple[list[str], bool]:
    """The indexes of an application log (every sender-chosen part bounded, see bounds.py) and
    whether it is OAuth activity."""
    out = [schema.IDX_LOG_ALL, schema.idx_log_level(entry.level)]
    if entry.component:
        out.append(schema.idx_log_component(bounds.component(entry.component)))
    if entry.event:
        out.append(schema.idx_log_event(bounds.event(entry.event)))
    if is_error_severity(entry.severity_number):
        out.append(schema.IDX_LOG_ERRORS)
    indexed_ip = ""  # the record's address as indexed: shared by the log and the OAuth address index
    for name in ("ip", "client", "user", "session", "host"):
        value = entry.index_value(name)
        if value:
            if name == "ip":  # an address is indexed (canonical, like a request's), anything else is _OTHER
                value = valid_ip(value)
                value = indexed_ip = bounds.ip(value) if value else OTHER
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
        if indexed_ip:
            out.append(schema.idx_oauth_ip(indexed_ip))
    return out, is_oauth


def service_index(bounds: KeyBounds, resource: dict[str, Any]) -> str | None:
    """``idx:service:{name}`` of a record's resource ``service.name`` (bounded), or None."""
    name = resource.get("service.name") if resource else None
    if name is None or name == "":
        return None
    return schema.idx_service(bounds.service(name if isinstance(name, str) else str(name)))


def request_extra_indexes(bounds: KeyBounds, req: Any) -> list[str]:
    """The rarer request indexes: OAuth client and session."""
    out = []
    if req.oauth_client_id:
        out.append(schema.idx_req_client(bounds.client(req.oauth_client_id)))
    if req.session_id:
        out.append(schema.idx_req_session(bounds.session(req.session_id)))
    return out


def _add_pair(group: dict[str, list[Any]], index: str, score: str, key: str) -> None:
    members = group.get(index)
    if members is None:
        group[index] = [score, key]
    else:
        members += (score, key)


class Planner:
    """Plans batches for one store: the long-lived parts (bounds, route memo, refresh cache, shards)."""

    def __init__(self, settings: Settings, pack: Callable[[Sequence[Any]], Any], cluster: bool,
                 refresh: RefreshCache | None = None, bounds: KeyBounds | None = None) -> None:
        self.settings = settings
        self.pack = pack
        self.cluster = cluster
        self.refresh = refresh if refresh is not None else RefreshCache()
        #: the bounds of every client-controlled key part (otel_redis/bounds.py)
        self.bounds = bounds if bounds is not None else KeyBounds(settings)
        self.routes: dict[tuple[str, int, str, str], Route] = {}
        #: parts per hot key (1 standalone; on a Cluster the persisted layout, set by the store)
        self.shards = 1
        #: the order slices visit the parts in (cluster mode: one part of each master in turn)
        self.shard_order: list[int] = [0]
        #: the capped aggregate hashes seen full, and their names (fed by the store from replies)
        self.known_fields = aggregates.KnownFields()

    def route_of(self, memo_key: tuple[str, int, str, str]) -> Route:
        """:func:`route_keys` of a request's (method, status, route, path), its path bounded;
        remembered (a bounded path's answer never changes once given), emptied when full."""
        method, status, route, path = memo_key
        if len(self.routes) >= _ROUTE_MEMO_MAX:
            self.routes.clear()
        hit = self.routes[memo_key] = route_keys(method, status, self.bounds.path(route, path, status))
        return hit

    def plan(self, entries: Iterable[LogEntry], plan: Plan | None = None, flush: Callable[[], None] | None = None,
             now: float | None = None) -> Plan:
        """Plan ``entries`` (an iterator is consumed once) into ``plan``; ``flush`` is called after
        each slice of :data:`EARLY_SEND_RECORDS` records (the sender sends what is planned so far).
        Standalone without ``plan.guarded`` the guarded call is appended as the last command."""
        plan = plan if plan is not None else Plan()
        batch = _Batch(self, plan, now)
        every = EARLY_SEND_RECORDS if flush is not None else -1  # -1: never (a plan without sending)
        next_flush = every
        done = 0
        for entry in entries:
            if done == next_flush:  # a full slice planned: it leaves, the next one may take another shard
                batch.close_slice()
                flush()  # type: ignore[misc]
                next_flush += every
                if batch.shards > 1:
                    batch.next_shard(done)
            batch.add(entry)
            done += 1
        batch.finish()
        return plan


class _Batch:
    """One batch being planned: the slice's grouped members, the batch's tallies, the slice's shard."""

    def __init__(self, planner: Planner, plan: Plan, now: float | None) -> None:
        self.planner = planner
        self.plan = plan
        settings = self.settings = planner.settings
        self.retention = settings.retention
        self.bounds = planner.bounds
        self.refresh = planner.refresh
        self.now = now = time.time() if now is None else now
        self.now_s = int(now)
        self.now_ms = int(now * 1000)
        self.args = plan.args
        self.pack = planner.pack
        self._init_ops(planner.cluster)
        self.zadds: dict[str, list[Any]] = {}
        #: per-request indexes keyed by (nearly) per-record values: IP, hostname, user...
        self.hot: dict[str, list[Any]] = {}
        #: the last record's resource and its service index (one resource per batch, as a rule)
        self.resource: Any = None
        self.service_index: str | None = None
        self.cutoffs: dict[int, str] = {}
        #: the slice's shard on a Cluster: hot key -> its part (None on a standalone server)
        self.part: Callable[[str], str] | None = None
        self.hincr: dict[tuple[str, str], int] = {}
        self.all_requests: list[Any] = []
        self.slow: list[Any] = []
        self.by_route: dict[tuple[str, int, Route], list[Any]] = {}
        self.by_host: dict[tuple[str, str], tuple[list[Any], set[str]]] = {}
        # response times: minute -> hostname -> histogram bucket -> count, and the errors per class
        self.rt_hists: dict[str, dict[str, dict[int, int]]] = {}
        self.minute_hists: dict[str, dict[int, int]] = {}
        self.rt_errors: dict[tuple[str, str, str], int] = {}
        #: per shard: its response-time tallies (one shard, 0, on a standalone server)
        self.rt_parts: dict[int, tuple[dict[str, dict[str, dict[int, int]]], dict[tuple[str, str, str], int]]] = {
            0: (self.rt_hists, self.rt_errors)
        }
        self.pfadds: dict[str, set[str]] = {}
        self.hosts: dict[str, set[str]] = {}
        self.streams: set[str] = set()
        self.flows: dict[str, list[str]] = {}
        self.interned: dict[str, bytes] = {}
        self.uid_prefix, self.uid_counter = _uid.current()
        self.request_ttl = schema.record_retention(False, False, self.retention)
        self.error_ttl = schema.record_retention(True, False, self.retention)
        self.shared_agent = self.bounds.user_agent.admits
        self.stream_requests = schema.STREAM_REQUESTS
        self.stream_logs = schema.STREAM_LOGS
        self.shards = planner.shards or 1
        self.last_minute = -1
        self.minute_text = self.hour = ""
        self.minute_keys: set[str] = set()
        # the hourly trace indexes: members per key (emptied by each slice) and the end of each hour
        self.traces: dict[str, list[str]] = {}
        self.trace_ends: dict[str, int] = {}
        self.traced: list[str] = []
        #: the batch, for the console aggregates (aggregates.py)
        self.seen: list[LogEntry] | None = [] if settings.console_aggregates else None
        if self.shards > 1:
            self.rt_parts.clear()
            self.next_shard(0)

    def _init_ops(self, cluster: bool) -> None:
        """Where the non-idempotent ops go: the guarded ops (applied once, guard.py) when the plan
        brings them (the store's, split per slot on a Cluster) or standalone; else plain commands."""
        plan = self.plan
        self.own_guard = plan.guarded is None and not cluster
        if self.own_guard:
            plan.guarded = guard.Guarded()
        guarded = plan.guarded
        if guarded is not None:
            self.stream_entry = guarded.xadd
            self.gadd = guarded.command
            self.hincrby = guarded.hincrby
            self.chunks: Callable[[list[Any]], list[list[Any]]] = chunks
            return
        append, pack = self.args.append, self.pack
        append_stream = plan.held.append if plan.held is not None else append

        def stream_entry(stream: str, key: str) -> None:
            append_stream(pack(("XADD", stream, "*", "k", key)))

        def hincrby(key: str, field: str, amount: int) -> None:
            append(pack(("HINCRBY", key, field, amount)))

        self.stream_entry, self.gadd, self.hincrby, self.chunks = stream_entry, self.command, hincrby, _whole

    def command(self, command: tuple[Any, ...]) -> None:
        self.args.append(self.pack(command))

    def next_shard(self, first: int) -> None:
        """Cluster mode: the slice starting at record ``first`` writes to the next shard."""
        planner, shards = self.planner, self.shards
        n = planner.shard_order[next(_next_shard) % shards]
        self.part = functools.partial(shard_part, n=n, shards=shards)
        self.stream_requests = schema.shard_key(schema.STREAM_REQUESTS, n, shards)
        self.stream_logs = schema.shard_key(schema.STREAM_LOGS, n, shards)
        tallies = self.rt_parts.get(n)
        if tallies is None:
            tallies = self.rt_parts[n] = ({}, {})
        self.rt_hists, self.rt_errors = tallies
        self.last_minute = -1  # the minute's histogram is looked up again, in this shard's tallies
        if first == 0:
            self.plan.shards[:] = [(0, n)]
        else:
            self.plan.shards.append((first, n))

    def new_minute(self, ts_ms: int, minute: int) -> None:
        """The record's minute differs from the previous record's: its buckets and trace index."""
        self.last_minute = minute
        self.minute_text = minute_text = schema.minute_bucket(ts_ms)
        self.hour = hour = minute_text[:-2]
        hists = self.rt_hists.get(minute_text)
        if hists is None:
            hists = self.rt_hists[minute_text] = {}
        self.minute_hists = hists
        trace_index = schema.idx_trace(hour)
        traced = self.traces.get(trace_index)
        if traced is None:
            traced = self.traces[trace_index] = []
            self.trace_ends[trace_index] = ts_ms - ts_ms % schema.HOUR_MS + schema.HOUR_MS
        self.traced = traced

    def add(self, entry: LogEntry) -> None:
        """One entry: its record's commands, and its members and tallies for the slice and batch."""
        if self.seen is not None:
            self.seen.append(entry)
        ts_ms = entry.timestamp_ns // 1_000_000
        minute = ts_ms // 60_000
        if minute != self.last_minute:
            self.new_minute(ts_ms, minute)
        score = str(ts_ms)  # formatted once, not by the packer for each index it goes to
        if entry.request is not None:
            key = self.request(entry, ts_ms, score)
            ttl = self.error_ttl if entry.request.status_code >= 400 else self.request_ttl
            stream = self.stream_requests
        else:
            key, ttl = self.log(entry, ts_ms, score)
            stream = self.stream_logs
            self.streams.add(stream)
        if entry.trace_id:
            self.traced += ("0", schema.trace_member(entry.trace_id, ts_ms, key))
        if entry.resource is not self.resource:
            self.resource = entry.resource
            self.service_index = service_index(self.bounds, entry.resource)
        if self.service_index is not None:
            _add_pair(self.hot, self.service_index, score, key)
        plan, args, pack = self.plan, self.args, self.pack
        plan.keys.append(key)
        plan.record_at.append(len(args))
        args.append(pack(("HSET", key, *schema.encode_fields(entry, self.interned, self.shared_agent))))
        expire_at = ts_ms // 1000 + ttl
        args.append(pack(("EXPIREAT", key, expire_at if expire_at > self.now_s else self.now_s + 1)))
        self.stream_entry(stream, key)

    def request(self, entry: LogEntry, ts_ms: int, score: str) -> str:
        """A request record's key; its members grouped per route and host (indexes and counters are
        made per group when the slice closes) and its response time tallied."""
        req = entry.request
        ip = req.client_ip
        key = schema.request_record_key(ts_ms, f"{self.uid_prefix}{next(self.uid_counter):x}", ip)
        pair = (score, key)
        self.all_requests += pair
        status = req.status_code
        route = req.route
        # the path matters only without a route template (and not for unmatched 404/405)
        memo_key = (req.method, status, route, "" if route or status == 404 or status == 405 else req.path)
        hour = self.hour
        group_key = (hour, status, self.planner.routes.get(memo_key) or self.planner.route_of(memo_key))
        members = self.by_route.get(group_key)
        if members is None:
            self.by_route[group_key] = [score, key]
        else:
            members += pair
        host = self.request_indexes(req, score, key)
        if host:
            host_group = self.by_host.get((host, hour))
            if host_group is None:
                self.by_host[(host, hour)] = ([score, key], {ip} if ip else set())
            else:
                host_group[0].extend(pair)
                if ip:
                    host_group[1].add(ip)
        rt = round(req.response_time_ms, 3)  # the stored value's precision: bucket what is stored
        if rt > self.settings.slow_request_ms:
            self.slow += pair
        hist = self.minute_hists.get(host)
        if hist is None:
            hist = self.minute_hists[host] = {}
        bucket = bucket_of(rt)
        hist[bucket] = hist.get(bucket, 0) + 1
        if status >= 400:
            k3 = (self.minute_text, host, error_field(status))
            self.rt_errors[k3] = self.rt_errors.get(k3, 0) + 1
        return key

    def request_indexes(self, req: Any, score: str, key: str) -> str:
        """The request's indexes keyed by (nearly) per-record values (IP, client hostname, user,
        OAuth client, session); returns its bounded proxy hostname ("" without one)."""
        hot, bounds = self.hot, self.bounds
        ip = req.client_ip
        if ip:
            index = ip_index(ip)
            if index is not None:
                indexed = bounds.ip(ip)  # beyond the hour's bound: the address's network, or _OTHER
                _add_pair(hot, index if indexed is ip else schema.idx_req_ip(indexed), score, key)
        if req.client_hostname:
            _add_pair(hot, schema.idx_req_fqdn(bounds.client_hostname(req.client_hostname)), score, key)
        if req.user_id:
            _add_pair(hot, schema.idx_req_user(bounds.user(req.user_id)), score, key)
        if req.oauth_client_id or req.session_id:
            for index in request_extra_indexes(bounds, req):
                _add_pair(hot, index, score, key)
        return bounds.hostname(req.proxy_hostname) if req.proxy_hostname else ""

    def log(self, entry: LogEntry, ts_ms: int, score: str) -> tuple[str, int]:
        """An application log's key and retention; its index members, log and event counters and
        OAuth flow step."""
        key = schema.log_record_key(ts_ms, f"{self.uid_prefix}{next(self.uid_counter):x}")
        indexes, is_oauth = log_indexes(self.bounds, entry)
        if entry.attributes.get(OAUTH_FLOW_STEP) is not None:
            is_oauth = True
            session = entry.index_value("session")
            if session:
                self.flows.setdefault(schema.oauth_flow(self.bounds.session(session)), []).append(key)
        part, hincr, hour = self.part, self.hincr, self.hour
        skey = schema.stats_logs(hour) if part is None else part(schema.stats_logs(hour))
        for field_name in ("total", f"level_{entry.level}"):
            hincr[(skey, field_name)] = hincr.get((skey, field_name), 0) + 1
        if entry.event:
            ekey = schema.stats_events(hour)
            k4 = (ekey if part is None else part(ekey), self.bounds.event(entry.event))
            hincr[k4] = hincr.get(k4, 0) + 1
        for index in indexes:
            _add_pair(self.zadds, index, score, key)
        return key, schema.record_retention(entry.is_error, is_oauth, self.retention)

    def close_slice(self) -> None:
        """Every index member planned so far goes out with this slice (so Redis adds them while
        the next slice is planned, and little is left for the end); counters stay batch-wide."""
        if self.all_requests:
            self.streams.add(self.stream_requests)
            group_requests(self)
            self.all_requests.clear()
            self.slow.clear()
            self.by_route.clear()
            self.by_host.clear()
        self.emit_indexes(self.hot)
        self.hot.clear()
        self.emit_indexes(self.zadds)
        self.zadds.clear()
        for index, members in self.traces.items():
            if members:
                self.command(("ZADD", index, *members))
                members.clear()  # the list stays: the loop appends to it while in that hour

    def emit_indexes(self, groups: dict[str, list[Any]]) -> None:
        """One ``ZADD`` per index, or for an index whose refresh is due the add-trim-expire script."""
        part, args, pack = self.part, self.args, self.pack
        names = {index: part(index) for index in groups} if part is not None else None
        due = set(self.refresh.due_many(groups if names is None else names.values(), self.now))
        for index, members in groups.items():
            name = index if names is None else names[index]
            if name not in due:
                args.append(pack(("ZADD", name, *members)))
                continue
            keep_s = schema.index_retention(index, self.retention)
            cutoff = self.cutoffs.get(keep_s)
            if cutoff is None:
                cutoff = self.cutoffs[keep_s] = f"({self.now_ms - keep_s * 1000}"
            self.plan.scripted.append((len(args), name))
            args.append(pack(("EVALSHA", ADD_TRIM_EXPIRE_SHA, 1, name, cutoff, TRIM_STEP, keep_s + REFRESH_INTERVAL_S, *members)))

    def finish(self) -> None:
        """The batch-wide part, after the last slice: shared values, aggregates, counters, expiries,
        trims, and standalone the guarded call when the plan brought none."""
        self.close_slice()
        self.expire_trace_indexes()
        retention = self.retention
        # shared long values: written (and their TTL renewed) by every batch that references them,
        # so a value never expires before a record pointing at it
        value_ttl = max(retention.requests, retention.errors, retention.oauth) + REFRESH_INTERVAL_S
        for vkey, raw in self.interned.items():
            self.command(("SET", vkey, raw, "EX", value_ttl))
        # the rest is not idempotent (or must follow what is not): guarded, applied once
        plan = self.plan
        aggs = aggregates.planned(self.seen or [], retention.stats + REFRESH_INTERVAL_S,
                                  known=self.planner.known_fields, now=self.now)
        capped = iter(aggs.capped)
        next_capped = next(capped, (-1, ""))
        for n, command in enumerate(aggs.calls):
            at = len(self.args) if plan.guarded is None else plan.guarded.count
            if n == next_capped[0]:
                plan.capped.append((at, next_capped[1]))
                next_capped = next(capped, (-1, ""))
            if plan.guarded is None:  # a Cluster's aggregate EVALSHA: resent after NOSCRIPT
                plan.scripted.append((at, None))
            self.gadd(command)
        stats_keys = self.counters()
        stats_keys.update(aggs.plain)  # their expiry: no capped script sets it
        self.expiries(stats_keys)
        if self.own_guard:
            self.command(self.plan.guarded.call(guard.MIN_MARKER_TTL_S))  # type: ignore[union-attr]

    def expire_trace_indexes(self) -> None:
        """An hour's trace index expires once its newest possible member is past retention."""
        keep_s = self.retention.requests + REFRESH_INTERVAL_S
        now_s = self.now_s
        for index in self.refresh.due_many(self.trace_ends, self.now):
            at = self.trace_ends[index] // 1000 + keep_s
            self.command(("EXPIREAT", index, at if at > now_s else now_s + 1))

    def counters(self) -> set[str]:
        """The histograms, counters, HyperLogLogs and hostname sets; returns the stats keys touched."""
        hincr, gadd, plan = self.hincr, self.gadd, self.plan
        stats_keys: set[str] = {skey for skey, _field in hincr}
        for n, (hists, errors) in self.rt_parts.items():
            if not hists:
                continue
            part = None if self.shards == 1 else functools.partial(shard_part, n=n, shards=self.shards)
            for command in response_time_commands(hists, errors, self.minute_keys, stats_keys, part):
                if plan.guarded is not None:
                    gadd(command)
                    continue
                plan.scripted.append((len(self.args), None))
                self.command(command)
        for (skey, field_name), amount in hincr.items():
            self.hincrby(skey, field_name, amount)
        for ukey, members in self.pfadds.items():
            for chunk in self.chunks(list(members)):
                gadd(("PFADD", ukey, *chunk))
            stats_keys.add(ukey)
        for bucket, names in self.hosts.items():
            hkey = schema.stats_hosts(bucket)
            for chunk in self.chunks(list(names)):
                gadd(("SADD", hkey, *chunk))
            stats_keys.add(hkey)
        return stats_keys

    def expiries(self, stats_keys: set[str]) -> None:
        """The expiries due of the stats keys, the OAuth flow lists and the streams (with their age trim)."""
        gadd, refresh, now, retention = self.gadd, self.refresh, self.now, self.retention
        stats_ttl = retention.stats + REFRESH_INTERVAL_S
        for skey in refresh.due_many(stats_keys, now):
            gadd(("EXPIRE", skey, stats_ttl))
        for mkey in refresh.due_many(self.minute_keys, now):
            gadd(("EXPIRE", mkey, schema.RT_MINUTE_TTL_S))
        flow_ttl = self.settings.oauth_flow_ttl_s
        for fkey, members in self.flows.items():
            for chunk in self.chunks(members):
                gadd(("RPUSH", fkey, *chunk))
            gadd(("LTRIM", fkey, -OAUTH_FLOW_MAX_STEPS, -1))
            gadd(("EXPIRE", fkey, flow_ttl))  # per session: the flow lives flow_ttl after its last step
        for stream in refresh.due_many(self.streams, now):
            gadd(("XTRIM", stream, "MINID", "~", f"{self.now_ms - retention.requests * 1000}"))
            gadd(("EXPIRE", stream, retention.requests + REFRESH_INTERVAL_S))
            self.plan.long_streams.append(stream)


def group_requests(batch: _Batch) -> None:
    """The slice's request members and tallies, grouped in the loop, turned into index members
    (``idx:req:all``, status, method, path, errors, slow, host) and hash increments:
    ``stats:requests`` (``total``, ``status_{code}``), ``stats:errors`` (by code), ``stats:paths``,
    and the unique-visitor HyperLogLogs and hostname sets. On a Cluster the slice's shard names the
    hot stats hashes (the hot indexes are named so when emitted)."""
    zadds, hincr, part = batch.zadds, batch.hincr, batch.part

    def members_of(index: str) -> list[Any]:
        members = zadds.get(index)
        if members is None:
            members = zadds[index] = []
        return members

    def bump(skey: str, field_name: str, amount: int) -> None:
        k = (skey if part is None else part(skey), field_name)
        hincr[k] = hincr.get(k, 0) + amount

    members_of(schema.IDX_REQ_ALL).extend(batch.all_requests)
    if batch.slow:
        members_of(schema.IDX_REQ_SLOW).extend(batch.slow)
    for (hour, status, (status_index, method_index, path_index, path_field)), members in batch.by_route.items():
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
    for (host, hour), (members, ips) in batch.by_host.items():
        members_of(schema.idx_req_host(host)).extend(members)
        if ips:
            batch.pfadds.setdefault(schema.stats_unique_ips(host, hour), set()).update(ips)
        batch.hosts.setdefault(hour, set()).add(host)


__all__ = [
    "EARLY_SEND_RECORDS", "OAUTH_FLOW_MAX_STEPS", "OAUTH_FLOW_STEP", "REFRESH_INTERVAL_S", "TRIM_STEP",
    "Plan", "Planner", "RefreshCache", "chunks", "log_indexes", "response_time_commands", "route_keys",
]
