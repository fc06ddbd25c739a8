"""Bounded hourly aggregates for the web console: what ``stats:*`` lacked for its panels.

Top user agents, referrers, client IPs and 404 paths, request count and summed response time per
route (the slowest routes), bytes sent per hostname, and errors grouped by fingerprint (exception
type + normalised message) with their latest occurrence. Every one is a hash per hour whose fields
are client-controlled values, so each is *capped*: a field is added only while the hash holds fewer
than :data:`schema.AGG_CAP` fields; increments for further new values go to ``_OTHER``
(:data:`schema.AGG_OTHER`). The first values of an hour keep their own field, so on a flood of
distinct values a later popular one is counted under ``_OTHER``: the totals stay exact, the ranking
is that of the values that got a field. No key is ever made from a client value.

:func:`plan` is a pure function over a batch's entries that returns the increments;
:func:`planned` turns them into single-key ``EVALSHA`` calls (one per hash and batch, with its
expiry), so they are Cluster-safe; a hash the writer knows is full (:class:`KnownFields`) is folded
into ``_OTHER`` here and sent as plain increments. The write path (store.py) loads :data:`SCRIPTS` with its own
scripts (and again after NOSCRIPT) and calls :func:`commands` once per batch.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import operator
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import schema
from .paths import index_path
from .record import LogEntry, RequestFields, dumps
from .scripts import HINCRBY_PAIRS_SHA

#: pairs per HSET of the latest-error script (Lua's unpack has a stack limit of a few thousand values)
_CHUNK = 500

#: KEYS[1] a capped hash; ARGV[1] cap, ARGV[2] ttl, then (field, increment) pairs, each field
#: once (the batch is folded first). A hash with room for every field of the batch (HLEN + fields
#: <= cap) is incremented as is. Otherwise its field names are read once (HKEYS: at most cap + 1
#: of them) into a Lua set: new fields get a field while the hash has room and the rest is summed
#: into one ``_OTHER`` increment. (One HKEYS rather than a lookup per field: a hash of a few
#: hundred fields may be a listpack, where every lookup of a missing field scans all of it.)
#: Returns 0, or once the hash is full (``cap`` fields or more, so its field names never change
#: again) its field names (HKEYS), which the writer keeps (:class:`KnownFields`) to fold later
#: values into ``_OTHER`` itself. One key, so Cluster-safe.
_CAPPED_INCR = """
local key = KEYS[1]
local cap = tonumber(ARGV[1])
local last = #ARGV
local len = redis.call('HLEN', key)
if len + (last - 2) / 2 <= cap then
  for i = 3, last, 2 do
    redis.call('HINCRBY', key, ARGV[i], ARGV[i + 1])
  end
  if len + (last - 2) / 2 == cap and redis.call('HLEN', key) >= cap then
    redis.call('EXPIRE', key, ARGV[2])
    return redis.call('HKEYS', key)
  end
else
  local have = {}
  for _, name in ipairs(redis.call('HKEYS', key)) do have[name] = true end
  local other, other_sum = 0, 0
  for i = 3, last, 2 do
    local name = ARGV[i]
    if have[name] then
      redis.call('HINCRBY', key, name, ARGV[i + 1])
    elseif len < cap then
      len = len + 1
      redis.call('HINCRBY', key, name, ARGV[i + 1])
    else
      other = other + 1
      other_sum = other_sum + tonumber(ARGV[i + 1])
    end
  end
  if other > 0 then
    redis.call('HINCRBY', key, '_OTHER', string.format('%d', other_sum))
  end
  redis.call('EXPIRE', key, ARGV[2])
  if len >= cap then return redis.call('HKEYS', key) end
  return 0
