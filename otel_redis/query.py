"""The read path of the query API: index lookups, intersections, cursors, pipelined record fetches.

A query is an AND of *groups*; a group is an OR (union) of sorted-set indexes (record key members,
epoch-ms scores). ``/logs/ip/1.2.3.4`` is one group ``idx:req:ip:1.2.3.4 | idx:log:ip:1.2.3.4``;
``/logs/search?level=ERROR&hostname=api`` is two groups, ``idx:log:level:ERROR`` and
``idx:req:host:api | idx:log:host:api``.

How a query runs (every step one pipelined round trip, no multi-key command, so Cluster-ready):

1. ``ZCOUNT`` every index in the window; the group with the fewest members *drives*.
2. The driver is walked newest first (``ZREVRANGEBYSCORE ... LIMIT``, its indexes merged by
   score), in chunks that grow while matches are rare.
3. Each chunk of candidates is checked against the other groups with ``ZMSCORE`` (membership by
   score lookup), so an intersection costs what its smallest group holds in the window, not what
   the store holds.
4. The survivors' hashes are fetched (``HGETALL`` in one pipeline) and an optional record
   predicate (the free-text filter, the literal path match, the slow threshold) is applied.
5. The walk stops at ``limit + 1`` matches: the page is the newest ``limit`` matches, returned
   oldest first, and the extra one says whether a ``next_cursor`` exists.

Order is (score, member) descending, which is Redis's own order for equal scores; a cursor is the
position of the oldest record of a page and the next page starts strictly below it.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from . import schema
from .config import Retention
from .levels import request_level
from .bounds import OTHER, ip_prefix, is_collapsed
from .client_ip import valid_ip
from .paths import index_path, normalize_path, route_matches
from .record import LogEntry, dumps
from .values import of_client

#: ZREVRANGEBYSCORE chunk growth while matches are rare (bounded so one step stays cheap)
MAX_CHUNK = 4096
#: record hashes fetched per pipeline when a predicate is applied
FETCH_CHUNK = 512

Group = tuple[str, ...]
Predicate = Callable[[LogEntry], bool]


class CursorError(ValueError):
    """A cursor that this module did not produce."""


@dataclass(frozen=True, order=True)
class Position:
    """A member's place in the global order: (record time in ms, record key)."""

    score: int
    member: str


_CURSOR_PREFIX = "c1."


