"""THE key schema and record encoding: the only module that builds a Redis key string.

Key names follow the specification (``req:*``, ``idx:req:*``, ``stream:requests``, ``stats:*``,
``oauth:flow:*``) and add the application-log side (``log:*``, ``idx:log:*``, ``stream:logs``).

Encoding of variable parts (see :func:`key_part`): values made only of ``A-Z a-z 0-9 . _ - / @ + = , ~``
are used as they are, so ``idx:req:ip:192.168.1.1`` reads as the specification writes it. Any other
byte is percent-encoded (``:`` -> ``%3A``, space -> ``%20``, ``*`` -> ``%2A``, ``{`` -> ``%7B``, ``%``
-> ``%25``), so no value can add a ``:`` segment, a glob character or a Cluster hash tag, and distinct
values give distinct keys. IPv6 ``2001:db8::1`` becomes ``2001%3Adb8%3A%3A1``. A part longer than
:data:`MAX_PART` bytes keeps its first 96 bytes followed by ``%~`` and 16 hex digits of its SHA-256.

Sorted-set indexes hold record keys as members and the record time in epoch milliseconds as score.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Container, Iterable, Mapping

import orjson
from redis.crc import key_slot as _crc_slot

from .config import Retention
from .levels import NAME_TO_SEVERITY, REQUEST_COMPONENT, is_error_severity, request_level
from .record import LogEntry, RequestFields, dumps, iso_from_ns, ns_from_iso

MAX_PART = 128
_SAFE = re.compile(r"[A-Za-z0-9._\-/@+=,~]+")
_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/@+=,~")


def key_part(value: object) -> str:
    """Encode one variable part of a key (injective, bounded, glob- and tag-free)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= MAX_PART and (text.isalnum() and text.isascii() or _SAFE.fullmatch(text)):
        return text
    return _encode_part(text)


@functools.lru_cache(maxsize=4096)
def _encode_part(text: str) -> str:
    """The percent-encoding of :func:`key_part` (cached: route templates repeat in every batch)."""
    raw = text.encode("utf-8", "surrogatepass")
    out = "".join(chr(b) if b in _SAFE_BYTES else f"%{b:02X}" for b in raw)
    if len(out) > MAX_PART:
        digest = hashlib.sha256(raw).hexdigest()[:16]
        out = out[:96]
        # do not leave half of a %XX escape at the cut
        tail = out.rfind("%", len(out) - 2)
        if tail != -1:
            out = out[:tail]
        out = f"{out}%~{digest}"
    return out