end
redis.call('EXPIRE', key, ARGV[2])
return 0
"""

#: KEYS[1] a capped hash; ARGV[1] cap, ARGV[2] ttl, then (field, value) pairs, each field once:
#: set while the hash has room or the field exists (one HSET per chunk when all fit; else the
#: field names read once, as in :data:`_CAPPED_INCR`). One key.
_CAPPED_SET = """
local key = KEYS[1]
local cap = tonumber(ARGV[1])
local last = #ARGV
local len = redis.call('HLEN', key)
if len + (last - 2) / 2 <= cap then
  for s = 3, last, 2 * CHUNK do
    redis.call('HSET', key, unpack(ARGV, s, math.min(s + 2 * CHUNK - 1, last)))
  end
else
  local have = {}
  for _, name in ipairs(redis.call('HKEYS', key)) do have[name] = true end
  for i = 3, last, 2 do
    if have[ARGV[i]] or len < cap then
      if not have[ARGV[i]] then len = len + 1 end
      redis.call('HSET', key, ARGV[i], ARGV[i + 1])
    end
  end
end
redis.call('EXPIRE', key, ARGV[2])
return 0
""".replace("CHUNK", str(_CHUNK))

CAPPED_INCR_SHA = hashlib.sha1(_CAPPED_INCR.encode()).hexdigest()
CAPPED_SET_SHA = hashlib.sha1(_CAPPED_SET.encode()).hexdigest()
#: what the write path loads (SCRIPT LOAD) before its first batch and again after NOSCRIPT
SCRIPTS = (_CAPPED_INCR, _CAPPED_SET)

_NUMBER = re.compile(r"\d+")
_HEX = re.compile(r"\b[0-9a-fA-F]{8,}\b|\b[0-9a-fA-F-]{32,36}\b")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
MESSAGE_MAX = 500


@dataclass
class Increments:
    """A batch's aggregate increments: key -> field -> amount, and key -> field -> latest JSON."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    latest: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def add(self, key: str, name: str, amount: int = 1) -> None:
        row = self.counts.get(key)
        if row is None:
            row = self.counts[key] = {}
        row[name] = row.get(name, 0) + amount


def _field(value: str) -> str:
    return value[: schema.AGG_FIELD_MAX]


def normalise_message(message: str) -> str:
    """The message with what varies between occurrences (ids, numbers, quoted values) blanked."""
    text = _QUOTED.sub("'…'", message[:MESSAGE_MAX])
    return _NUMBER.sub("N", _HEX.sub("X", text))


def fingerprint(error_type: str, message: str) -> str:
    """A short stable id of (exception type, normalised message)."""
    raw = f"{error_type}\n{normalise_message(message)}".encode("utf-8", "replace")
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def error_of(entry: LogEntry) -> tuple[str, str] | None:
    """(type, message) of an error record: an ERROR/CRITICAL log, or a 5xx request; else None."""
    req = entry.request
    if req is not None:
        if req.status_code < 500:
            return None
        return f"HTTP {req.status_code}", req.error or f"{req.method} {req.route or req.path}"
    if not entry.is_error:
        return None
    attrs = entry.attributes
    kind = str(attrs.get("exception.type") or "")
    message = attrs.get("exception.message")
    if message is None:
        message = entry.body if isinstance(entry.body, str) else dumps(entry.body).decode()
    return kind or entry.level, str(message)


