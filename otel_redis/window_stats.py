"""Window statistics read from the ``stats:*`` keys, written once for sync and async callers.

``/metrics``, ``/logs/metrics`` and the alert rules (metrics.py, sync) and ``/logs/stats``
(query_stats.py, async) need the same three reads: the proxy hostnames of the window's hours
(``stats:hosts:{hour}``), response-time histograms summed over the window (``stats:rt*``, see
histogram.py) and unique visitors as unions of the hourly HyperLogLogs (``stats:unique_ips``).

Each read is a *plan*: a generator that yields the commands of one pipelined round trip
(:class:`Round`), is sent the replies, and returns its result. The plans hold all the logic (which
keys, how replies reduce); :func:`run_sync` and :func:`run_async` only execute the rounds on a
redis-py client of either kind, and :func:`together` runs several plans in the same round trips.

Unions of HyperLogLogs (:func:`union_counts`) are Cluster-safe: on one server ``PFCOUNT`` reads the
keys where they are; on Redis Cluster (a ``RedisCluster`` client) the keys live in different slots,
so they are copied (``DUMP``, then ``RESTORE`` with a 30 s expiry) to :func:`schema.tmp_hll` keys, whose
hash tag is this process's :data:`TAG`, and counted there. A union of more than :data:`MERGE_CHUNK`
keys is merged with ``PFMERGE`` that many at a time into a scratch key, so no single command merges
hundreds of HyperLogLogs. Scratch keys are unlinked in the same round trip.

Settled buckets (an hour that ended more than :data:`COMPLETE_AFTER_MS` ago) no longer change,
except for records that arrive late. With ``cache=True`` their decoded hour histograms are kept
:data:`CACHE_TTL_S` in this process, and the union of a group's settled HyperLogLogs is merged once
into a cache key (``tmp:hll:{TAG}:u-{digest}``, the digest of the keys it holds; used for
:data:`CACHE_TTL_S`, expiring a minute later; at most :data:`UNION_CACHE_MAX` per process, the least
recently used unlinked), so a request merges that union with the current hour only. Late records
into a settled hour show within :data:`CACHE_TTL_S`.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Generator, Hashable, Iterable, Mapping, Sequence, TypeVar

from . import histogram, schema

T = TypeVar("T")
HOUR_MS = 3_600_000

#: HyperLogLogs merged per PFMERGE or PFCOUNT (bounds how long one command runs)
MERGE_CHUNK = 32
#: a bucket counts as settled this long after its end (batches in flight have landed)
COMPLETE_AFTER_MS = 120_000
#: how long cached histograms and unions of settled buckets are used
CACHE_TTL_S = 300.0
#: decoded hour histograms kept (by key)
HISTOGRAM_CACHE_MAX = 4096
#: cached HyperLogLog unions kept in Redis per process (about 12 KB each); the oldest are unlinked
UNION_CACHE_MAX = 256
#: lifetime of scratch copies (they are unlinked at once; this only covers a crash in between)
SCRATCH_TTL_MS = 30_000
#: hash tag of this process's scratch and cache keys: one slot, so PFMERGE over them is legal on Cluster
TAG = secrets.token_hex(6)

#: a key with whether its bucket is settled (no longer written to, so cacheable)
Source = tuple[str, bool]
Call = tuple[str, tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class Round:
    """The commands of one pipelined round trip. Error replies raise unless ``tolerate_errors``,
    then they are passed to the plan as exception objects."""

    calls: list[Call]
    tolerate_errors: bool = False


Plan = Generator[Round, list[Any], T]


def call(name: str, *args: Any, **kwargs: Any) -> Call:
    return (name, args, kwargs)


def _checked(round_: Round, replies: list[Any]) -> list[Any]:
    if not round_.tolerate_errors:
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
    return replies


#: commands redis-py's cluster pipelines refuse as methods (a guard against keys of several slots);
#: the plans give them keys of one slot only, so they are queued by name, which both clients accept
_BY_NAME = {"pfcount": "PFCOUNT", "pfmerge": "PFMERGE", "unlink": "UNLINK"}


def _queue(client: Any, calls: list[Call]) -> Any:
    pipe = client.pipeline(transaction=False)
    for name, args, kwargs in calls:
        raw = _BY_NAME.get(name)
        if raw is not None and not kwargs:
            pipe.execute_command(raw, *args)
        else:
            getattr(pipe, name)(*args, **kwargs)
    return pipe


def run_sync(client: Any, plan: Plan[T]) -> T:
    """Drive ``plan`` over a sync redis-py client (``Redis`` or ``RedisCluster``)."""
    try:
        round_ = next(plan)
        while True:
            replies = _queue(client, round_.calls).execute(raise_on_error=False) if round_.calls else []
            round_ = plan.send(_checked(round_, replies))
    except StopIteration as done:
        return done.value


async def run_async(client: Any, plan: Plan[T]) -> T:
    """Drive ``plan`` over a ``redis.asyncio`` client."""
    try:
        round_ = next(plan)
        while True:
            replies = await _queue(client, round_.calls).execute(raise_on_error=False) if round_.calls else []
            round_ = plan.send(_checked(round_, replies))
    except StopIteration as done:
        return done.value


def together(*plans: Plan[Any]) -> Plan[tuple[Any, ...]]:
    """Run ``plans`` side by side: their n-th rounds share one round trip. Returns their results."""
    results: list[Any] = [None] * len(plans)
    live: dict[int, Round] = {}
    for i, plan in enumerate(plans):
        try:
            live[i] = next(plan)
        except StopIteration as done:
            results[i] = done.value
    while live:
        order = list(live.items())
        replies = yield Round([c for _i, r in order for c in r.calls], tolerate_errors=True)
        live, at = {}, 0
        for i, round_ in order:
            part = replies[at : at + len(round_.calls)]
            at += len(round_.calls)
            try:
                live[i] = plans[i].send(_checked(round_, part))
            except StopIteration as done:
                results[i] = done.value
    return tuple(results)


def is_cluster(client: Any) -> bool:
    """A Redis Cluster client (sync or asyncio): multi-key commands only within one hash slot."""
    return type(client).__name__ == "RedisCluster"


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def counts(mapping: Mapping[Any, Any]) -> dict[str, int]:
    """An HGETALL reply of counters as ``{field: int}`` (fields that are not integers skipped)."""
    out: dict[str, int] = {}
    for k, v in mapping.items():
        try:
            out[text(k)] = int(v)
        except (TypeError, ValueError):
            continue
    return out


# ---------------------------------------------------------------------------- buckets


@functools.lru_cache(maxsize=8192)
def _bucket_end_ms(bucket: str) -> int:
    return schema.bucket_span_ms(bucket)[1]


def settled(bucket: str, now_ms: int) -> bool:
    """Whether an hour bucket is over (and its batches have landed). Minute buckets never count:
    they only serve windows short enough to read them all."""
    return not schema.is_minute_bucket(bucket) and _bucket_end_ms(bucket) + COMPLETE_AFTER_MS <= now_ms


def hosts_by_hour(buckets: Sequence[str]) -> Plan[dict[str, list[str]]]:
    """Proxy hostnames with requests in each hour bucket (``stats:hosts:{hour}``; no SCAN)."""
    replies = yield Round([call("smembers", schema.stats_hosts(b)) for b in buckets])
    return {b: sorted(text(m) for m in members) for b, members in zip(buckets, replies)}


def visitor_sources(by_hour: Mapping[str, Sequence[str]], hostname: str | None, now_ms: int) -> list[Source]:
    """The hourly HyperLogLogs of ``hostname`` (None: every hostname) over the buckets of ``by_hour``."""
    return [
        (schema.stats_unique_ips(h, b), settled(b, now_ms))
        for b, hosts in by_hour.items()
        for h in hosts
        if hostname is None or h == hostname
    ]


# ---------------------------------------------------------------------------- histograms


@dataclass
class Histogram:
    """A window's merged response-time histogram (bucket -> count) and its ``4xx``/``5xx`` counts."""

    counts: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(histogram.ERROR_FIELDS, 0))

    @classmethod
    def of(cls, decoded: Iterable[Mapping[Any, int]]) -> "Histogram":
        rows = list(decoded)
        return cls(histogram.merge(rows), histogram.error_counts(rows))

    @classmethod
    def total(cls, parts: Iterable["Histogram"]) -> "Histogram":
        parts = list(parts)
        errors = {f: sum(p.errors[f] for p in parts) for f in histogram.ERROR_FIELDS}
        return cls(histogram.merge(p.counts for p in parts), errors)

    @property
    def count(self) -> int:
        return histogram.count(self.counts)