def decode_key_part(part: str) -> str:
    """Inverse of :func:`key_part` for parts that were not shortened."""
    if "%" not in part:
        return part
    raw = bytearray()
    i = 0
    while i < len(part):
        if part[i] == "%" and part[i + 1 : i + 2] != "~" and i + 3 <= len(part):
            raw.append(int(part[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(part[i].encode("utf-8"))
            i += 1
    return raw.decode("utf-8", "replace")


# ---------------------------------------------------------------------------- the key families

#: what each ``{variable}`` of a key template may hold: (regex of its text in a key, raw). A raw
#: variable is put in the key as it is (a number, a time bucket, a hex digest); every other one
#: is a key part (:func:`key_part`), so it holds no ``:`` and the families' regexes never overlap.
_PART_RE = r"[A-Za-z0-9._\-/@+=,~%]{0,128}"
VARIABLES: dict[str, tuple[str, bool]] = {
    "ms": (r"\d{1,16}", True),
    "uid": (r"[0-9A-Za-z]{1,64}", True),
    "hour": (r"\d{8}:\d{2}", True),
    "bucket": (r"\d{8}:\d{2}(?:\d{2})?", True),
    "digest": (r"[0-9a-f]{1,64}", True),
    "field": (r"(?:ip|client|user|session|host)", True),
    "code": (r"(?:[1-5]\d\d|_OTHER)", True),
    "kind": (r"(?:agents|referrers|ips|notfound|route_n|route_us)", True),
    "tag": (r"\{[A-Za-z0-9._\-/@+=,~%]{1,128}\}", True),
    "client_ip": (r"[A-Za-z0-9._\-/@+=,~%]{1,128}", False),
}
#: how the docs write a variable when its name alone would not say it
_SHOWN = {"hour": "YYYYMMDD:HH", "bucket": "YYYYMMDD:HH or YYYYMMDD:HHMM", "service": "service.name"}
#: the suffix of a hot key's part on a Redis Cluster (:func:`shard_key`)
_SHARD_RE = r"(?::\{s\d{1,3}\.\d{1,6}\})?"
_VAR = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class KeyFamily:
    """One kind of key this system writes.

    ``name`` is the builder function (or constant) of this module that names these keys;
    ``template`` the key with ``{variables}`` (:data:`VARIABLES`); ``retention`` a class of
    :data:`RETENTION_CLASSES`; ``content`` what its members, fields or entries hold (and the score
    of a sorted set's members). ``hot``: split into hash-tagged parts on a Cluster; ``index``:
    scored by record time and trimmed by the retention job; ``owned=False``: kept by a clear."""

    name: str
    template: str
    type: str
    retention: str
    content: str
    section: str
    hot: bool = False
    index: bool = False
    owned: bool = True

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(_VAR.findall(self.template))

    @property
    def pattern(self) -> str:
        """The SCAN MATCH glob of the family: its template up to the first variable, then ``*``."""
        head = self.template.split("{", 1)[0]
        return head + "*" if "{" in self.template else self.template

    @property
    def regex(self) -> str:
        """A regex that matches exactly this family's keys (and their Cluster parts when hot)."""
        pieces = _VAR.split(self.template)
        out = [re.escape(p) if i % 2 == 0 else VARIABLES.get(p, (_PART_RE, False))[0] for i, p in enumerate(pieces)]
        return "".join(out) + (_SHARD_RE if self.hot else "")

    @property
    def shown(self) -> str:
        """The template as the docs write it."""
        return _VAR.sub(lambda m: "{" + _SHOWN.get(m.group(1), m.group(1)) + "}", self.template)


#: retention class -> how long a key of it lives, as the docs say it (defaults of config.Retention)
def _days(seconds: int) -> str:
    return f"{seconds // 86400} d"


_R = Retention()
RETENTION_CLASSES: dict[str, str] = {
    "record": f"record time + retention (errors {_days(_R.errors)}, oauth {_days(_R.oauth)}, else {_days(_R.requests)})",
    "requests": f"members past retention removed ({_days(_R.requests)})",
    "errors": f"members past retention removed ({_days(_R.errors)})",
    "oauth": f"members past retention removed ({_days(_R.oauth)})",
    "stats": f"{_days(_R.stats)}",
    "trace": f"until the end of the hour + {_days(_R.requests)}",
    "stream": "trimmed by age (MINID) and length (`OTEL_REDIS_STREAM_MAXLEN`)",
    "histogram": f"minute: 2 d, hour: {_days(_R.stats)}",
    "flow": "`OTEL_REDIS_OAUTH_FLOW_TTL_S` (1 h) after the last step",
    "value": "rewritten with a fresh TTL by every batch that uses it: longest record retention + 1 min",
    "scratch": "30 s (a cached union: 6 min)",
    "lock": "the job's interval",
    "batch": "the client's retry window + 2 min",
    "alerts": "trimmed to `OTEL_REDIS_ALERT_MAX_EVENTS` and the alert retention",
    "forwarder": "5 min after the last update",
    "counters": "two `OTEL_REDIS_COUNTERS_PUBLISH_S` intervals after the last write",
    "kept": "no expiry; kept by `DELETE /logs`",
}
del _R

_F = KeyFamily
#: the docs sections of the key families, in page order: (key, title)
KEY_SECTIONS: tuple[tuple[str, str], ...] = (
    ("records", "Records and streams"),
    ("log", "Application log and shared indexes"),
    ("req", "Request indexes"),
    ("oauth", "OAuth"),
    ("stats", "Hourly statistics"),
    ("console", "Web console aggregates"),
    ("service", "Service state"),
)
KEY_FAMILIES: tuple[KeyFamily, ...] = (
    # records and streams
    _F("log_record_key", "log:{ms}-{uid}", "hash", "record", "one application log record (fields below)", "records"),
    _F("request_record_key", "req:{ms}-{uid}:{client_ip}", "hash", "record",
       "one HTTP request: the Log Entry Schema fields (below)", "records"),
    _F("STREAM_LOGS", "stream:logs", "stream", "stream", "one entry per application log, field `k` = record key",
       "records", hot=True),
    _F("STREAM_REQUESTS", "stream:requests", "stream", "stream", "one entry per request, field `k` = record key",
       "records", hot=True),
    _F("value_key", "val:{digest}", "string", "value", "one shared long value (a resource JSON, a User-Agent over 64 "
       "bytes), referenced from records as `resource_ref` / `user_agent_ref`; content-addressed (BLAKE2b, 80 bits)",
       "records"),
    # application log indexes
    _F("IDX_LOG_ALL", "idx:log:all", "zset", "requests", "every application log", "log", hot=True, index=True),
    _F("IDX_LOG_ERRORS", "idx:log:errors", "zset", "errors", "ERROR and CRITICAL logs", "log", hot=True, index=True),
    _F("idx_log_level", "idx:log:level:{LEVEL}", "zset", "requests", "by level", "log", hot=True, index=True),
    _F("idx_log_component", "idx:log:component:{component}", "zset", "requests", "by component", "log", index=True),
    _F("idx_log_event", "idx:log:event:{event}", "zset", "requests", "by OTel event name", "log", index=True),
    _F("idx_log_field", "idx:log:{field}:{value}", "zset", "requests", "by attribute: `ip` from "
       "`client.address`/`client_ip`/`ip`; `client` from `oauth.client_id`/`client_id`; `user` from "
       "`enduser.id`/`user_id`/`username`/`user`; `session` from `session.id`/`session_id`; `host` from "
       "`server.address`/`hostname`/`proxy_hostname`/`host`", "log", index=True),
    _F("idx_trace", "idx:trace:{hour}", "zset", "trace", "the trace index of one hour (application logs and "
       "requests): every member scored 0 and reading `{trace_id}:{record ms, 13 digits}:{record key}`, so a trace's "
       "records of the hour are one lexicographic range, in time order", "log"),
    _F("idx_service", "idx:service:{service}", "zset", "requests", "application logs and requests by resource "
       "`service.name` (bounded: `OTEL_REDIS_MAX_SERVICES`, beyond it `_OTHER`)", "log", hot=True, index=True),
    # request indexes
    _F("IDX_REQ_ALL", "idx:req:all", "zset", "requests", "every request", "req", hot=True, index=True),
    _F("IDX_REQ_ERRORS", "idx:req:errors", "zset", "errors", "4xx and 5xx", "req", hot=True, index=True),
    _F("IDX_REQ_SLOW", "idx:req:slow", "zset", "requests", "slower than `OTEL_REDIS_SLOW_REQUEST_MS`", "req",
       hot=True, index=True),
    _F("idx_req_ip", "idx:req:ip:{ip}", "zset", "requests", "by client IP", "req", index=True),
    _F("idx_req_fqdn", "idx:req:fqdn:{fqdn}", "zset", "requests", "by client hostname (reverse DNS)", "req",
       index=True),
    _F("idx_req_host", "idx:req:host:{hostname}", "zset", "requests", "by proxy hostname", "req", index=True),
    _F("idx_req_user", "idx:req:user:{user}", "zset", "requests", "by user id", "req", index=True),
    _F("idx_req_status", "idx:req:status:{code}", "zset", "requests", "by status code (100-599, else `_OTHER`)",
       "req", hot=True, index=True),
    _F("idx_req_method", "idx:req:method:{method}", "zset", "requests", "by method (standard methods, else "
       "`_OTHER`)", "req", index=True),
    _F("idx_req_path", "idx:req:path:{method}:{path}", "zset", "requests", "by method and route template or "
       "normalised path (beyond `OTEL_REDIS_MAX_PATHS` `/{first segment}/*`, then `_OTHER`)", "req", index=True),
    _F("idx_req_client", "idx:req:client:{client_id}", "zset", "requests", "by OAuth client id", "req", index=True),
    _F("idx_req_session", "idx:req:session:{session_id}", "zset", "requests", "by session id", "req", index=True),
    # OAuth
    _F("idx_oauth_event", "idx:oauth:{event_type}", "zset", "oauth", "OAuth records (`oauth.event_type`) by event "
       "type", "oauth", index=True),
    _F("idx_oauth_client", "idx:oauth:client:{client_id}", "zset", "oauth", "OAuth records by client id", "oauth",
       index=True),
    _F("idx_oauth_user", "idx:oauth:user:{user}", "zset", "oauth", "OAuth records by user", "oauth", index=True),
    _F("idx_oauth_ip", "idx:oauth:ip:{ip}", "zset", "oauth", "OAuth records by client IP (the "
       "`client.address`/`client_ip`/`ip` attribute)", "oauth", index=True),
    _F("oauth_flow", "oauth:flow:{session_id}", "list", "flow", "record keys of the `track_oauth_flow` steps, oldest "
       "first (last 200)", "oauth"),
    # hourly statistics
    _F("stats_requests", "stats:requests:{hour}", "hash", "stats", "`total`, `status_{code}`", "stats", hot=True),
    _F("stats_errors", "stats:errors:{hour}", "hash", "stats", "count by status code", "stats", hot=True),
    _F("stats_unique_ips", "stats:unique_ips:{hostname}:{hour}", "HyperLogLog", "stats", "client IPs per proxy "
       "hostname and hour", "stats"),
    _F("stats_logs", "stats:logs:{hour}", "hash", "stats", "`total`, `level_{LEVEL}`", "stats", hot=True),
    _F("stats_events", "stats:events:{hour}", "hash", "stats", "count per event name", "stats", hot=True),
    _F("stats_rt", "stats:rt:{hostname}:{bucket}", "hash", "histogram", "response-time histogram of one proxy "
       "hostname (field = log-scale bucket, see `otel_redis/histogram.py`) plus `4xx` and `5xx` counts, per minute "
       "and per hour", "stats", hot=True),
    _F("stats_rt_all", "stats:rt_all:{bucket}", "hash", "histogram", "the same histogram over every hostname",
       "stats", hot=True),
    _F("stats_paths", "stats:paths:{hour}", "hash", "stats", "requests per `{METHOD} {route or normalised path}`",
       "stats", hot=True),
    _F("stats_hosts", "stats:hosts:{hour}", "set", "stats", "proxy hostnames that had requests in the hour (lets "
       "readers list hostnames without `SCAN`)", "stats"),
    # web console aggregates (capped hashes, otel_redis/aggregates.py)
    _F("stats_agents", "stats:agents:{hour}", "hash", "stats", "requests per user agent (capped)", "console"),
    _F("stats_referrers", "stats:referrers:{hour}", "hash", "stats", "requests per referrer (capped)", "console"),
    _F("stats_client_ips", "stats:ips:{hour}", "hash", "stats", "requests per client IP (capped)", "console"),
    _F("stats_not_found", "stats:notfound:{hour}", "hash", "stats", "404s per raw path (capped)", "console"),
    _F("stats_route_count", "stats:route_n:{hour}", "hash", "stats", "requests per `{METHOD} {route}` (capped)",
       "console"),
    _F("stats_route_time", "stats:route_us:{hour}", "hash", "stats", "summed response time in microseconds per "
       "route (capped)", "console"),
    _F("stats_bytes", "stats:bytes:{hour}", "hash", "stats", "bytes sent, `_all` and per proxy hostname (capped)",
       "console"),
    _F("stats_error_groups", "stats:error_groups:{hour}", "hash", "stats", "errors per fingerprint (exception type "
       "+ normalised message, capped)", "console"),
    _F("stats_error_latest", "stats:error_latest:{hour}", "hash", "stats", "fingerprint -> JSON of its latest "
       "occurrence (capped)", "console"),
    _F("stats_host_top", "stats:host_top:{kind}:{hostname}:{hour}", "hash", "stats", "the capped lists above "
       "(`agents`, `referrers`, `ips`, `notfound`, `route_n`, `route_us`) for one proxy hostname", "console"),
    # service state
    _F("tmp_hll", "tmp:hll:{tag}:{part}", "HyperLogLog", "scratch", "scratch keys of one union count of hourly "
       "`stats:unique_ips` (on a Cluster the copies that avoid a cross-slot command; a merge of more than 32 keys; "
       "`u-{digest}`: a cached union of completed hours); `{tag}` is a hash tag per process", "service"),
    _F("job_lock", "lock:job:{name}", "string", "lock", "one service instance runs a periodic job (`cleanup`, "
       "`alerts`) per interval (`SET NX PX`)", "service"),
    _F("batch_marker", "wp:batch:{token}", "string", "batch", "a write batch's marker: set (`SET NX`) by the script "
       "call that applies the batch's stream entries and counters, so a copy resent after lost replies applies "
       "nothing (value: the ops that failed in the first run)", "service"),
    _F("batch_marker_tagged", "wp:batch:{tag}:{token}", "string", "batch", "the same for a per-slot call on a "
       "Cluster (`{tag}`: the slot's hash tag)", "service"),
    _F("ALERTS_EVENTS", "alerts:events", "stream", "alerts", "alert events (field `e` = JSON: `type` fired or "
       "resolved, `rule`, `scope`, `value`, `threshold`, `message`, `details`); the entry id is the event id",
       "service"),
    _F("ALERTS_STATE", "alerts:state", "hash", "alerts", "one field per condition (`{rule}:{scope}`): firing or not, "
       "since when, last fired (cool-down)", "service"),
    _F("forwarder_stats", "collector:forwarder:{consumer}", "hash", "forwarder", "one forwarder's counters "
       "(`forwarded`, `batches`, `retried`, `failed`, `redelivered`, `expired`, `split`, `group`, `updated_ms`), "
       "rewritten every 5 s", "service"),
    _F("FORWARDERS", "collector:forwarders", "zset", "forwarder", "consumer names of live forwarders, scored by their "
       "last publication (epoch ms); readers list forwarders from it instead of scanning", "service"),
    _F("PIPELINE_PROCESSES", "pipeline:processes", "zset", "counters", "processes whose pipeline counters are in "
       "Redis (member `{host}:{pid}`, scored by the last write, ms); `/metrics` sums the live ones", "service"),
    _F("pipeline_counters", "pipeline:counters:{process}", "hash", "counters", "one process's pipeline counters "
       "(`emitted`, `exported`, `dropped_*`...); `{process}` is its `{host}:{pid}`, key-encoded", "service"),
    _F("LAYOUT_KEY", "meta:layout", "hash", "kept", "the layout the writers use (`shards`): readers take the shard "
       "count from here", "service", owned=False),
)
del _F

FAMILIES: dict[str, KeyFamily] = {f.name: f for f in KEY_FAMILIES}
_FAMILY_RE = re.compile("|".join(f"(?P<f{i}>{f.regex})" for i, f in enumerate(KEY_FAMILIES)))


def family_of(key: str) -> KeyFamily | None:
    """The family whose template ``key`` matches (its Cluster parts included), else None."""
    found = _FAMILY_RE.fullmatch(key)
    return KEY_FAMILIES[int(found.lastgroup[1:])] if found and found.lastgroup else None


def families_matching(key: str) -> list[KeyFamily]:
    """Every family ``key`` matches (the table's test wants exactly one for every key written)."""
    return [f for f in KEY_FAMILIES if re.fullmatch(f.regex, key)]


def _builder(name: str) -> Callable[..., str]:
    """The key builder of family ``name``: its template with each argument filled in, in template
    order, as a key part (:func:`key_part`) unless the variable is raw. Cached: index and stats keys
    are built from values that repeat (hours, IPs, routes), each once per process."""
    family = FAMILIES[name]
    fmt = _VAR.sub("{}", family.template)
    encoders = [None if VARIABLES.get(v, ("", False))[1] else key_part for v in family.variables]
    if encoders == [key_part]:
        build = lambda a: fmt.format(key_part(a))  # noqa: E731
    elif encoders == [None]:
        build = fmt.format
    else:
        def build(*args: object) -> str:
            return fmt.format(*(a if enc is None else enc(a) for enc, a in zip(encoders, args, strict=True)))
    built = functools.lru_cache(maxsize=8192)(build)
    built.__doc__ = f"``{family.shown}``: {family.content}."
    built.__name__ = built.__qualname__ = name
    return built


# ---------------------------------------------------------------------------- time buckets


@functools.lru_cache(maxsize=1024)
def _minute_text(minute: int) -> str:
    return _dt.datetime.fromtimestamp(minute * 60, _dt.timezone.utc).strftime("%Y%m%d:%H%M")


def hour_bucket(ts_ms: int) -> str:
    """``YYYYMMDD:HH`` (UTC) as in ``stats:requests:{YYYYMMDD:HH}``."""
    return _minute_text(ts_ms // 60_000)[:-2]


def minute_bucket(ts_ms: int) -> str:
    """``YYYYMMDD:HHMM`` (UTC) for the response-time sliding windows."""
    return _minute_text(ts_ms // 60_000)


def hour_buckets(start_ms: int, end_ms: int) -> list[str]:
    """Every hour bucket that overlaps [start_ms, end_ms], oldest first."""
    hour = 3_600_000
    first = start_ms - start_ms % hour
    return [hour_bucket(t) for t in range(first, end_ms + 1, hour)]


def minute_buckets(start_ms: int, end_ms: int) -> list[str]:
    minute = 60_000
    first = start_ms - start_ms % minute
    return [minute_bucket(t) for t in range(first, end_ms + 1, minute)]


# ---------------------------------------------------------------------------- records and streams

STREAM_LOGS = FAMILIES["STREAM_LOGS"].template
STREAM_REQUESTS = FAMILIES["STREAM_REQUESTS"].template
STREAMS = (STREAM_LOGS, STREAM_REQUESTS)


def log_record_key(ts_ms: int, uid: str) -> str:
    return f"log:{ts_ms}-{uid}"


def request_record_key(ts_ms: int, uid: str, client_ip: str) -> str:
    """``req:{timestamp}:{client_ip}``; the timestamp carries a unique suffix so keys never collide."""
    return f"req:{ts_ms}-{uid}:{_ip_part(client_ip)}"


@functools.lru_cache(maxsize=8192)
def _ip_part(client_ip: str) -> str:
    return key_part(client_ip or "-")


def is_request_key(key: str) -> bool:
    return key.startswith("req:")


def record_time_ms(key: str) -> int:
    """The epoch-ms timestamp embedded in a record key."""
    return int(key.split(":", 2)[1].split("-", 1)[0])


# ---------------------------------------------------------------------------- application log indexes

#: index keys are built from values that repeat (IPs, hostnames, users, routes): each once per process
_cached = functools.lru_cache(maxsize=8192)


IDX_LOG_ALL = FAMILIES["IDX_LOG_ALL"].template
IDX_LOG_ERRORS = FAMILIES["IDX_LOG_ERRORS"].template


idx_log_level = _builder("idx_log_level")
idx_log_component = _builder("idx_log_component")
idx_log_event = _builder("idx_log_event")
idx_log_field = _builder("idx_log_field")


HOUR_MS = 3_600_000


# One key per hour instead of one per trace: a request no longer creates a key of its own (about a
# fifth of the Redis time of a request record); the whole hour expires together (:func:`trace_range`).
idx_trace = _builder("idx_trace")


def trace_member(trace_id: str, ts_ms: int, record_key: str) -> str:
    return f"{key_part(trace_id)}:{ts_ms:013d}:{record_key}"


def parse_trace_member(member: str) -> tuple[int, str]:
    """(record ms, record key) of a :func:`trace_member`."""
    _trace, ts, key = member.split(":", 2)
    return int(ts), key


def trace_range(trace_id: str, lo_ms: int | None = None, below: tuple[int, str] | None = None) -> tuple[str, str]:
    """``ZRANGEBYLEX`` (min, max) of one trace's members: from ``lo_ms`` on, strictly below the
    position ``below`` (record ms, record key) when given. (``key_part`` never leaves a ``:`` in the
    trace id, and ``;`` follows ``:``, so ``({trace};`` bounds exactly this trace's members.)"""
    part = key_part(trace_id)
    low = f"[{part}:{lo_ms:013d}" if lo_ms is not None else f"[{part}:"
    high = f"({part}:{below[0]:013d}:{below[1]}" if below is not None else f"({part};"
    return low, high


def trace_hours(lo_ms: int, hi_ms: int, keep_s: int) -> list[str]:
    """The trace index keys that can hold records of [lo_ms, hi_ms], newest first: none older than
    the trace indexes' retention ``keep_s`` (each lives until the end of its hour plus that) allows."""
    lo_ms = max(lo_ms, hi_ms - keep_s * 1000 - 2 * HOUR_MS, 0)
    return [idx_trace(hour) for hour in reversed(hour_buckets(lo_ms, hi_ms))]


idx_service = _builder("idx_service")


# ---------------------------------------------------------------------------- request indexes (specification)

IDX_REQ_ALL = FAMILIES["IDX_REQ_ALL"].template
IDX_REQ_ERRORS = FAMILIES["IDX_REQ_ERRORS"].template
IDX_REQ_SLOW = FAMILIES["IDX_REQ_SLOW"].template


idx_req_ip = _builder("idx_req_ip")
idx_req_fqdn = _builder("idx_req_fqdn")
idx_req_host = _builder("idx_req_host")
idx_req_user = _builder("idx_req_user")


@_cached
def idx_req_status(code: int | str) -> str:
    """``idx:req:status:{code}``; ``code`` is 100-599 or ``_OTHER`` (otel_redis/bounds.py)."""
    return f"idx:req:status:{code if isinstance(code, str) else int(code)}"


idx_req_method = _builder("idx_req_method")
idx_req_path = _builder("idx_req_path")
idx_req_client = _builder("idx_req_client")
idx_req_session = _builder("idx_req_session")


# ---------------------------------------------------------------------------- stats (specification)


stats_requests = _builder("stats_requests")
stats_errors = _builder("stats_errors")
stats_unique_ips = _builder("stats_unique_ips")
stats_logs = _builder("stats_logs")
stats_events = _builder("stats_events")
stats_rt = _builder("stats_rt")
stats_rt_all = _builder("stats_rt_all")
stats_paths = _builder("stats_paths")


# ---------------------------------------------------------------------------- console aggregates (issue 17)

#: most fields of one capped aggregate hash; increments for new fields beyond it go to :data:`AGG_OTHER`
AGG_CAP = 500
#: the overflow field of a capped aggregate hash
AGG_OTHER = "_OTHER"
#: longest field (user agent, referrer, path) kept in an aggregate hash, in characters
AGG_FIELD_MAX = 200


stats_agents = _builder("stats_agents")
stats_referrers = _builder("stats_referrers")
stats_client_ips = _builder("stats_client_ips")
stats_not_found = _builder("stats_not_found")
stats_route_count = _builder("stats_route_count")
stats_route_time = _builder("stats_route_time")
stats_bytes = _builder("stats_bytes")
stats_error_groups = _builder("stats_error_groups")
stats_error_latest = _builder("stats_error_latest")


#: the per-hostname top lists: kind -> short name in :func:`stats_host_top` keys
HOST_TOP_KINDS = {
    "agents": "agents", "referrers": "referrers", "ips": "ips", "not_found": "notfound",
    "route_n": "route_n", "route_us": "route_us",
}


def stats_host_top(kind: str, hostname: str, bucket: str) -> str:
    """Capped hash per hour and proxy hostname, the fields of the all-hostname hash of ``kind``
    (:data:`HOST_TOP_KINDS`) for that hostname's requests: ``stats:host_top:{kind}:{hostname}:{bucket}``.
    The hostname is key-encoded (:func:`key_part`), like the per-hostname ``stats:rt`` histograms."""
    return f"stats:host_top:{HOST_TOP_KINDS[kind]}:{key_part(hostname)}:{bucket}"


#: the console aggregates' globs (generated from :data:`KEY_FAMILIES`)
AGGREGATE_PATTERNS: tuple[str, ...] = tuple(f.pattern for f in KEY_FAMILIES if f.section == "console")


def rt_window_keys(start_ms: int, end_ms: int, hostname: str | None, now_ms: int) -> list[str]:
    """The histogram hashes whose sum is the response-time distribution of [start_ms, end_ms]:
    hour hashes for the whole hours inside, minute hashes for the edges (hour hashes again where
    the minutes have expired). Buckets at the edges count whole, so the window is rounded out to
    the minute."""
    key = stats_rt_all if not hostname else (lambda bucket: stats_rt(hostname, bucket))
    hour = 3_600_000
    minutes_from = now_ms - RT_MINUTE_TTL_S * 1000 + 60_000
    first_full = -(-start_ms // hour) * hour
    end_full = (end_ms + 1) // hour * hour
    keys: list[str] = []

    def edge(lo: int, hi: int) -> None:
        if hi < lo:
            return
        if lo >= minutes_from:
            keys.extend(key(b) for b in minute_buckets(lo, hi))
        else:
            keys.extend(key(b) for b in hour_buckets(lo, hi))

    if first_full < end_full:
        edge(start_ms, first_full - 1)
        keys.extend(key(b) for b in hour_buckets(first_full, end_full - 1))
        edge(end_full, end_ms)
    else:
        edge(start_ms, end_ms)
    return list(dict.fromkeys(keys))


def is_minute_bucket(bucket: str) -> bool:
    return len(bucket) == len("YYYYMMDD:HHMM")


#: minute histograms serve sliding windows up to an hour (and the edges of longer windows)
RT_MINUTE_TTL_S = 2 * 86400


# ---------------------------------------------------------------------------- OAuth (specification)


idx_oauth_event = _builder("idx_oauth_event")
idx_oauth_client = _builder("idx_oauth_client")
idx_oauth_user = _builder("idx_oauth_user")
idx_oauth_ip = _builder("idx_oauth_ip")
oauth_flow = _builder("oauth_flow")


# ---------------------------------------------------------------------------- collector bridge

#: the forwarder consumer group's counters are published by each forwarder process (see collector/)
#: zset of forwarder consumer names scored by their last publication (epoch ms): readers list live
#: forwarders from it instead of scanning the keyspace
FORWARDERS = FAMILIES["FORWARDERS"].template
#: a forwarder republishes every few seconds; a stopped one's hash is gone after this
FORWARDER_STATS_TTL_S = 300

#: registry of the processes whose pipeline counters are in Redis (counters.CounterPublisher)
PIPELINE_PROCESSES = FAMILIES["PIPELINE_PROCESSES"].template
pipeline_counters = _builder("pipeline_counters")


forwarder_stats = _builder("forwarder_stats")


# ---------------------------------------------------------------------------- shared long values

#: hash fields whose values longer than :data:`INTERN_MIN_BYTES` are stored once, under
#: ``val:{digest}``, and referenced from the record as ``{field}_ref``. Redis keeps a hash in its
#: compact listpack encoding only while every value is at most 64 bytes (hash-max-listpack-value);
#: the resource JSON and a browser User-Agent are longer, identical across many records, and would
#: otherwise turn every record into a hash table several times its size.
INTERNED_FIELDS: tuple[str, ...] = ("resource", "user_agent")
INTERN_MIN_BYTES = 65
REF_SUFFIX = "_ref"


value_key = _builder("value_key")


@functools.lru_cache(maxsize=2048)
def _digest(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=10).hexdigest()


def missing_values(mappings: Iterable[dict], known: Container[str] = ()) -> list[str]:
    """The digests referenced by HGETALL results that are not in ``known``; a reader GETs
    ``value_key(d)`` for each and passes the answers to :func:`decode_entry` (see
    :class:`otel_redis.values.SharedValues`, the reader's own cache of them)."""
    out: dict[str, None] = {}
    for mapping in mappings:
        if not mapping:
            continue
        for field in INTERNED_FIELDS:
            ref = mapping.get(field + REF_SUFFIX)
            if ref is None:
                ref = mapping.get((field + REF_SUFFIX).encode())
            if ref is not None:
                ref = _text(ref)
                if ref not in known:
                    out[ref] = None
    return list(out)


# ---------------------------------------------------------------------------- retention classes

#: SCAN MATCH globs of everything this system writes (clearing, cleanup), one per key family of
#: :data:`KEY_FAMILIES` (families sharing a glob share it); the layout key is not among them
OWNED_PATTERNS: tuple[str, ...] = tuple(dict.fromkeys(f.pattern for f in KEY_FAMILIES if f.owned))

#: the indexes scored by record time (the cleanup job trims them by score), as the globs of their
#: namespaces (``idx:req:*``: a Cluster part ``idx:req:all:{tag}`` matches it too); the hourly trace
#: indexes are not among them: they expire whole, an hour after their newest member's retention
INDEX_PATTERNS: tuple[str, ...] = tuple(
    dict.fromkeys(":".join(f.template.split(":")[:2]) + ":*" for f in KEY_FAMILIES if f.index)
)


def index_retention(key: str, retention: Retention) -> int:
    """Seconds a member stays in index ``key``: each index has one retention class."""
    if key in (IDX_REQ_ERRORS, IDX_LOG_ERRORS):
        return retention.errors
    if key.startswith("idx:oauth:"):
        return retention.oauth
    return retention.requests


def record_retention(is_error: bool, is_oauth: bool, retention: Retention) -> int:
    """Seconds a record lives: at least as long as every index that points at it."""
    if is_oauth:
        return max(retention.oauth, retention.requests)
    if is_error:
        return max(retention.errors, retention.requests)
    return retention.requests


def iter_owned_patterns() -> Iterable[str]:
    return iter(OWNED_PATTERNS)


# ---------------------------------------------------------------------------- retention job, analytics, alerts (issue 7)

#: record keys (``req:*`` and ``log:*``) in one SCAN MATCH; callers check :func:`is_record_key`
RECORD_SCAN_PATTERN = "[lr][eo][gq]:*"
STATS_PATTERN = "stats:*"
_BUCKET = re.compile(r"^\d{8}:\d{2}(\d{2})?$")


def is_record_key(key: str) -> bool:
    return key.startswith(("req:", "log:"))


#: a whole record key as the writers build it (the two record families of :data:`KEY_FAMILIES`)
_RECORD_KEY = re.compile(f"(?:{FAMILIES['log_record_key'].regex}|{FAMILIES['request_record_key'].regex})")


def is_well_formed_record_key(text: str) -> bool:
    """Whether ``text`` could name a record (so a malformed id is a 422, not a Redis lookup).

    Request keys carry the key-encoded client IP (``%3A`` for each ``:`` of an IPv6 address), so a
    URL holding one must percent-encode the ``%`` again or the server sees a different key."""
    return _RECORD_KEY.fullmatch(text) is not None


def stats_key_bucket(key: str) -> str | None:
    """The ``YYYYMMDD:HH`` or ``YYYYMMDD:HHMM`` bucket a stats key ends with, else None."""
    if not key.startswith("stats:"):
        return None
    bucket = ":".join(key.rsplit(":", 2)[-2:])
    return bucket if _BUCKET.match(bucket) else None


def bucket_span_ms(bucket: str) -> tuple[int, int]:
    """[start, end) of an hour or minute bucket in epoch milliseconds."""
    fmt, length = ("%Y%m%d:%H%M", 60_000) if is_minute_bucket(bucket) else ("%Y%m%d:%H", 3_600_000)
    start = _dt.datetime.strptime(bucket, fmt).replace(tzinfo=_dt.timezone.utc)
    start_ms = int(start.timestamp()) * 1000
    return start_ms, start_ms + length


#: hash fields the retention job reads to find a stored record's retention class
RECORD_CLASS_FIELDS: tuple[str, ...] = ("status_code", "level", "severity", "attrs")


def stored_record_retention(key: str, fields: Iterable[object], retention: Retention) -> int:
    """Seconds the stored record ``key`` lives, from its :data:`RECORD_CLASS_FIELDS` (HMGET order);
    the same rule as the write path's :func:`record_retention`."""
    status, level, severity, attrs = (_text(v) if v is not None else "" for v in fields)
    if is_request_key(key):
        return record_retention(int(status or 0) >= 400, False, retention)
    level = level or "INFO"
    number = int(severity) if severity else NAME_TO_SEVERITY.get(level, NAME_TO_SEVERITY["INFO"]).value
    is_oauth = bool(attrs) and bool(orjson.loads(attrs).get("oauth.event_type"))
    return record_retention(is_error_severity(number), is_oauth, retention)


stats_hosts = _builder("stats_hosts")


def tmp_hll(token: str, part: str) -> str:
    """Short-lived copies of HyperLogLogs for a union count. The ``{token}`` hash tag puts every copy
    of one count on one Cluster node, so PFMERGE over them is legal there too."""
    return f"tmp:hll:{{{key_part(token)}}}:{key_part(part)}"


ALERTS_EVENTS = FAMILIES["ALERTS_EVENTS"].template
"""Stream of alert firings and recoveries (field ``e`` = JSON), trimmed by age and length."""
ALERTS_STATE = FAMILIES["ALERTS_STATE"].template
"""Hash: condition id -> JSON state (firing or not, last fired, cool-down), one field per condition."""


job_lock = _builder("job_lock")


# ---------------------------------------------------------------------------- record encoding

#: the specification's Log Entry Schema fields, always present in a request hash
REQUEST_HASH_FIELDS: tuple[str, ...] = (
    "timestamp",
    "client_ip",
    "client_hostname",
    "proxy_hostname",
    "method",
    "path",
    "status_code",
    "response_time_ms",
    "user_id",
    "user_agent",
    "referrer",
    "bytes_sent",
    "error",
)
_REQUEST_OPTIONAL = ("query", "route", "session_id", "oauth_client_id")


def _fmt_float(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


#: level name -> the OTel severity number it implies (a plain int: cheaper than the enum's .value)
_LEVEL_SEVERITY: dict[str, int] = {name: sev.value for name, sev in NAME_TO_SEVERITY.items()}


def encode_entry(entry: LogEntry, interned: dict[str, bytes] | None = None) -> dict[str, str | bytes]:
    """The hash stored for one record. Empty optional fields are left out (decode restores them).

    With ``interned`` (the write path passes a dict), long values of :data:`INTERNED_FIELDS` are
    replaced by references and collected there as ``{value key: value}`` for the caller to store.
    """
    flat = encode_fields(entry, interned)
    return dict(zip(flat[0::2], flat[1::2]))


def request_body(method: str, path: str, status: int) -> str:
    """The message a request record has by default."""
    return f"{method} {path} {status}"


#: a request record's component and scope when its hash has none (see :func:`encode_fields`)
REQUEST_SCOPE = "otel_redis"


def encode_fields(
    entry: LogEntry,
    interned: dict[str, bytes] | None = None,
    share_agent: Callable[[str], bool] | None = None,
) -> list[str | bytes]:
    """:func:`encode_entry` as a flat ``[field, value, field, value, ...]`` list, the shape HSET takes
    (the write path's form: no intermediate dict per record).

    A request hash leaves out what its request fields already say: the level (from the status),
    the body (``"{method} {path} {status}"``), the component ``http`` and the scope ``otel_redis``;
    :func:`decode_entry` restores them, and a value that differs is stored. Fewer fields make the
    hash smaller and the write cheaper (HSET scans a small hash's fields for each one it sets).
    A long User-Agent goes to a shared ``val:*`` key only when ``share_agent`` admits it (the
    store's hourly bound on distinct ones); otherwise it stays inline in the record."""
    req = entry.request
    out = _record_fields(entry, req, interned)
    if req is not None:
        _add_request_fields(out, req, interned, share_agent)
    return out


def _record_fields(
    entry: LogEntry, req: RequestFields | None, interned: dict[str, bytes] | None
) -> list[str | bytes]:
    """The fields every record may have, less what ``req`` already says (see :func:`encode_fields`)."""
    level = entry.level
    out: list[str | bytes] = ["timestamp", iso_from_ns(entry.timestamp_ns)]
    if req is None or level != request_level(req.status_code):
        out += ("level", level)
    severity = entry.severity_number
    if severity != _LEVEL_SEVERITY.get(level):
        out += ("severity", str(severity))
    if entry.severity_text != level:
        out += ("severity_text", entry.severity_text)
    body = entry.body
    if not isinstance(body, str):
        out += ("body", dumps(body), "body_json", "1")
    elif req is None or body != request_body(req.method, req.path, req.status_code):
        out += ("body", body)
    if req is not None:
        if entry.component != REQUEST_COMPONENT:
            out += ("component", entry.component)
    elif entry.component:
        out += ("component", entry.component)
    if entry.event:
        out += ("event", entry.event)
    if entry.trace_id:
        out += ("trace_id", entry.trace_id)
    if entry.span_id:
        out += ("span_id", entry.span_id)
    if entry.trace_flags:
        out += ("trace_flags", str(entry.trace_flags))
    if entry.attributes:
        out += ("attrs", dumps(entry.attributes))
    if entry.resource:
        if interned is None:
            out += ("resource", _resource_json(entry.resource))
        else:  # a provider's resource is one object: its JSON and digest are made once
            _resource, raw, pair, vkey = _resource_entry(entry.resource)
            out += pair
            if vkey:
                interned[vkey] = raw
    if req is not None:
        if entry.scope_name != REQUEST_SCOPE:
            out += ("scope", entry.scope_name)
    elif entry.scope_name:
        out += ("scope", entry.scope_name)
    if entry.scope_version:
        out += ("scope_version", entry.scope_version)
    if entry.observed_ns and entry.observed_ns != entry.timestamp_ns:
        out += ("observed_ns", str(entry.observed_ns))
    if entry.otlp:
        out += ("otlp", dumps(entry.otlp))
    return out


def _add_request_fields(
    out: list[str | bytes],
    req: RequestFields,
    interned: dict[str, bytes] | None,
    share_agent: Callable[[str], bool] | None,
) -> None:
    """Append a request record's own fields; a long User-Agent by reference when it may be shared."""
    out += (
        "client_ip", req.client_ip,
        "client_hostname", req.client_hostname,
        "proxy_hostname", req.proxy_hostname,
        "method", req.method,
        "path", req.path,
        "status_code", str(req.status_code),
        "response_time_ms", _fmt_float(req.response_time_ms),
        "user_id", req.user_id,
    )
    ua = req.user_agent
    if len(ua) < INTERN_MIN_BYTES or interned is None or (share_agent is not None and not share_agent(ua)):
        out += ("user_agent", ua)
    else:
        digest, vkey, raw = _user_agent_ref(ua)
        out += ("user_agent" + REF_SUFFIX, digest)
        interned[vkey] = raw
    out += ("referrer", req.referrer, "bytes_sent", str(req.bytes_sent), "error", req.error)
    if req.query:
        out += ("query", req.query)
    if req.route:
        out += ("route", req.route)
    if req.session_id:
        out += ("session_id", req.session_id)
    if req.oauth_client_id:
        out += ("oauth_client_id", req.oauth_client_id)


def _interned_ref(raw: bytes) -> tuple[str, str]:
    """(digest, value key) of a shared long value."""
    digest = _digest(raw)
    return digest, value_key(digest)


@functools.lru_cache(maxsize=2048)
def _user_agent_ref(user_agent: str) -> tuple[str, str, bytes]:
    """(digest, value key, value) of a long User-Agent; they repeat, so each is hashed once."""
    raw = user_agent.encode("utf-8", "surrogatepass")
    return (*_interned_ref(raw), raw)


_resource_cache: dict[int, tuple[dict, bytes, tuple[str, str | bytes], str]] = {}


def _resource_entry(resource: dict) -> tuple[dict, bytes, tuple[str, str | bytes], str]:
    """Resources are shared by every record of a provider: serialise (and hash) each object once.
    Returns ``(resource, JSON, the record's resource fields, value key or "")``, cached by the
    object's id (the object is kept with it, so a reused id is told apart)."""
    hit = _resource_cache.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit
    raw = dumps(resource)
    if len(raw) < INTERN_MIN_BYTES:
        made: tuple[dict, bytes, tuple[str, str | bytes], str] = (resource, raw, ("resource", raw), "")
    else:
        digest, vkey = _interned_ref(raw)
        made = (resource, raw, ("resource" + REF_SUFFIX, digest), vkey)
    if len(_resource_cache) > 64:
        _resource_cache.clear()
    _resource_cache[id(resource)] = made
    return made


def _resource_json(resource: dict) -> bytes:
    return _resource_entry(resource)[1]


def _shared(data: dict[str, str], field: str, values: Mapping[str, bytes] | None) -> str | None:
    """The value of an interned field: inline, else resolved from ``values`` (else None)."""
    if field in data:
        return data[field]
    ref = data.get(field + REF_SUFFIX)
    if ref is None:
        return None
    raw = values.get(ref) if values is not None else None
    return _text(raw) if raw is not None else None


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def decode_entry(mapping: dict, values: Mapping[str, bytes] | None = None) -> LogEntry:
    """Inverse of :func:`encode_entry`; accepts the bytes or str mapping HGETALL returns.

    Shared values (``resource_ref``, ``user_agent_ref``) are resolved from ``values`` (digest ->
    value, see :func:`missing_values`) and from nothing else; unknown ones decode as empty.
    """
    data = {_text(k): _text(v) for k, v in mapping.items()}
    resource_json = _shared(data, "resource", values)
    user_agent = _shared(data, "user_agent", values) or ""
    body: object = data.get("body", "")
    if data.get("body_json") == "1":
        body = orjson.loads(body)  # type: ignore[arg-type]
    request = None
    if "method" in data and "status_code" in data:
        status = int(data.get("status_code") or 0)
        level = data.get("level") or request_level(status)
        if "body" not in data:
            body = request_body(data["method"], data.get("path", ""), status)
        component = data.get("component", REQUEST_COMPONENT)
        scope = data.get("scope", REQUEST_SCOPE)
        request = RequestFields(
            method=data["method"],
            path=data.get("path", ""),
            status_code=status,
            client_ip=data.get("client_ip", ""),
            client_hostname=data.get("client_hostname", ""),
            proxy_hostname=data.get("proxy_hostname", ""),
            query=data.get("query", ""),
            route=data.get("route", ""),
            response_time_ms=float(data.get("response_time_ms") or 0),
            user_id=data.get("user_id", ""),
            user_agent=user_agent,
            referrer=data.get("referrer", ""),
            bytes_sent=int(data.get("bytes_sent") or 0),
            error=data.get("error", ""),
            session_id=data.get("session_id", ""),
            oauth_client_id=data.get("oauth_client_id", ""),
        )
    else:
        level = data.get("level") or "INFO"
        component = data.get("component", "")
        scope = data.get("scope", "")
    ts = ns_from_iso(data["timestamp"]) if data.get("timestamp") else 0
    return LogEntry(
        timestamp_ns=ts,
        observed_ns=int(data.get("observed_ns") or ts),
        level=level,
        severity_number=int(data["severity"]) if "severity" in data else NAME_TO_SEVERITY[level].value,
        severity_text=data["severity_text"] if "severity_text" in data else level,
        body=body,
        component=component,
        event=data.get("event", ""),
        trace_id=data.get("trace_id", ""),
        span_id=data.get("span_id", ""),
        trace_flags=int(data.get("trace_flags") or 0),
        attributes=orjson.loads(data["attrs"]) if data.get("attrs") else {},
        resource=orjson.loads(resource_json) if resource_json else {},
        scope_name=scope,
        scope_version=data.get("scope_version", ""),
        request=request,
        otlp=orjson.loads(data["otlp"]) if data.get("otlp") else {},
    )


# ---------------------------------------------------------------------------- Redis Cluster layout

#: Redis Cluster's hash slot count (CRC16 of the key, or of its ``{hash tag}``, modulo this)
CLUSTER_SLOTS = 16384
#: the most parts a hot key may be split into (more would cost readers without spreading writes)
MAX_SHARDS = 256

#: the hot keys split into parts in cluster mode (every record touches them): the hot families
#: without variables, and the prefixes of the hot per-value indexes and hourly/minute stats hashes
#: (the per-host HyperLogLogs ``stats:unique_ips:*`` and the ``stats:hosts:*`` sets are not split)
HOT_KEYS: frozenset[str] = frozenset(f.template for f in KEY_FAMILIES if f.hot and not f.variables)
HOT_PREFIXES: tuple[str, ...] = tuple(f.pattern[:-1] for f in KEY_FAMILIES if f.hot and f.variables)

#: hash holding the layout the writers use (``shards``): readers take the shard count from here
#: a batch's marker (:func:`batch_marker`): set by the first copy of the batch's guarded part to run
BATCH_MARKER_PREFIX = "wp:batch:"


def batch_marker(token: str, tag: str | None = None) -> str:
    """``wp:batch:{token}``: the marker that lets a resent batch's stream entries and counters be
    applied once (see store.py). With ``tag`` (a hash tag, for a per-slot call in a cluster) it is
    ``wp:batch:{tag}:{token}``, in the slot of the keys the call touches. Short-lived (a TTL
    covering the client's retries)."""
    if tag is None:
        return f"{BATCH_MARKER_PREFIX}{token}"
    return f"{BATCH_MARKER_PREFIX}{{{tag}}}:{token}"


LAYOUT_KEY = FAMILIES["LAYOUT_KEY"].template
LAYOUT_SHARDS_FIELD = "shards"


def key_slot(key: str) -> int:
    """The Cluster hash slot of ``key`` (redis-py's CRC16, honouring ``{hash tags}``)."""
    return int(_crc_slot(key.encode("utf-8")))


#: the characters of a slot's hash tag (:func:`slot_tag`): printable, never a brace
_TAG_CHARS = bytes(c for c in range(0x30, 0x7B) if c not in b"{}")


@functools.lru_cache(maxsize=1)
def _slot_tags() -> tuple[str, ...]:
    """One shortest tag per hash slot (three characters cover all 16384), found once per process
    (tens of milliseconds, and only on a Cluster): CRC16 of the tag itself, as Redis hashes a tag."""
    from binascii import crc_hqx

    table: list[str | None] = [None] * CLUSTER_SLOTS
    left = CLUSTER_SLOTS
    for a in _TAG_CHARS:
        for b in _TAG_CHARS:
            for c in _TAG_CHARS:
                tag = bytes((a, b, c))
                slot = crc_hqx(tag, 0) % CLUSTER_SLOTS
                if table[slot] is None:
                    table[slot] = tag.decode()
                    left -= 1
            if not left:
                return tuple(t or "" for t in table)
    raise AssertionError("a slot without a tag")  # pragma: no cover - three characters cover them all


def slot_tag(slot: int) -> str:
    """A hash tag in ``slot``: a key holding ``{tag}`` lives in that slot (a per-slot batch marker,
    :func:`batch_marker`, goes where the keys of its call are, whatever characters those keys hold)."""
    return _slot_tags()[slot]


@functools.lru_cache(maxsize=64)
def shard_tags(shards: int) -> tuple[str, ...]:
    """The hash tags of the ``shards`` parts of a hot key: tag n hashes into the middle half of
    the n-th of ``shards`` equal slot ranges, so any even split of the slots over the masters
    (``redis-cli --cluster create``, or an equal range per master) gives each master an even
    share of the parts. Deterministic: every process computes the same tags."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be between 1 and {MAX_SHARDS}, not {shards}")
    width = CLUSTER_SLOTS / shards
    tags: list[str] = []
    for n in range(shards):
        low, high = n * width + width / 4, (n + 1) * width - width / 4
        attempt = 0
        while not low <= key_slot(f"{{s{n}.{attempt}}}") < high:
            attempt += 1
        tags.append(f"s{n}.{attempt}")
    return tuple(tags)


def is_hot(key: str) -> bool:
    """True for a (not yet sharded) key that cluster mode splits into parts."""
    if "{" in key:
        return False
    return key in HOT_KEYS or key.startswith(HOT_PREFIXES)


def shard_key(key: str, n: int, shards: int) -> str:
    """Part ``n`` of hot key ``key``: ``f"{key}:{{{tag}}}"``; ``key`` itself when ``shards == 1``
    (standalone Redis keeps the specification's names)."""
    if shards == 1:
        return key
    return f"{key}:{{{shard_tags(shards)[n]}}}"


def sharded(key: str, shards: int) -> list[str]:
    """Every part of ``key`` (``[key]`` when ``shards == 1``, or when ``key`` is not hot)."""
    if shards == 1 or not is_hot(key):
        return [key]
    tags = shard_tags(shards)
    return [f"{key}:{{{tag}}}" for tag in tags]


def stream_parts(shards: int) -> list[str]:
    """Every part of the two streams, in the order readers list positions: the parts of
    ``stream:logs``, then those of ``stream:requests`` (just the two streams when ``shards == 1``)."""
    return [part for stream in STREAMS for part in sharded(stream, shards)]


def shard_of(key: str) -> tuple[str, int | None]:
    """(base key, shard tag) of a sharded part; (key, None) for an unsharded key."""
    if key.endswith("}") and ":{" in key:
        base, _, tag = key.rpartition(":{")
        return base, tag[:-1]  # type: ignore[return-value]
    return key, None


def parse_layout(fields: Mapping[object, object]) -> int | None:
    """The shard count in a :data:`LAYOUT_KEY` hash (HGETALL reply), or None when absent or bad."""
    raw = fields.get(LAYOUT_SHARDS_FIELD, fields.get(LAYOUT_SHARDS_FIELD.encode()))
    try:
        shards = int(_text(raw)) if raw is not None else None
    except ValueError:
        return None
    return shards if shards is not None and 1 <= shards <= MAX_SHARDS else None


# ---------------------------------------------------------------------------- field names and stream ids

#: the field of a ``stream:logs`` / ``stream:requests`` entry that holds the record key
STREAM_KEY_FIELD = "k"
#: the record count of an hourly stats hash (``stats:requests``, ``stats:logs``)
STATS_TOTAL_FIELD = "total"
STATUS_FIELD_PREFIX = "status_"
LEVEL_FIELD_PREFIX = "level_"
#: a stream entry id as Redis writes it: ``{ms}-{seq}``
STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def status_field(code: int | str) -> str:
    """``status_{code}``: a status code's count in ``stats:requests:{hour}``."""
    return f"{STATUS_FIELD_PREFIX}{code}"


def level_field(level: str) -> str:
    """``level_{LEVEL}``: a level's count in ``stats:logs:{hour}``."""
    return f"{LEVEL_FIELD_PREFIX}{level}"


def path_field(method: str, path: str) -> str:
    """``{METHOD} {route or normalised path}``: the field of ``stats:paths`` and the route aggregates."""
    return f"{method} {path}"


def status_of_field(name: str) -> str | None:
    """The code of a :func:`status_field` (``"404"``, or ``"_OTHER"``), else None."""
    return name[len(STATUS_FIELD_PREFIX):] if name.startswith(STATUS_FIELD_PREFIX) else None


def level_of_field(name: str) -> str | None:
    """The level of a :func:`level_field`, else None."""
    return name[len(LEVEL_FIELD_PREFIX):] if name.startswith(LEVEL_FIELD_PREFIX) else None


def stream_record_key(fields: Mapping[object, object] | None) -> str | None:
    """The record key a stream entry refers to (its :data:`STREAM_KEY_FIELD`), from the bytes or
    str mapping XREAD returns; None for an entry without one."""
    if not fields:
        return None
    raw = fields.get(STREAM_KEY_FIELD.encode(), fields.get(STREAM_KEY_FIELD))
    return _text(raw) if raw is not None else None  # type: ignore[arg-type]


def stream_id(ms: int, seq: int = 0) -> str:
    return f"{ms}-{seq}"


def parse_stream_id(value: str | bytes | None) -> tuple[int, int]:
    """(ms, seq) of a stream entry id (``"0-0"`` for None; a missing sequence is 0); ValueError
    when it is not one."""
    text = _text(value) if value is not None else "0-0"
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def stream_id_ms(value: str | bytes | None) -> int:
    """The time part of a stream entry id, 0 when there is none."""
    text = _text(value) if value is not None else ""
    return int(text.split("-", 1)[0]) if text[:1].isdigit() else 0