def _requests_into(out: Increments, hour: str, reqs: list[RequestFields]) -> None:
    """Count one hour's requests of a batch into ``out``: the top lists over all hostnames, again
    per proxy hostname (``stats:host_top:*``, capped the same way, for the dashboard's hostname
    selector), and bytes sent per hostname.

    Column-wise, because this runs for every request written: the fields are read as columns once
    (``zip(*reqs)`` on the named tuples), the requests' positions grouped by hostname in one pass,
    and each hostname's values gathered from the columns in C (:func:`operator.itemgetter`) and
    counted in C (:class:`Counter`). Only the route fields and the summed response time per route
    take a Python step per request, once for all hostnames. First-seen order is kept everywhere:
    it decides which values get a field of a nearly full hash."""
    if not reqs:
        return
    col = RequestFields(*zip(*reqs))
    hosts, status, paths = col.proxy_hostname, col.status_code, col.path
    # each request's route field (None for a 404 or 405: not a route)
    routes = [None if s == 404 or s == 405 else f"{m} {route or index_path(route, path, s)}"
              for m, path, s, route in zip(col.method, paths, status, col.route)]
    found = list(map(operator.eq, status, itertools.repeat(404)))
    times = list(map(int, map(operator.mul, col.response_time_ms, itertools.repeat(1000))))
    route_n = Counter(filter(None, routes))
    per_host = _groups(hosts, routes, times)
    for kind, counts in (
        ("agents", Counter(filter(None, col.user_agent))), ("referrers", Counter(filter(None, col.referrer))),
        ("ips", Counter(filter(None, col.client_ip))),
        ("not_found", Counter([p.partition("?")[0] for p in itertools.compress(paths, found)])),
    ):
        if counts:
            _merge(out, _OVERALL_KEYS[kind](hour), counts)
    if route_n:
        _merge(out, schema.stats_route_count(hour), route_n)
        route_us = dict.fromkeys(route_n, 0)  # the order of first sight, summed over the hostnames
        for group in per_host.values():
            for route, us in group.route_us.items():
                if route is not None:
                    route_us[route] += us
        _merge(out, schema.stats_route_time(hour), route_us)
    for host, group in per_host.items():
        if host:
            group.merge_into(out, functools.partial(_host_key, host=host, hour=hour), col, routes, found)
    sizes = col.bytes_sent
    if any(sizes):
        # a hostname's field comes after "_all", in the order of its first request with bytes
        per_host_bytes: dict[str, int] = {"_all": sum(sizes)}
        first_sent: list[tuple[int, str, int]] = []  # (position of the first request with bytes, host, sum)
        for host, group in per_host.items():
            group_sizes = group.take(sizes)
            if host and any(group_sizes):
                first_sent.append((next(itertools.compress(group.positions, group_sizes)), host, sum(group_sizes)))
        for _first, host, total in sorted(first_sent):
            per_host_bytes[host] = per_host_bytes.get(host, 0) + total
        _merge(out, schema.stats_bytes(hour), per_host_bytes)


def _host_key(kind: str, *, host: str, hour: str) -> str:
    return schema.stats_host_top(kind, host, hour)


_OVERALL_KEYS: dict[str, Callable[[str], str]] = {
    "agents": schema.stats_agents, "referrers": schema.stats_referrers, "ips": schema.stats_client_ips,
    "not_found": schema.stats_not_found,
}


class _HostGroup:
    """One hostname's requests of a batch: their positions in the columns, and their summed
    response time per route (made for every group, "" too: the overall sums add these up)."""

    __slots__ = ("positions", "route_us", "_take")

    def __init__(self, positions: list[int]) -> None:
        self.positions = positions
        self.route_us: dict[str | None, int] = {}
        self._take: Callable[[Sequence[Any]], Any] | None = None

    def take(self, column: Sequence[Any]) -> Sequence[Any]:
        """This hostname's values of ``column`` in request order, gathered in C."""
        if len(self.positions) == 1:
            return (column[self.positions[0]],)
        if self._take is None:
            self._take = operator.itemgetter(*self.positions)
        return self._take(column)  # type: ignore[no-any-return]

    def merge_into(self, out: Increments, key: Callable[[str], str], col: RequestFields,
                   routes: list[str | None], found: list[bool]) -> None:
        """This group's top lists into ``out`` under ``key(kind)``, in the overall order of kinds."""
        take = self.take
        for kind, counts in (
            ("agents", Counter(filter(None, take(col.user_agent)))),
            ("referrers", Counter(filter(None, take(col.referrer)))),
            ("ips", Counter(filter(None, take(col.client_ip)))),
            ("not_found", Counter([p.partition("?")[0] for p in itertools.compress(take(col.path), take(found))])),
        ):
            if counts:
                _merge(out, key(kind), counts)
        route_n = Counter(filter(None, take(routes)))
        if route_n:
            _merge(out, key("route_n"), route_n)
            _merge(out, key("route_us"), {route: self.route_us[route] for route in route_n})


