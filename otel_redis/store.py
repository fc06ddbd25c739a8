"""The one write path (a batch of LogEntry -> one pipelined round trip) and the basic read path.

Write rules (see the README's key schema):
- each record is a hash with an absolute expiry (``EXPIREAT`` = record time + its retention);
- each stream gets one entry per record holding the record key (``k``);
- index members are added with one ``ZADD`` per distinct index key per batch, scored by record time;
- index and stats keys get their ``EXPIRE`` (and indexes a ``ZREMRANGEBYSCORE`` of members past
  retention) at most once per :data:`REFRESH_INTERVAL_S` per key and process; the expiry carries that
  interval as margin, so a key never expires before its newest member is past retention and an
  index never keeps a member whose record has expired;
- streams are trimmed by age (``MINID``) and length (``MAXLEN``), approximately, once per interval.
No command spans hash slots, so the pipeline works unchanged against Redis Cluster.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
from collections import OrderedDict, defaultdict
from typing import Any, Iterable, Sequence

import redis

from . import histogram, resp, schema
from .config import Settings
from .client_ip import valid_ip
from .histogram import bucket_of, error_field
from .paths import index_path
from .record import LogEntry

#: request methods indexed as they are; any other goes to ``_OTHER`` (OTel's convention)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"})
OTHER = "_OTHER"

#: only set the hostname of a record that still exists (HSET on an expired key would recreate it)
_PATCH_HOSTNAME = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'client_hostname', ARGV[1])
  return 1
end
return 0
"""

REFRESH_INTERVAL_S = 60
#: attribute that marks a track_oauth_flow record; its key is appended to ``oauth:flow:{session}``
OAUTH_FLOW_STEP = "oauth.flow.step"
OAUTH_FLOW_MAX_STEPS = 200
_REFRESH_CACHE_MAX = 100_000


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


_uid = _Uid()


class _RefreshCache:
    """Remembers when a key's TTL was last refreshed by this process (bounded, LRU)."""

    def __init__(self, max_size: int = _REFRESH_CACHE_MAX) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max = max_size
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

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