def histogram_sources(
    start_ms: int, end_ms: int, hostname: str | None, now_ms: int, *, minute_edges: bool = True, shards: int = 1
) -> list[Source]:
    """Histogram hashes summing to the window's distribution: with ``minute_edges`` those of
    :func:`schema.rt_window_keys` (hour hashes inside, minute hashes at the edges); without, the hour
    hashes that overlap the window (a day reads 25 hashes per hostname instead of up to 140). On a
    Redis Cluster layout of ``shards`` parts, every part of each (their sum is the hash)."""
    key = schema.stats_rt_all if hostname is None else functools.partial(schema.stats_rt, hostname)
    if minute_edges:
        keys = schema.rt_window_keys(start_ms, end_ms, hostname, now_ms)
        sources = [(k, settled(":".join(k.rsplit(":", 2)[1:]), now_ms)) for k in keys]
    else:
        sources = [(key(b), settled(b, now_ms)) for b in schema.hour_buckets(start_ms, end_ms)]
    return [(part, done) for k, done in sources for part in schema.sharded(k, shards)]


def summed_counts(rows: Iterable[Mapping[Any, Any]]) -> dict[str, int]:
    """:func:`counts` of several parts of one counter hash, added up (the Cluster layout's merge)."""
    total: dict[str, int] = {}
    for row in rows:
        for name, value in counts(row).items():
            total[name] = total.get(name, 0) + value
    return total


