"""The retention job: remove what is past the retention table, in small steps, and say what it removed.

The write path (store.py) already gives every record an absolute expiry, trims each index by score
and each stream by age at most once a minute per key. This job is the safety net for what that
cannot reach, with the same boundaries (a member or record is past retention when its time is older
than ``now - retention``, the write path's trim cut-off):

1. indexes (``SCAN MATCH idx:*`` filtered by :data:`schema.INDEX_PATTERNS`, type zset): members past
   the index's retention (:func:`schema.index_retention`) are removed in chunks
   (``ZRANGEBYSCORE -inf (cutoff LIMIT 0 n`` then ``ZREM`` of exactly those members), never one
   unbounded ``ZREMRANGEBYSCORE``; then members whose record key no longer exists (dangling: record
   expired early, deleted, or retention shortened) are found by rank windows (``ZRANGE lo hi``,
   newest first) and pipelined ``EXISTS``, and removed. An index without a TTL gets one.
2. records (``SCAN MATCH`` over ``req:*`` and ``log:*``): a record older than its class's retention
   (:func:`schema.stored_record_retention`) is unlinked; this matters when a retention was shortened
   after the record was written with a longer expiry.
3. streams: ``XTRIM MINID ~ cutoff LIMIT n`` repeated, then one exact ``XTRIM MINID`` for the rest of
   the last partly-old node (at most one macro node of entries).
4. stats keys (``SCAN MATCH stats:*``): a key whose hour (or minute) bucket is past the stats
   retention (minute response-time buckets: :data:`schema.RT_MINUTE_TTL_S`) is unlinked; one without
   a TTL, or with a longer one than its bucket allows, gets ``EXPIREAT`` bucket end + retention.

Every command touches at most ``batch`` members or keys, so none blocks Redis for long (see
``benchmarks/bench_retention.py``: the longest single command over 1,000,000 expired members).
No command spans keys, so the job runs unchanged against each node of a Redis Cluster.
"""

from __future__ import annotations

import fnmatch
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping

import redis

from . import schema
from .config import BY_NAME, Retention, Settings, read
from .connection import master_clients, read_layout
from .store import REFRESH_INTERVAL_S


@dataclass(frozen=True)
class CleanupSettings:
    """How the job runs: ``OTEL_REDIS_CLEANUP_*`` variables (see the README)."""

    interval_s: int = 3600
    batch: int = 500
    scan_count: int = 500
    check_dangling: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "CleanupSettings":
        env = os.environ if env is None else env
        row = {name: read(BY_NAME[f"OTEL_REDIS_CLEANUP_{name.upper()}"], env)  # the settings table's rows
               for name in ("interval_s", "batch", "scan_count", "dangling")}
        return cls(interval_s=row["interval_s"], batch=row["batch"], scan_count=row["scan_count"],
                   check_dangling=row["dangling"])