class _BoundedNames:
    """The first ``limit`` distinct values seen by this process pass; later new ones become ``_OTHER``.

    Keeps client-controlled names (the Host header) from creating unbounded index and stats keys.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self.overflowed = 0

    def __call__(self, name: str) -> str:
        if name in self._seen:
            return name
        if len(self._seen) < self.limit:
            self._seen.add(name)
            return name
        self.overflowed += 1
        return OTHER


class RedisStore:
    """Write and read records under the schema; thread-safe, one pipeline per batch."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._refresh = _RefreshCache()
        self._errors: list[Exception] = []
        self._hostnames = _BoundedNames(settings.max_hostnames)
        self._patch_script: Any = None

    # ------------------------------------------------------------------ write path

    def write(self, entries: Sequence[LogEntry]) -> list[str]:
        """Store ``entries`` in one round trip; returns their record keys.

        Connection errors are retried with backoff by the client's Retry (see connection.py) and
        re-raised once the retries are used up. Per-command errors (for example a foreign key of the
        wrong type) do not fail the batch; :meth:`last_errors` returns them.
        """
        if not entries:
            return []
        commands = resp.Commands()
        keys = self._plan(entries, commands)
        results = resp.execute(self.client, commands.args)
        self._errors = [r for r in results if isinstance(r, Exception)]
        return keys

    def forget_refreshes(self) -> None:
        """After the keys were deleted (DELETE /logs): set TTLs again on the next write of each key."""
        self._refresh.clear()

    def last_errors(self) -> list[Exception]:
        return list(self._errors)

    def _plan(self, entries: Sequence[LogEntry], pipe: Any) -> list[str]:
        settings = self.settings
        retention = settings.retention
        now = time.time()
        now_ms = int(now * 1000)
        zadds: dict[str, dict[str, int]] = defaultdict(dict)
        hincr: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        pfadds: dict[str, set[str]] = defaultdict(set)
        hosts: dict[str, set[str]] = defaultdict(set)
        stats_keys: set[str] = set()
        minute_keys: set[str] = set()
        streams: set[str] = set()
        flows: dict[str, list[str]] = {}
        interned: dict[str, bytes] = {}
        keys: list[str] = []

        for entry in entries:
            ts_ms = entry.timestamp_ms
            req = entry.request
            if req is not None:
                key = schema.request_record_key(ts_ms, _uid.next(), req.client_ip)
                stream = schema.STREAM_REQUESTS
                indexes = self._request_indexes(entry)
                hour = schema.hour_bucket(ts_ms)
                skey = schema.stats_requests(hour)
                hincr[skey]["total"] += 1
                hincr[skey][f"status_{req.status_code}"] += 1
                stats_keys.add(skey)
                if req.is_error:
                    ekey = schema.stats_errors(hour)
                    hincr[ekey][str(req.status_code)] += 1
                    stats_keys.add(ekey)
                host = self._hostnames(req.proxy_hostname) if req.proxy_hostname else ""
                if req.client_ip and host:
                    ukey = schema.stats_unique_ips(host, hour)
                    pfadds[ukey].add(req.client_ip)
                    stats_keys.add(ukey)
                pkey = schema.stats_paths(hour)
                hincr[pkey][f"{self._method(req.method)} {index_path(req.route, req.path, req.status_code)}"] += 1
                stats_keys.add(pkey)
                rt_bucket = str(bucket_of(req.response_time_ms))
                minute = schema.minute_bucket(ts_ms)
                rt_keys = [schema.stats_rt_all(minute), schema.stats_rt_all(hour)]
                if host:
                    rt_keys += [schema.stats_rt(host, minute), schema.stats_rt(host, hour)]
                error_class = error_field(req.status_code)
                for rkey in rt_keys:
                    hincr[rkey][rt_bucket] += 1
                    if error_class:
                        hincr[rkey][error_class] += 1
                if host:
                    hosts[schema.stats_hosts(hour)].add(host)
                stats_keys.update(rt_keys[1::2])
                minute_keys.update(rt_keys[0::2])
                is_oauth = False
            else:
                key = schema.log_record_key(ts_ms, _uid.next())
                stream = schema.STREAM_LOGS
                indexes, is_oauth = self._log_indexes(entry)
                flow = entry.attributes.get(OAUTH_FLOW_STEP)
                if flow is not None:
                    is_oauth = True
                    session = entry.index_value("session")
                    if session:
                        flows.setdefault(schema.oauth_flow(session), []).append(key)
                hour = schema.hour_bucket(ts_ms)
                skey = schema.stats_logs(hour)
                hincr[skey]["total"] += 1
                hincr[skey][f"level_{entry.level}"] += 1
                stats_keys.add(skey)
                if entry.event:
                    evkey = schema.stats_events(hour)
                    hincr[evkey][entry.event] += 1
                    stats_keys.add(evkey)
            keys.append(key)
            ttl = schema.record_retention(entry.is_error, is_oauth, retention)
            pipe.hset(key, mapping=schema.encode_entry(entry, interned))
            pipe.expireat(key, max(ts_ms // 1000 + ttl, int(now) + 1))
            pipe.xadd(stream, {"k": key})
            streams.add(stream)
            for index in indexes:
                zadds[index][key] = ts_ms

        for index, members in zadds.items():
            pipe.zadd(index, members)
            if self._refresh.due(index, now):
                keep = schema.index_retention(index, retention)
                pipe.zremrangebyscore(index, "-inf", f"({now_ms - keep * 1000}")
                pipe.expire(index, keep + REFRESH_INTERVAL_S)
        for skey, counts in hincr.items():
            for fieldname, amount in counts.items():
                pipe.hincrby(skey, fieldname, amount)
        for ukey, members in pfadds.items():
            pipe.pfadd(ukey, *members)
        for hkey, names in hosts.items():
            pipe.sadd(hkey, *names)
            stats_keys.add(hkey)
        for skey in stats_keys:
            if self._refresh.due(skey, now):
                pipe.expire(skey, retention.stats + REFRESH_INTERVAL_S)
        for mkey in minute_keys:
            if self._refresh.due(mkey, now):
                pipe.expire(mkey, schema.RT_MINUTE_TTL_S)
        # shared long values: written (and their TTL renewed) by every batch that references them,
        # so a value never expires before a record pointing at it
        value_ttl = max(retention.requests, retention.errors, retention.oauth) + REFRESH_INTERVAL_S
        for vkey, raw in interned.items():
            pipe.set(vkey, raw, ex=value_ttl)
        flow_ttl = settings.oauth_flow_ttl_s
        for fkey, members in flows.items():
            pipe.rpush(fkey, *members)
            pipe.ltrim(fkey, -OAUTH_FLOW_MAX_STEPS, -1)
            pipe.expire(fkey, flow_ttl)  # per session: the flow lives flow_ttl after its last step
        for stream in streams:
            if self._refresh.due(stream, now):
                pipe.xtrim(stream, minid=f"{now_ms - retention.requests * 1000}", approximate=True)
                pipe.xtrim(stream, maxlen=settings.stream_maxlen, approximate=True)
                pipe.expire(stream, retention.requests + REFRESH_INTERVAL_S)
        return keys

    def _log_indexes(self, entry: LogEntry) -> tuple[list[str], bool]:
        out = [schema.IDX_LOG_ALL, schema.idx_log_level(entry.level)]
        if entry.component:
            out.append(schema.idx_log_component(entry.component))
        if entry.event:
            out.append(schema.idx_log_event(entry.event))
        if entry.trace_id:
            out.append(schema.idx_trace(entry.trace_id))
        if entry.severity_number >= 17:
            out.append(schema.IDX_LOG_ERRORS)
        for name in ("ip", "client", "user", "session", "host"):
            value = entry.index_value(name)
            if value:
                out.append(schema.idx_log_field(name, value))
        oauth_event = entry.attributes.get("oauth.event_type")
        is_oauth = bool(oauth_event)
        if is_oauth:
            out.append(schema.idx_oauth_event(str(oauth_event)))
            client = entry.index_value("client")
            user = entry.index_value("user")
            if client:
                out.append(schema.idx_oauth_client(client))
            if user:
                out.append(schema.idx_oauth_user(user))
            ip = entry.index_value("ip")
            if ip:
                out.append(schema.idx_oauth_ip(ip))
        return out, is_oauth

    def _request_indexes(self, entry: LogEntry) -> list[str]:
        req = entry.request
        assert req is not None
        method = self._method(req.method)
        out = [
            schema.IDX_REQ_ALL,
            schema.idx_req_status(req.status_code),
            schema.idx_req_method(method),
            schema.idx_req_path(method, index_path(req.route, req.path, req.status_code)),
        ]
        if req.client_ip and valid_ip(req.client_ip):
            out.append(schema.idx_req_ip(req.client_ip))
        if req.client_hostname:
            out.append(schema.idx_req_fqdn(req.client_hostname))
        if req.proxy_hostname:
            out.append(schema.idx_req_host(self._hostnames(req.proxy_hostname)))
        if req.user_id:
            out.append(schema.idx_req_user(req.user_id))
        if req.oauth_client_id:
            out.append(schema.idx_req_client(req.oauth_client_id))
        if req.session_id:
            out.append(schema.idx_req_session(req.session_id))
        if req.is_error:
            out.append(schema.IDX_REQ_ERRORS)
        if req.response_time_ms > self.settings.slow_request_ms:
            out.append(schema.IDX_REQ_SLOW)
        if entry.trace_id:
            out.append(schema.idx_trace(entry.trace_id))
        return out

    @staticmethod
    def _method(method: str) -> str:
        return method if method in KNOWN_METHODS else OTHER

    def patch_hostname(self, hostname: str, items: Sequence[tuple[str, int]]) -> int:
        """A late reverse-DNS answer: set ``client_hostname`` on the stored request records
        ``items`` (record key, record time ms) and add them to ``idx:req:fqdn:{hostname}``.
        Records that expired meanwhile are skipped. Returns how many were patched."""
        if not items:
            return 0
        if self._patch_script is None:
            self._patch_script = self.client.register_script(_PATCH_HOSTNAME)
        pipe = self.client.pipeline(transaction=False)
        for key, _ts in items:
            self._patch_script(keys=[key], args=[hostname], client=pipe)
        results = pipe.execute()
        live = {key: ts for (key, ts), ok in zip(items, results) if ok == 1}
        if live:
            index = schema.idx_req_fqdn(hostname)
            now = time.time()
            pipe = self.client.pipeline(transaction=False)
            pipe.zadd(index, live)
            if self._refresh.due(index, now):
                keep = schema.index_retention(index, self.settings.retention)
                pipe.zremrangebyscore(index, "-inf", f"({int(now * 1000) - keep * 1000}")
                pipe.expire(index, keep + REFRESH_INTERVAL_S)
            pipe.execute()
        return len(live)

    def publish_counters(self, key: str, counters: dict[str, int | float | str], ttl_s: int) -> None:
        """Replace the counters hash ``key`` (a process's own figures, for other processes to read)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, mapping=counters)
        pipe.expire(key, ttl_s)
        pipe.execute()

    # ------------------------------------------------------------------ read path

    def response_time_histogram(self, start_ms: int, end_ms: int, hostname: str | None = None) -> dict[int, int]:
        """Merged response-time histogram of [start_ms, end_ms] (see :func:`schema.rt_window_keys`)."""
        keys = schema.rt_window_keys(start_ms, end_ms, hostname, int(time.time() * 1000))
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return histogram.merge(pipe.execute())

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