def _decode(row: Mapping[Any, Any]) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for name, value in row.items():
        name = text(name)
        out[name if name in histogram.ERROR_FIELDS else int(name)] = int(value)
    return out


def decode_histogram(row: Mapping[Any, Any]) -> dict[Any, int]:
    """An HGETALL reply of a response-time histogram hash: bucket (int) or error class -> count."""
    return _decode(row)


#: decoded hour histograms of settled hours, by key: (monotonic expiry, decoded hash)
_histograms: OrderedDict[str, tuple[float, dict[Any, int]]] = OrderedDict()
_lock = threading.Lock()


def histograms(plan: Mapping[Hashable, Sequence[Source]], *, cache: bool = False) -> Plan[dict[Any, Histogram]]:
    """Merged histogram per scope of ``plan`` (scope -> its sources), one round trip; each key is read
    once however many scopes share it; with ``cache`` settled hour histograms come from the cache."""
    clock = time.monotonic()
    known: dict[str, dict[Any, int]] = {}
    if cache:
        with _lock:
            for sources in plan.values():
                for key, done in sources:
                    hit = _histograms.get(key) if done else None
                    if hit is not None and hit[0] > clock:
                        known[key] = hit[1]
    to_read = list(dict.fromkeys(key for sources in plan.values() for key, _d in sources if key not in known))
    replies = yield Round([call("hgetall", key) for key in to_read])
    for key, row in zip(to_read, replies):
        known[key] = _decode(row)
    if cache:
        keep = {key for sources in plan.values() for key, done in sources if done} & set(to_read)
        with _lock:
            for key in keep:
                _histograms[key] = (clock + CACHE_TTL_S, known[key])
                _histograms.move_to_end(key)
            while len(_histograms) > HISTOGRAM_CACHE_MAX:
                _histograms.popitem(last=False)
    return {scope: Histogram.of(known[key] for key, _d in sources) for scope, sources in plan.items()}


# ---------------------------------------------------------------------------- unique visitors

#: cache keys of unions of settled HyperLogLogs this process built, with their monotonic expiry
_unions: OrderedDict[str, float] = OrderedDict()


def _union_key(keys: Sequence[str]) -> str:
    digest = hashlib.blake2b("\n".join(keys).encode(), digest_size=12).hexdigest()
    return schema.tmp_hll(TAG, f"u-{digest}")


def _merge_into(dest: str, sources: Sequence[str]) -> list[Call]:
    if not sources:
        return [call("pfadd", dest)]  # an empty HyperLogLog (PFMERGE needs a source before Redis 7)
    return [call("pfmerge", dest, *sources[i : i + MERGE_CHUNK]) for i in range(0, len(sources), MERGE_CHUNK)]