@dataclass
class CleanupReport:
    """What one run removed (and how much work it took)."""

    indexes_scanned: int = 0
    members_past_retention: int = 0
    members_dangling: int = 0
    records_scanned: int = 0
    records_deleted: int = 0
    stream_entries_trimmed: dict[str, int] = field(default_factory=dict)
    stats_keys_scanned: int = 0
    stats_keys_deleted: int = 0
    expiries_set: int = 0
    commands: int = 0
    duration_s: float = 0.0

    @property
    def removed(self) -> int:
        return (
            self.members_past_retention
            + self.members_dangling
            + self.records_deleted
            + sum(self.stream_entries_trimmed.values())
            + self.stats_keys_deleted
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["removed"] = self.removed
        out["duration_s"] = round(self.duration_s, 3)
        return out


def _s(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


class CleanupJob:
    """One cleanup run over a Redis database (or one Cluster node's client)."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        cleanup: CleanupSettings | None = None,
        *,
        now_ms: int | None = None,
    ) -> None:
        self.client = client
        self.retention: Retention = settings.retention
        self.cfg = cleanup or CleanupSettings()
        self.now_ms = now_ms
        self.report = CleanupReport()

    # ------------------------------------------------------------------ entry point

    def run(self) -> CleanupReport:
        started = time.perf_counter()
        if self.now_ms is None:
            self.now_ms = int(time.time() * 1000)
        for key in self._scan("idx:*", "zset"):
            if any(fnmatch.fnmatchcase(key, p) for p in schema.INDEX_PATTERNS):
                self.clean_index(key)
        self.clean_records()
        shards = read_layout(self.client)
        for stream in schema.STREAMS:
            self.report.stream_entries_trimmed[stream] = sum(self.trim_stream(part) for part in schema.sharded(stream, shards))
        self.clean_stats()
        self.report.duration_s = time.perf_counter() - started
        return self.report

    # ------------------------------------------------------------------ helpers

    def _cmd(self, *args: Any) -> Any:
        self.report.commands += 1
        return self.client.execute_command(*args)

    def _scan(self, match: str, type_: str | None = None) -> Iterator[str]:
        """SCAN the whole keyspace: on a Redis Cluster, every master in turn."""
        for node in master_clients(self.client):
            cursor: int | bytes = 0
            while True:
                args: list[Any] = ["SCAN", cursor, "MATCH", match, "COUNT", self.cfg.scan_count]
                if type_:
                    args += ["TYPE", type_]
                self.report.commands += 1
                cursor, keys = node.execute_command(*args)
                for key in keys:
                    yield _s(key)
                if int(cursor) == 0:
                    break

    def _cutoff(self, seconds: int) -> int:
        assert self.now_ms is not None
        return self.now_ms - seconds * 1000

    # ------------------------------------------------------------------ 1. indexes

    def clean_index(self, key: str) -> None:
        """Members past retention (chunked), then dangling members, then a TTL if there is none."""
        self.report.indexes_scanned += 1
        keep = schema.index_retention(key, self.retention)
        cutoff = self._cutoff(keep)
        batch = self.cfg.batch
        while True:
            members = self._cmd("ZRANGEBYSCORE", key, "-inf", f"({cutoff}", "LIMIT", 0, batch)
            if not members:
                break
            self.report.members_past_retention += int(self._cmd("ZREM", key, *members))
            if len(members) < batch:
                break
        if self.cfg.check_dangling:
            self._remove_dangling(key)
        self._ensure_index_ttl(key, keep)

    def _remove_dangling(self, key: str) -> None:
        """Walk the index by rank from the newest member down, ``batch`` members per ``ZRANGE``.

        Not ``ZSCAN``: while a sorted set's dict shrinks after mass removals, a ZSCAN call visits
        both hash tables and can run for tens of milliseconds (measured: 93 ms on a 1M-member set).
        Walking down by rank is O(log N + batch) per call, and removing members at or above the
        current position never shifts the ranks still to visit.
        """
        batch = self.cfg.batch
        hi = int(self._cmd("ZCARD", key)) - 1
        while hi >= 0:
            lo = max(0, hi - batch + 1)
            members = self._cmd("ZRANGE", key, lo, hi)
            hi = lo - 1
            if not members:
                continue
            pipe = self.client.pipeline(transaction=False)
            for member in members:
                pipe.execute_command("EXISTS", member)
            exists = pipe.execute()
            self.report.commands += len(members)
            gone = [m for m, e in zip(members, exists) if not e]
            if gone:
                self.report.members_dangling += int(self._cmd("ZREM", key, *gone))

    def _ensure_index_ttl(self, key: str, keep: int) -> None:
        if int(self._cmd("TTL", key)) != -1:
            return
        newest = self._cmd("ZRANGE", key, -1, -1, "WITHSCORES")
        if not newest:
            return
        score = float(newest[1] if not isinstance(newest[0], (tuple, list)) else newest[0][1])
        self._cmd("EXPIREAT", key, int(score // 1000) + keep + REFRESH_INTERVAL_S)
        self.report.expiries_set += 1

    # ------------------------------------------------------------------ 2. records

    def clean_records(self) -> None:
        """Unlink records older than their class's retention (only those old enough are read)."""
        shortest = self._cutoff(self.retention.requests)
        candidates: list[str] = []
        for key in self._scan(schema.RECORD_SCAN_PATTERN, "hash"):
            if not schema.is_record_key(key):
                continue
            self.report.records_scanned += 1
            try:
                ts = schema.record_time_ms(key)
            except (IndexError, ValueError):
                continue
            if ts < shortest:
                candidates.append(key)
                if len(candidates) >= self.cfg.batch:
                    self._delete_past(candidates)
                    candidates = []
        if candidates:
            self._delete_past(candidates)

    def _delete_past(self, keys: list[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, *schema.RECORD_CLASS_FIELDS)
        rows = pipe.execute()
        self.report.commands += len(keys)
        doomed = []
        for key, fields in zip(keys, rows):
            if not any(v is not None for v in fields):
                continue  # expired meanwhile
            keep = schema.stored_record_retention(key, fields, self.retention)
            if schema.record_time_ms(key) < self._cutoff(keep):
                doomed.append(key)
        if doomed:
            pipe = self.client.pipeline(transaction=False)
            for key in doomed:
                pipe.execute_command("UNLINK", key)  # one key: no cross-slot split in a cluster pipeline
            self.report.records_deleted += sum(int(n) for n in pipe.execute())
            self.report.commands += len(doomed)

    # ------------------------------------------------------------------ 3. streams

    def trim_stream(self, stream: str) -> int:
        """Entries older than the requests retention (the write path's MINID), in LIMITed steps;
        returns how many were removed."""
        minid = str(self._cutoff(self.retention.requests))
        removed = 0
        while True:
            n = int(self._cmd("XTRIM", stream, "MINID", "~", minid, "LIMIT", self.cfg.batch))
            removed += n
            if n == 0:
                break
        removed += int(self._cmd("XTRIM", stream, "MINID", minid))
        return removed

    # ------------------------------------------------------------------ 4. stats

    def clean_stats(self) -> None:
        """Stats keys past their bucket's retention are unlinked; missing or too long TTLs corrected."""
        batch: list[tuple[str, int]] = []
        for key in self._scan(schema.STATS_PATTERN):
            bucket = schema.stats_key_bucket(key)
            if bucket is None:
                continue
            self.report.stats_keys_scanned += 1
            _, end_ms = schema.bucket_span_ms(bucket)
            keep = schema.RT_MINUTE_TTL_S if schema.is_minute_bucket(bucket) else self.retention.stats
            batch.append((key, end_ms // 1000 + keep + REFRESH_INTERVAL_S))
            if len(batch) >= self.cfg.batch:
                self._expire_stats(batch)
                batch = []
        if batch:
            self._expire_stats(batch)

    def _expire_stats(self, batch: list[tuple[str, int]]) -> None:
        assert self.now_ms is not None
        now_s = self.now_ms // 1000
        pipe = self.client.pipeline(transaction=False)
        for key, _ in batch:
            pipe.ttl(key)
        ttls = pipe.execute()
        self.report.commands += len(batch)
        ops: list[str] = []
        pipe = self.client.pipeline(transaction=False)
        for (key, deadline), ttl in zip(batch, ttls):
            ttl = int(ttl)
            if ttl == -2:
                continue  # gone meanwhile
            if deadline <= now_s:
                pipe.execute_command("UNLINK", key)  # one key: no cross-slot split in a cluster pipeline
                ops.append("unlink")
            elif ttl == -1 or now_s + ttl > deadline:
                pipe.expireat(key, deadline)
                ops.append("expire")
        if not ops:
            return
        results = pipe.execute()
        self.report.commands += len(ops)
        for op, result in zip(ops, results):
            if op == "unlink":
                self.report.stats_keys_deleted += int(result)
            elif result:
                self.report.expiries_set += 1


def run_cleanup(
    client: redis.Redis, settings: Settings, cleanup: CleanupSettings | None = None, now_ms: int | None = None
) -> CleanupReport:
    """Run the job once; see the module docstring for what it does."""
    return CleanupJob(client, settings, cleanup, now_ms=now_ms).run()