def encode_cursor(pos: Position) -> str:
    raw = f"{pos.score}|{pos.member}".encode()
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Position:
    """Inverse of :func:`encode_cursor`; raises :class:`CursorError` with a reason otherwise."""
    if not text.startswith(_CURSOR_PREFIX) or len(text) > 600:
        raise CursorError("malformed cursor (use the next_cursor value of a previous page)")
    body = text[len(_CURSOR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        score_text, member = raw.split("|", 1)
        score = int(score_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorError("malformed cursor (use the next_cursor value of a previous page)") from None
    if not schema.is_well_formed_record_key(member) or score < 0 or score >= 10**16:
        raise CursorError("malformed cursor (use the next_cursor value of a previous page)")
    return Position(score, member)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------- walking indexes

HOUR_MS = schema.HOUR_MS
_TRACE_MARK = "trace="


class TraceIndex(str):
    """A group member standing for one trace in the hourly trace indexes (``idx:trace:{hour}``,
    members ``{trace}:{ms}:{record key}`` scored 0): counted with ``ZLEXCOUNT``, walked with
    ``ZREVRANGEBYLEX`` and probed with ``ZMSCORE`` hour by hour, where a time-scored index takes
    ``ZCOUNT``, ``ZREVRANGEBYSCORE`` and ``ZMSCORE`` on its one key."""

    keep_s: int

    def __new__(cls, trace_id: str, keep_s: int = Retention.requests) -> "TraceIndex":
        self = super().__new__(cls, _TRACE_MARK + trace_id)
        self.keep_s = keep_s
        return self

    @property
    def trace_id(self) -> str:
        return self[len(_TRACE_MARK) :]


def _trace_hours(index: TraceIndex, lo_ms: int, hi: Position | None) -> list[str]:
    """The hourly trace indexes of a window, newest first: an open window ends an hour from now
    (senders whose clock is ahead), and none starts before the trace index's retention."""
    return schema.trace_hours(lo_ms, _window_top(hi), index.keep_s)


def _window_top(hi: Position | None) -> int:
    return hi.score if hi is not None else int(time.time() * 1000) + HOUR_MS


def _below(hi: Position | None) -> tuple[int, str] | None:
    return (hi.score, hi.member) if hi is not None else None


class _KeyWalker:
    """One index walked newest first, strictly below ``hi``, down to ``lo_ms``."""

    __slots__ = ("key", "hi", "lo", "buf", "done", "skip")

    def __init__(self, key: str, hi: Position | None, lo_ms: int) -> None:
        self.key = key
        self.hi = hi
        self.lo = lo_ms
        self.buf: deque[Position] = deque()
        self.done = False
        self.skip = 0  # offset past members tied at hi.score that were already seen

    def queue(self, pipe: Any, n: int) -> int:
        top = self.hi.score if self.hi is not None else "+inf"
        pipe.zrevrangebyscore(self.key, top, self.lo, start=self.skip, num=n, withscores=True)
        return 1

    def take(self, results: Sequence[Any], n: int) -> None:
        rows: Sequence[tuple[bytes | str, float]] = results[0]
        if len(rows) < n:
            self.done = True
        hi = self.hi
        fresh = []
        for member, score in rows:
            pos = Position(int(score), _text(member))
            if hi is None or pos < hi:
                fresh.append(pos)
        if fresh:
            last = fresh[-1]
            # the next read starts at last.score: skip the members of that score seen so far
            seen_here = sum(1 for _member, score in rows if int(score) == last.score)
            carried = self.skip if hi is not None and hi.score == last.score else 0
            self.hi = last
            self.skip = carried + seen_here
            self.buf.extend(fresh)
        elif rows:
            self.skip += len(rows)  # only members seen before (a changed index): page past them


class _TraceWalker:
    """One trace walked newest first through the hourly trace indexes, strictly below ``hi``, down
    to ``lo_ms``: every hour is asked at once; hours that answered fewer than asked are done, and
    only the newest hour that still has more is asked again (with the older ones)."""

    __slots__ = ("trace_id", "keys", "hi", "lo", "buf", "done")

    def __init__(self, index: TraceIndex, hi: Position | None, lo_ms: int) -> None:
        self.trace_id = index.trace_id
        self.keys = _trace_hours(index, lo_ms, hi)
        self.hi = hi
        self.lo = lo_ms
        self.buf: deque[Position] = deque()
        self.done = not self.keys

    def queue(self, pipe: Any, n: int) -> int:
        low, high = schema.trace_range(self.trace_id, self.lo, _below(self.hi))
        for key in self.keys:
            pipe.zrevrangebylex(key, high, low, start=0, num=n)
        return len(self.keys)

    def take(self, results: Sequence[Any], n: int) -> None:
        fresh: list[Position] = []
        for i, rows in enumerate(results):
            fresh.extend(Position(*schema.parse_trace_member(_text(member))) for member in rows)
            if len(rows) >= n:  # this hour has more: it and the older hours are asked again
                self.keys = self.keys[i:]
                break
        else:
            self.keys = []
            self.done = True
        if fresh:
            self.hi = fresh[-1]
            self.buf.extend(fresh)


class UnionWalker:
    """Several indexes merged by (score, member), newest first, duplicates dropped."""

    def __init__(self, keys: Iterable[str], hi: Position | None, lo_ms: int) -> None:
        self.walkers = [
            _TraceWalker(k, hi, lo_ms) if isinstance(k, TraceIndex) else _KeyWalker(k, hi, lo_ms)
            for k in dict.fromkeys(keys)
        ]
        self._last: Position | None = None

    async def next_batch(self, client: Any, n: int) -> list[Position]:
        """Up to ``n`` next positions; fewer only when every index is exhausted."""
        out: list[Position] = []
        while len(out) < n:
            need = [w for w in self.walkers if not w.buf and not w.done]
            if need:
                size = max(n - len(out), 16)
                pipe = client.pipeline(transaction=False)
                counts = [w.queue(pipe, size) for w in need]
                results = iter(await pipe.execute())
                for w, k in zip(need, counts):
                    w.take([next(results) for _ in range(k)], size)
                continue
            live = [w for w in self.walkers if w.buf]
            if not live:
                break
            best = max(live, key=lambda w: w.buf[0]) if len(live) > 1 else live[0]
            pos = best.buf.popleft()
            if pos == self._last:
                continue
            self._last = pos
            out.append(pos)
        return out


# ---------------------------------------------------------------------------- queries


@dataclass
class Page:
    """The newest ``limit`` matches (``records`` oldest first) and the cursor of the next page."""

    records: list[tuple[str, LogEntry]]
    next_cursor: str | None
    #: a bounded scan (``scan_limit``) stopped before the window's end: more matches may exist below
    #: ``next_cursor``
    partial: bool = False
    #: candidate records the predicate was applied to (reported for bounded scans)
    scanned: int = 0


async def count_groups(client: Any, groups: Sequence[Group], lo_ms: int, hi: Position | None) -> list[int]:
    """Members of each group in the window (sum over its indexes; a union may overlap, so an upper bound)."""
    top = hi.score if hi is not None else "+inf"
    pipe = client.pipeline(transaction=False)
    sizes: list[int] = []  # commands per group
    for group in groups:
        size = 0
        for key in group:
            if isinstance(key, TraceIndex):
                low, high = schema.trace_range(key.trace_id, lo_ms, _below(hi))
                for hour_key in _trace_hours(key, lo_ms, hi):
                    pipe.zlexcount(hour_key, low, high)
                    size += 1
            else:
                pipe.zcount(key, lo_ms, top)
                size += 1
        sizes.append(size)
    counts = iter(await pipe.execute())
    return [sum(int(next(counts)) for _ in range(size)) for size in sizes]


async def fetch(client: Any, keys: Sequence[str]) -> list[tuple[str, LogEntry]]:
    """The records behind ``keys`` in one round trip, in order; missing or undecodable ones skipped."""
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    rows = await pipe.execute()
    known = of_client(client)  # shared long values (resource, user agent) this reader has
    missing = known.missing(rows)
    if missing:
        pipe = client.pipeline(transaction=False)
        for digest in missing:
            pipe.get(schema.value_key(digest))
        for digest, raw in zip(missing, await pipe.execute()):
            known.remember(digest, raw)
    out = []
    for key, data in zip(keys, rows):
        if not data:
            continue
        try:
            out.append((key, schema.decode_entry(data, known)))
        except Exception:  # noqa: BLE001 - a damaged hash is skipped, never a 500
            continue
    return out


async def _probe(client: Any, members: list[Position], groups: Sequence[Group]) -> list[Position]:
    """The members that belong to every group (ZMSCORE per index, one round trip)."""
    if not groups or not members:
        return members
    names = [p.member for p in members]
    everyone = range(len(members))
    pipe = client.pipeline(transaction=False)
    plans: list[list[Sequence[int]]] = []  # per index: the members each of its ZMSCOREs asks about
    for group in groups:
        for key in group:
            if isinstance(key, TraceIndex):  # a member is asked in the hour of its record
                by_hour: dict[str, list[int]] = {}
                for i, p in enumerate(members):
                    by_hour.setdefault(schema.idx_trace(schema.hour_bucket(p.score)), []).append(i)
                for hour_key, positions in by_hour.items():
                    pipe.zmscore(hour_key, [schema.trace_member(key.trace_id, members[i].score, names[i]) for i in positions])
                plans.append(list(by_hour.values()))
            else:
                pipe.zmscore(key, names)
                plans.append([everyone])
    results = iter(await pipe.execute())
    plan = iter(plans)
    keep = [True] * len(members)
    for group in groups:
        hit = [False] * len(members)
        for _key in group:
            for positions in next(plan):
                for i, score in zip(positions, next(results)):
                    if score is not None:
                        hit[i] = True
        keep = [k and h for k, h in zip(keep, hit)]
    return [p for p, k in zip(members, keep) if k]


async def search(
    client: Any,
    groups: Sequence[Group],
    *,
    since_ms: int,
    limit: int,
    cursor: Position | None = None,
    predicate: Predicate | None = None,
    shards: int = 1,
    scan_limit: int | None = None,
) -> Page:
    """Run one query (see the module docstring): complete, index-driven, newest ``limit`` matches.
    ``shards`` is the cluster layout's shard count: each hot index is the union of its parts.
    ``scan_limit`` bounds the records the predicate is applied to: past it the walk stops and the
    page is ``partial``, its ``next_cursor`` the last record checked (the next page goes on from there)."""
    if not groups:
        raise ValueError("a query needs at least one index group")
    if not all(groups):
        return Page([], None)  # a filter with no index (e.g. a path pattern nothing matched)
    groups = expand_groups(groups, shards)
    want = limit + 1
    counts = await count_groups(client, groups, since_ms, cursor)
    if min(counts) == 0:
        return Page([], None)
    order = sorted(range(len(groups)), key=lambda i: counts[i])
    driver = UnionWalker(groups[order[0]], cursor, since_ms)
    others = [groups[i] for i in order[1:]]

    matches: list[tuple[Position, str, LogEntry]] = []
    pending: deque[Position] = deque()
    chunk = want
    exhausted = False
    scanned = 0
    last_checked: Position | None = None
    while len(matches) < want:
        if not pending:
            if exhausted:
                break
            batch = await driver.next_batch(client, chunk)
            if len(batch) < chunk:
                exhausted = True
            pending.extend(await _probe(client, batch, others))
            chunk = min(chunk * 4, MAX_CHUNK)
            continue
        if scan_limit is not None and scanned >= scan_limit:
            break
        take = want - len(matches) if predicate is None else FETCH_CHUNK
        if scan_limit is not None:
            take = min(take, scan_limit - scanned)
        part = [pending.popleft() for _ in range(min(take, len(pending)))]
        by_key = {p.member: p for p in part}
        scanned += len(part)
        last_checked = part[-1]
        for key, entry in await fetch(client, [p.member for p in part]):
            if predicate is None or _safe(predicate, entry):
                matches.append((by_key[key], key, entry))
                if len(matches) >= want:
                    break
    partial = scan_limit is not None and len(matches) < want and scanned >= scan_limit and not (exhausted and not pending)
    return _page(matches, limit, partial, scanned, last_checked)


def _page(
    matches: list[tuple[Position, str, LogEntry]], limit: int, partial: bool, scanned: int, last_checked: Position | None
) -> Page:
    """The newest ``limit`` matches, oldest first, and where the next page starts: below the oldest
    of them, or (a bounded scan that stopped early) below the last record checked."""
    page = matches[:limit]
    if partial and last_checked is not None:
        next_cursor: str | None = encode_cursor(last_checked)
    else:
        next_cursor = encode_cursor(page[-1][0]) if len(matches) > limit else None
    page.sort(key=lambda m: (m[0].score, m[2].timestamp_ns, m[0].member))
    return Page([(key, entry) for _pos, key, entry in page], next_cursor, partial, scanned)


def expand_groups(groups: Sequence[Group], shards: int) -> list[Group]:
    """Each group with its hot indexes replaced by their ``shards`` parts (Redis Cluster layout,
    ``schema.sharded``): a union of the parts is the whole index, merged by score like any union."""
    out = []
    for group in groups:
        keys: list[str] = []
        for key in group:
            keys.extend([key] if isinstance(key, TraceIndex) else schema.sharded(key, shards))
        out.append(tuple(dict.fromkeys(keys)))
    return out


async def _hkeys_of_parts(client: Any, keys: Iterable[str], shards: int) -> list[list[Any]]:
    """HKEYS of every part of every hash in ``keys``, one pipelined round trip."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        for part in schema.sharded(key, shards):
            pipe.hkeys(part)
    return list(await pipe.execute())


def _safe(predicate: Predicate, entry: LogEntry) -> bool:
    try:
        return bool(predicate(entry))
    except Exception:  # noqa: BLE001 - a predicate never turns a query into a 500
        return False



# ---------------------------------------------------------------------------- filters -> index groups
#
# Application logs and request records are both "logs". A filter that exists for both kinds is a
# union of the two indexes; a filter that exists for one kind only (level, event, component for
# application logs; status, method, path, slow for requests) selects that kind, and combining
# filters of the two kinds therefore matches nothing.

ALL: Group = (schema.IDX_LOG_ALL, schema.IDX_REQ_ALL)
LOGS: Group = (schema.IDX_LOG_ALL,)
REQUESTS: Group = (schema.IDX_REQ_ALL,)


async def ip_group(client: Any, *ips: str) -> tuple[Group, Predicate | None]:
    """Requests from the IPs and application logs carrying them (``client.address``, ``client_ip``,
    ``ip``), and, where addresses beyond the hourly bound were indexed under their
    network or ``_OTHER`` (bounds.IpBound), those indexes too, with a predicate that keeps the
    records of these addresses only. One round trip (EXISTS per index) to know."""
    return await bounded_ip_group(client, (schema.idx_req_ip, _log_ip_index), *ips)


def _log_ip_index(ip: str) -> str:
    return schema.idx_log_field("ip", ip)


async def bounded_ip_group(client: Any, indexes: Sequence[Callable[[str], str]],
                           *ips: str) -> tuple[Group, Predicate | None]:
    """The ``indexes`` (key of an indexed address) of ``ips``, plus those of their networks and
    ``_OTHER`` that exist, with :func:`ip_predicate` when any does (see :func:`ip_group`)."""
    wanted = {canonical for ip in ips if (canonical := valid_ip(ip))}
    exact = tuple(dict.fromkeys(index(ip) for ip in ips for index in indexes))
    shared = tuple(dict.fromkeys(
        index(net) for net in [*(ip_prefix(ip) for ip in wanted), OTHER] for index in indexes
    ))
    pipe = client.pipeline(transaction=False)
    for key in shared:
        pipe.exists(key)
    present = tuple(key for key, n in zip(shared, await pipe.execute()) if n)
    if not present:
        return exact, None
    return exact + present, ip_predicate(wanted)


def ip_predicate(wanted: set[str]) -> Predicate:
    """A request from one of ``wanted`` (canonical addresses), or an application log carrying one."""

    def match(entry: LogEntry) -> bool:
        value = entry.request.client_ip if entry.request is not None else entry.index_value("ip")
        return bool(value) and valid_ip(value) in wanted

    return match


def group_user(user: str) -> Group:
    return (schema.idx_req_user(user), schema.idx_log_field("user", user))


def group_client(client_id: str) -> Group:
    return (schema.idx_req_client(client_id), schema.idx_log_field("client", client_id))


def group_session(session_id: str) -> Group:
    return (schema.idx_req_session(session_id), schema.idx_log_field("session", session_id))


def group_hostname(hostname: str) -> Group:
    """The proxy (server) hostname: requests it served and application logs naming it."""
    return (schema.idx_req_host(hostname), schema.idx_log_field("host", hostname))


def group_fqdn(fqdn: str) -> Group:
    """The client's reverse-DNS name (requests only)."""
    return (schema.idx_req_fqdn(fqdn),)


def group_trace(trace_id: str, keep_s: int = Retention.requests) -> Group:
    """Everything of one trace; ``trace_id`` as normalised by :func:`otel_redis.record.normalize_trace_id`,
    ``keep_s`` the requests' retention (which the trace indexes keep)."""
    return (TraceIndex(trace_id, keep_s),)


async def trace_keys(
    client: Any, trace_ids: Sequence[str], since_ms: int, limit: int, keep_s: int = Retention.requests
) -> list[list[str]]:
    """The newest ``limit`` record keys of each trace since ``since_ms``, oldest first (one round trip)."""
    hours = schema.trace_hours(since_ms, _window_top(None), keep_s)
    pipe = client.pipeline(transaction=False)
    for trace_id in trace_ids:
        low, high = schema.trace_range(trace_id, since_ms)
        for key in hours:
            pipe.zrevrangebylex(key, high, low, start=0, num=limit)
    results = iter(await pipe.execute())
    out = []
    for _trace in trace_ids:
        found = [schema.parse_trace_member(_text(m)) for _key in hours for m in next(results)]
        out.append([key for _ts, key in sorted(found)[-limit:]])
    return out


def group_levels(*levels: str) -> Group:
    return tuple(schema.idx_log_level(level) for level in levels)


#: the levels a request can have (other levels select application logs only)
REQUEST_LEVELS = frozenset(request_level(code) for code in (200, 404, 500))


async def level_group(client: Any, level: str, since_ms: int, now_ms: int, shards: int = 1) -> Group:
    """Records of ``level``: application logs (``idx:log:level:{LEVEL}``) and requests whose status
    maps to it (:func:`request_level`), through the status indexes ``idx:req:status:{code}`` of the
    codes that the window's hours counted (fields ``status_{code}`` of ``stats:requests:{hour}``,
    one pipelined ``HKEYS`` per hour, including the hour after now for senders whose clock is ahead)."""
    group = group_levels(level)
    if level not in REQUEST_LEVELS:
        return group
    buckets = schema.hour_buckets(since_ms, now_ms + HOUR_MS)
    codes: set[int] = set()
    for fields in await _hkeys_of_parts(client, map(schema.stats_requests, buckets), shards):
        for field in fields:
            name = _text(field)
            code = schema.status_of_field(name)
            if code is not None and code.isdigit():
                codes.add(int(code))
    return group + group_status(*(code for code in sorted(codes) if request_level(code) == level))


def group_event(event: str) -> Group:
    return (schema.idx_log_event(event),)


def group_component(component: str) -> Group:
    return (schema.idx_log_component(component),)


def group_status(*codes: int) -> Group:
    return tuple(schema.idx_req_status(code) for code in codes)


def group_method(method: str) -> Group:
    return (schema.idx_req_method(method),)


async def service_group(client: Any, service: str, shards: int = 1) -> tuple[Group, Predicate | None]:
    """Records whose resource ``service.name`` is ``service``: ``idx:service:{service}``, and, when
    names past OTEL_REDIS_MAX_SERVICES were indexed as ``_OTHER``, that index too with a predicate
    that keeps only this service's records (the bound never hides a record from its query).
    On a Cluster both indexes are hot (every record of a one-service application goes to its index),
    so ``_OTHER`` is looked for in each of its ``shards`` parts; :func:`search` reads them all."""
    own = schema.idx_service(service)
    other = schema.idx_service(OTHER)
    if service == OTHER:
        return (own,), None
    pipe = client.pipeline(transaction=False)
    for part in schema.sharded(other, shards):
        pipe.exists(part)
    if not any(await pipe.execute()):
        return (own,), None
    return (own, other), service_predicate(service)


def service_predicate(service: str) -> Predicate:
    def match(entry: LogEntry) -> bool:
        name = entry.resource.get("service.name")
        return name == service or (name is not None and str(name) == service)

    return match


def attribute_predicate(wanted: dict[str, tuple[str, ...]]) -> Predicate:
    """Every ``name`` has one of its values, compared as text (``42``, ``1.5``, ``true``; a dict or
    list as its JSON); a masked (scrubbed) value matches only its mask."""
    items = [(name, frozenset(values)) for name, values in wanted.items()]

    def match(entry: LogEntry) -> bool:
        attributes = entry.attributes
        for name, values in items:
            value = attributes.get(name)
            if value is None:
                return False
            if isinstance(value, str):
                if value not in values:
                    return False
            elif values.isdisjoint(_attr_texts(value)):
                return False
        return True

    return match


def _attr_texts(value: Any) -> tuple[str, ...]:
    """The texts a non-string attribute value is found by."""
    if isinstance(value, bool):
        return ("true", "True") if value else ("false", "False")
    if isinstance(value, int):
        return (str(value),)
    if isinstance(value, float):
        if value.is_integer():
            return (repr(value), str(int(value)))
        return (repr(value),)
    return (_dumps(value),)


def group_errors(include_warnings: bool = False) -> Group:
    """4xx/5xx requests and ERROR/CRITICAL logs (plus WARNING logs when asked)."""
    keys = (schema.IDX_REQ_ERRORS, schema.IDX_LOG_ERRORS)
    return keys + (schema.idx_log_level("WARNING"),) if include_warnings else keys


def group_slow() -> Group:
    return (schema.IDX_REQ_SLOW,)


# ---------------------------------------------------------------------------- record predicates


def text_predicate(text: str) -> Predicate:
    """Case-insensitive literal substring of the message, component, event, request path, query,
    error, user agent, referrer, or any attribute value (no wildcards: every character is literal)."""
    needle = text.casefold()

    def match(entry: LogEntry) -> bool:
        body = entry.body if isinstance(entry.body, str) else _dumps(entry.body)
        if needle in body.casefold() or needle in entry.component.casefold() or needle in entry.event.casefold():
            return True
        req = entry.request
        if req is not None:
            for value in (req.path, req.query, req.error, req.user_agent, req.referrer):
                if value and needle in value.casefold():
                    return True
        for value in entry.attributes.values():
            value = value if isinstance(value, str) else _dumps(value)
            if needle in value.casefold():
                return True
        return False

    return match


def _dumps(value: Any) -> str:
    return dumps(value).decode("utf-8", "replace")


def slow_predicate(threshold_ms: float) -> Predicate:
    def match(entry: LogEntry) -> bool:
        return entry.request is not None and entry.request.response_time_ms > threshold_ms

    return match


def all_of(*predicates: Predicate | None) -> Predicate | None:
    chosen = [p for p in predicates if p is not None]
    if not chosen:
        return None
    if len(chosen) == 1:
        return chosen[0]
    return lambda entry: all(p(entry) for p in chosen)


# ---------------------------------------------------------------------------- path patterns


def glob_regex(pattern: str) -> re.Pattern[str]:
    """``*`` matches any run of characters; every other character (``?``, ``[``, ``.``...) is literal.
    The pattern matches anywhere in the path (a substring), case-sensitively."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


async def path_group(
    client: Any, pattern: str, since_ms: int, now_ms: int, method: str | None = None, shards: int = 1
) -> Group:
    """The ``idx:req:path:{method}:{path}`` indexes whose path matches ``pattern`` in the window.

    The indexed paths of each hour are the fields of ``stats:paths:{hour}`` (``METHOD path``), so
    the candidates come from at most one small hash per hour, never from a key scan. The pattern is
    tried as given and normalised like a stored path (``/users/123`` -> ``/users/{id}``); requests
    that matched no route (``/{unmatched}``, 404/405) and paths collapsed by a bound (``/x/*``,
    ``_OTHER``, see bounds.py) are always candidates, checked by raw path.
    A concrete pattern (no ``*``) also selects the route templates that serve it: ``/users/12``
    finds the requests stored under ``/users/{user_id}``."""
    regexes = [glob_regex(pattern)]
    concrete = "*" not in pattern
    normalised = normalize_path(pattern)
    if normalised != pattern:
        regexes.append(glob_regex(normalised))
    seen: dict[str, None] = {}
    for fields in await _hkeys_of_parts(client, map(schema.stats_paths, schema.hour_buckets(since_ms, now_ms)), shards):
        for field in fields:
            seen[_text(field)] = None
    keys = []
    for field in seen:
        verb, _, path = field.partition(" ")
        if method is not None and verb != method:
            continue
        if is_collapsed(path) or any(rx.search(path) for rx in regexes) or (concrete and route_matches(path, pattern)):
            keys.append(schema.idx_req_path(verb, path))
    return tuple(keys)


def path_predicate(pattern: str) -> Predicate:
    """A request whose raw path or indexed path (route template) matches ``pattern`` literally."""
    rx = glob_regex(pattern)

    def match(entry: LogEntry) -> bool:
        req = entry.request
        if req is None:
            return False
        return bool(rx.search(req.path) or rx.search(index_path(req.route, req.path, req.status_code)))

    return match