def union_counts(groups: Sequence[Sequence[Source]], *, cluster: bool, cache: bool = False) -> Plan[list[int]]:
    """Distinct elements of each group's union of HyperLogLogs (missing keys count as empty).

    One round trip on one server, two on Cluster (see the module docstring). With ``cache`` a
    group's settled keys are counted through their cached union, built in the same round trip
    when this process has none; one more pass when a cached union vanished (DELETE /logs, eviction).
    """
    groups = [list(dict.fromkeys(g)) for g in groups]
    unions: dict[int, tuple[str, list[str]]] = {}  # group -> (cache key, the settled keys it holds)
    if cache:
        for i, group in enumerate(groups):
            done = sorted(k for k, s in group if s)
            if done:
                unions[i] = (_union_key(done), done)
    union_keys = {ck for ck, _d in unions.values()}
    with _lock:
        clock = time.monotonic()
        trusted = {ck for ck in union_keys if _unions.get(ck, 0.0) > clock}
    while True:
        builds = {ck: done for ck, done in unions.values() if ck not in trusted}
        verify = sorted(trusted)
        members = [
            [unions[i][0]] + [k for k, s in group if not s] if i in unions else [k for k, _s in group]
            for i, group in enumerate(groups)
        ]
        originals = list(dict.fromkeys(
            [k for done in builds.values() for k in done] + [k for ks in members for k in ks if k not in union_keys]
        ))
        calls: list[Call] = []
        if cluster:  # copy the originals under TAG (and check the cached unions are still there)
            replies = yield Round(
                [call("dump", k) for k in originals] + [call("exists", ck) for ck in verify], tolerate_errors=True
            )
            gone = {ck for ck, n in zip(verify, replies[len(originals) :]) if n == 0}
            if gone:
                trusted -= _forget_unions(gone)
                continue
            read = secrets.token_hex(4)
            where = {}
            for n, (key, blob) in enumerate(zip(originals, replies)):
                if isinstance(blob, bytes):
                    where[key] = schema.tmp_hll(TAG, f"{read}-{n}")
                    calls.append(call("restore", where[key], SCRATCH_TTL_MS, blob, replace=True))
            scratch = [*where.values()]
        else:
            where = {k: k for k in originals}
            calls += [call("exists", ck) for ck in verify]  # checked once the round is back
            scratch = []
        where.update((ck, ck) for ck in union_keys)
        for ck, done in builds.items():
            calls += _merge_into(ck, [where[k] for k in done if k in where])
            calls.append(call("pexpire", ck, int((CACHE_TTL_S + 60) * 1000)))
        merged = schema.tmp_hll(TAG, f"{secrets.token_hex(4)}-union")
        answers: list[tuple[int, int]] = []  # (group, index of its PFCOUNT reply)
        for i, keys in enumerate(members):
            sources = [where[k] for k in keys if k in where]
            if len(sources) > MERGE_CHUNK:
                calls += [call("unlink", merged), *_merge_into(merged, sources)]
                sources = [merged]
            if sources:
                calls.append(call("pfcount", *sources))
                answers.append((i, len(calls) - 1))
        calls.append(call("unlink", *scratch, merged))
        evicted = _register(union_keys) if cache else []
        if evicted:
            calls.append(call("unlink", *evicted))
        replies = yield Round(calls)
        if not cluster:
            gone = {ck for ck, n in zip(verify, replies) if n == 0}
            if gone:
                trusted -= _forget_unions(gone)
                continue
        out = [0] * len(groups)
        for i, at in answers:
            out[i] = int(replies[at])
        return out


def _register(used: Iterable[str]) -> list[str]:
    """Mark cache keys as used now (fresh ones valid for :data:`CACHE_TTL_S`); returns the keys pushed
    out beyond :data:`UNION_CACHE_MAX`, least recently used first, to be unlinked."""
    evicted: list[str] = []
    with _lock:
        expiry = time.monotonic() + CACHE_TTL_S
        for ck in used:
            if ck not in _unions or _unions[ck] <= time.monotonic():
                _unions[ck] = expiry
            _unions.move_to_end(ck)
        while len(_unions) > UNION_CACHE_MAX:
            evicted.append(_unions.popitem(last=False)[0])
    return evicted


def _forget_unions(keys: set[str]) -> set[str]:
    with _lock:
        for ck in keys:
            _unions.pop(ck, None)
    return keys


def forget_cached() -> None:
    """Drop cached histograms and unions (after DELETE /logs, which also removes ``tmp:hll:*``)."""
    with _lock:
        _histograms.clear()
        _unions.clear()