def _groups(hosts: Sequence[str], routes: list[str | None], times: list[int]) -> dict[str, _HostGroup]:
    """The requests' positions grouped by hostname (first-seen order; "" for those without one),
    with each group's summed response time per route (a 404/405's None route included)."""
    groups: dict[str, _HostGroup] = {}
    if not any(hosts):
        groups[""] = group = _HostGroup(list(range(len(hosts))))
        _sum_into(group.route_us, zip(routes, times))
        return groups
    distinct = dict.fromkeys(hosts)
    if len(distinct) <= _FEW_HOSTS:  # a pass in C per hostname
        for host in distinct:
            groups[host] = _HostGroup(list(itertools.compress(
                range(len(hosts)), map(operator.eq, hosts, itertools.repeat(host)))))
    else:  # one pass in Python
        for i, host in enumerate(hosts):
            group = groups.get(host)
            if group is None:
                groups[host] = _HostGroup([i])
            else:
                group.positions.append(i)
    for group in groups.values():
        _sum_into(group.route_us, zip(group.take(routes), group.take(times)))
    return groups


#: up to this many hostnames in a batch, each one's positions are found by a pass in C
_FEW_HOSTS = 8


def _sum_into(sums: dict[Any, int], pairs: Iterable[tuple[Any, int]]) -> None:
    """Add each (name, amount) of ``pairs`` to ``sums[name]`` (new names in first-seen order)."""
    get = sums.get
    for name, amount in pairs:
        sums[name] = get(name, 0) + amount


def _merge(out: Increments, key: str, counts: Mapping[str, int]) -> None:
    """Add ``counts`` to ``out``'s row of ``key``, each name cut to the field bound."""
    row = out.counts.get(key)
    if row is None and max(map(len, counts), default=0) <= schema.AGG_FIELD_MAX:
        out.counts[key] = dict(counts)
        return
    for name, amount in counts.items():
        out.add(key, _field(name), amount)


def _error(out: Increments, entry: LogEntry, hour: str, kind: str, message: str) -> None:
    fp = fingerprint(kind, message)
    out.add(schema.stats_error_groups(hour), fp)
    latest = out.latest.setdefault(schema.stats_error_latest(hour), {})
    latest[fp] = dumps({
        "type": kind,
        "message": message[:MESSAGE_MAX],
        "ts": entry.timestamp_ns // 1_000_000,
        "component": entry.component,
        "trace_id": entry.trace_id,
    })


def plan(entries: Iterable[LogEntry]) -> Increments:
    """The aggregate increments of a batch (pure: reads the entries, touches nothing): the errors
    entry by entry, the requests per hour as columns (:func:`_requests_into`)."""
    out = Increments()
    hours: dict[str, list[RequestFields]] = {}
    last_hour_ms = -1
    hour = ""
    current: list[RequestFields] = []  # replaced by the first entry's hour
    for entry in entries:
        ts_ms = entry.timestamp_ns // 1_000_000
        hour_ms = ts_ms - ts_ms % 3_600_000
        if hour_ms != last_hour_ms:
            last_hour_ms, hour = hour_ms, schema.hour_bucket(ts_ms)
            current = hours.get(hour)
            if current is None:
                current = hours[hour] = []
        req = entry.request
        if req is not None:
            current.append(req)
            if req.status_code < 500:
                continue
        error = error_of(entry)
        if error is not None:
            _error(out, entry, hour, *error)
    for hour, requests in hours.items():
        _requests_into(out, hour, requests)
    return out


class KnownFields:
    """The field names of the capped hashes this writer saw full, as the capped-increment script
    replied them (writer side, per store).

    A full hash (``cap`` fields or more) never takes a new field, and fields are never removed, so
    its names are final: a value outside them goes to ``_OTHER`` whoever writes it, and the writer
    can fold it there itself and send plain increments (:func:`planned`), sparing Redis the
    capped script's work on every batch (a full client-IP hash: 500 names read and looked up per
    batch). Exact across processes for that reason. An entry is forgotten after
    :data:`KNOWN_FOR_S` (a deleted and re-created hash is learnt again) and the map is bounded
    (:data:`KNOWN_MAX_KEYS` hashes: the current hour's, as a rule); a forgotten hash goes through
    the capped script again, which replies its names again."""

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: dict[str, tuple[frozenset[str], float]] = {}

    def get(self, key: str, now: float) -> frozenset[str] | None:
        hit = self._names.get(key)
        if hit is None:
            return None
        if now - hit[1] > KNOWN_FOR_S:
            del self._names[key]
            return None
        return hit[0]

    def learn(self, key: str, reply: Any, now: float) -> None:
        """Keep ``reply`` (the script's reply: a list of names once the hash is full, else 0)."""
        if not isinstance(reply, list):
            return
        if len(self._names) >= KNOWN_MAX_KEYS:
            self._names.clear()
        self._names[key] = (frozenset(n.decode("utf-8", "surrogateescape") if isinstance(n, bytes) else str(n)
                                      for n in reply), now)

    def clear(self) -> None:
        """After the keys were deleted (DELETE /logs)."""
        self._names.clear()

    def __len__(self) -> int:
        return len(self._names)


#: seconds a learnt full hash's names are used before the capped script is asked again
KNOWN_FOR_S = 60.0
#: most full hashes remembered (each at most cap + 1 names of at most AGG_FIELD_MAX characters)
KNOWN_MAX_KEYS = 128


@dataclass
class Planned:
    """A batch's aggregate calls, and what the write path must do with their replies."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    #: (index in ``calls``, key) of each capped-increment call: its reply may be the hash's names
    capped: list[tuple[int, str]] = field(default_factory=list)
    #: the known-full hashes sent as plain increments: their expiry is the caller's (no script sets it)
    plain: list[str] = field(default_factory=list)


def planned(entries: Iterable[LogEntry], ttl_s: int, cap: int = schema.AGG_CAP, known: KnownFields | None = None,
            now: float = 0.0) -> Planned:
    """The batch's aggregates as single-key ``EVALSHA`` calls (one per hash, its increments summed
    over the batch): :data:`SCRIPTS`, each setting its hash's expiry ``ttl_s``; for a hash
    ``known`` holds as full, its values outside the known names folded into one ``_OTHER``
    increment here and the pairs sent with the hincrby-pairs script (what the capped script would
    have done with them)."""
    increments = plan(entries)
    out = Planned()
    calls = out.calls
    chain = itertools.chain.from_iterable
    for key, row in increments.counts.items():
        names = known.get(key, now) if known is not None else None
        if names is None:
            out.capped.append((len(calls), key))
            calls.append(("EVALSHA", CAPPED_INCR_SHA, 1, key, cap, ttl_s, *chain(row.items())))
            continue
        kept = {name: row[name] for name in row.keys() & names}
        other = sum(row.values()) - sum(kept.values())
        if other:
            kept[schema.AGG_OTHER] = kept.get(schema.AGG_OTHER, 0) + other
        calls.append(("EVALSHA", HINCRBY_PAIRS_SHA, 1, key, *chain(kept.items())))
        out.plain.append(key)
    for key, latest in increments.latest.items():
        calls.append(("EVALSHA", CAPPED_SET_SHA, 1, key, cap, ttl_s, *chain(latest.items())))
    return out


def commands(entries: Iterable[LogEntry], ttl_s: int, cap: int = schema.AGG_CAP) -> list[tuple[Any, ...]]:
    """:func:`planned`'s calls, without known hashes: every one through :data:`SCRIPTS`."""
    return planned(entries, ttl_s, cap).calls
