"""The one internal record type, and its normalisation from an OTel ReadableLogRecord.

Every door (the in-process exporter, the OTLP receiver) turns what it received into a
:class:`LogEntry` once; the write path, the query API and the forwarder use only this type.

Request records carry their HTTP fields as OTel semantic-convention attributes (the canonical keys
in :data:`REQUEST_ATTRIBUTES`). Normalisation moves those into :class:`RequestFields` and removes
them from ``attributes``, so nothing is stored twice and the forwarder can restore them exactly.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import math
import operator
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping, NamedTuple

import orjson
from opentelemetry._logs import LogRecord as APILogRecord
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.trace import TraceFlags

from .levels import is_error_severity, severity_to_name
from .masking import MASK
from .scrub import scrub_entry_parts

#: spec field name -> canonical attribute key in the OTel record (semantic conventions where they exist)
REQUEST_ATTRIBUTES: dict[str, str] = {
    "client_ip": "client.address",
    "client_hostname": "client.hostname",
    "proxy_hostname": "server.address",
    "method": "http.request.method",
    "path": "url.path",
    "query": "url.query",
    "route": "http.route",
    "status_code": "http.response.status_code",
    "response_time_ms": "http.server.response_time_ms",
    "user_id": "enduser.id",
    "user_agent": "user_agent.original",
    "referrer": "http.request.header.referer",
    "bytes_sent": "http.response.body.size",
    "error": "error.message",
    "session_id": "session.id",
    "oauth_client_id": "oauth.client_id",
}

#: attribute keys that index an application log record (first present key wins)
LOG_INDEX_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "ip": ("client.address", "client_ip", "ip"),
    "client": ("oauth.client_id", "client_id"),
    "user": ("enduser.id", "user_id", "username", "user"),
    "session": ("session.id", "session_id"),
    "host": ("server.address", "hostname", "proxy_hostname", "host"),
}

_INT_FIELDS = frozenset({"status_code", "bytes_sent"})
_FLOAT_FIELDS = frozenset({"response_time_ms"})
_EMPTY_CONTEXT = Context()


class RequestFields(NamedTuple):
    """The specification's Log Entry Schema for one HTTP request (timestamp lives on the entry).

    Immutable, so that no step changes a request behind another's back: a door builds it once, by
    keyword, and a later step that fills a field in (the reverse-DNS name, the masked query) makes a
    new one with ``_replace``. A tuple, so that building and unpacking it cost what a tuple costs on
    the request path, and its row for the writer process is ``tuple(fields)``."""

    method: str
    path: str
    status_code: int
    client_ip: str = ""
    client_hostname: str = ""
    proxy_hostname: str = ""
    query: str = ""
    route: str = ""
    response_time_ms: float = 0.0
    user_id: str = ""
    user_agent: str = ""
    referrer: str = ""
    bytes_sent: int = 0
    error: str = ""
    session_id: str = ""
    oauth_client_id: str = ""

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400


@dataclass(slots=True)
class LogEntry:
    """One log record, whichever door it came in by."""

    timestamp_ns: int
    level: str
    severity_number: int
    body: Any
    severity_text: str = ""
    component: str = ""
    event: str = ""
    trace_id: str = ""
    span_id: str = ""
    trace_flags: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    scope_name: str = ""
    scope_version: str = ""
    observed_ns: int = 0
    request: RequestFields | None = None
    #: what only an OTLP record has and the forwarder needs to rebuild it exactly (see collector/convert.py);
    #: empty for in-process records
    otlp: dict[str, Any] = field(default_factory=dict)

    @property
    def timestamp_ms(self) -> int:
        return self.timestamp_ns // 1_000_000

    @property
    def is_error(self) -> bool:
        if self.request is not None:
            return self.request.is_error
        return is_error_severity(self.severity_number)

    def index_value(self, name: str) -> str:
        """The value that indexes this application log under ``name`` (see LOG_INDEX_ATTRIBUTES)."""
        if self.request is not None:
            req = self.request
            return {
                "ip": req.client_ip,
                "client": req.oauth_client_id,
                "user": req.user_id,
                "session": req.session_id,
                "host": req.proxy_hostname,
            }.get(name, "")
        for key in LOG_INDEX_ATTRIBUTES[name]:
            value = self.attributes.get(key)
            if value is not None and value != "" and value != MASK:  # a scrubbed value indexes nothing
                return value if isinstance(value, str) else str(value)
        return ""


# ---------------------------------------------------------------------------- value safety


def json_default(value: Any) -> Any:
    """orjson fallback: anything that is not JSON becomes a faithful string or a JSON container."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode("ascii")
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return [safe_str(v) for v in value]
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, Mapping):
        return {safe_str(k): v for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return safe_str(value)


def safe_str(value: Any) -> str:
    """str() that never raises."""
    try:
        return value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the record
        try:
            return repr(value)
        except Exception:  # noqa: BLE001
            return f"<unprintable {type(value).__name__}>"


_JSON_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATACLASS


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8: a lone surrogate (which Redis, JSON and OTLP cannot carry) becomes
    its ``\\udXXX`` escape, so the original stays readable; NUL and every other character are kept."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


#: containers deeper than this are stored as their text (JSON encoders refuse deep nesting)
MAX_DEPTH = 32


def _clean_tree(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of ``value`` with every string (keys too) made valid UTF-8 and every
    number JSON can carry; the slow path of :func:`dumps`, taken only when the fast one refused."""
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(1 << 63) <= value < (1 << 64) else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= MAX_DEPTH:
        return clean_text(safe_str(value))
    if isinstance(value, Mapping):
        return {clean_text(safe_str(k)): _clean_tree(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean_tree(v, depth + 1) for v in value]
    converted = json_default(value)
    if isinstance(converted, (str, int, float, bool)) or converted is None:
        return _clean_tree(converted, depth + 1) if not isinstance(converted, str) else clean_text(converted)
    return _clean_tree(converted, depth + 1)


def dumps(value: Any) -> bytes:
    """JSON-encode anything; never raises (invalid UTF-8, huge ints and deep nesting included)."""
    try:
        return orjson.dumps(value, default=json_default, option=_JSON_OPTS)
    except (TypeError, orjson.JSONEncodeError):
        try:
            return orjson.dumps(_clean_tree(value), option=_JSON_OPTS)
        except (TypeError, orjson.JSONEncodeError, RecursionError):
            return orjson.dumps(clean_text(safe_str(value)))


def json_safe(value: Any) -> Any:
    """A JSON-compatible copy of ``value`` (primitives returned as they are)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        # JSON (orjson) and OTLP stop at 64 bits: a bigger int would turn the whole attribute map into text
        return value if -(1 << 63) <= value < (1 << 64) else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return orjson.loads(dumps(value))


def truncate(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes, with a marker saying how much was cut (and
    made valid UTF-8 by :func:`clean_text`)."""
    text = clean_text(text)
    if len(text) <= max_bytes // 4:
        return text
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    cut = raw[:max_bytes].decode("utf-8", "ignore")
    return f"{cut}...[truncated {len(raw) - len(cut.encode('utf-8'))} bytes]"


# ---------------------------------------------------------------------------- normalisation


#: the largest response time stored (about 31 years); a bigger one is clamped to it
MAX_DURATION_MS = 1e12
#: stored integers (status, byte counts) stay within 64 bits
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


def clamp_duration_ms(value: float) -> float:
    """A response time as stored: NaN and negatives become 0, huge values and infinity the maximum."""
    if not value > 0.0:
        return 0.0
    return value if value < MAX_DURATION_MS else MAX_DURATION_MS


def _as_int(value: Any) -> int:
    try:
        result = int(value)
    except (TypeError, ValueError, OverflowError):
        try:
            result = int(float(value))
        except (TypeError, ValueError, OverflowError):
            return 0
    return min(max(result, _INT_MIN), _INT_MAX)


def as_duration_ms(value: Any) -> float:
    """Any value as a stored response time (:func:`clamp_duration_ms`; not a number: 0)."""
    try:
        result = float(value)
    except OverflowError:  # an int beyond float range
        return MAX_DURATION_MS if value > 0 else 0.0
    except (TypeError, ValueError):
        return 0.0
    return clamp_duration_ms(result)


def _first_str(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    return "" if value is None else clean_text(safe_str(value))


def extract_request(attributes: dict[str, Any]) -> RequestFields | None:
    """Pop the request fields out of ``attributes`` when the record is an HTTP request, else None."""
    method_key = REQUEST_ATTRIBUTES["method"]
    status_key = REQUEST_ATTRIBUTES["status_code"]
    if method_key not in attributes or status_key not in attributes:
        return None
    values: dict[str, Any] = {}
    for name, key in REQUEST_ATTRIBUTES.items():
        if key not in attributes:
            continue
        raw = attributes.pop(key)
        if name in _INT_FIELDS:
            values[name] = _as_int(raw)
        elif name in _FLOAT_FIELDS:
            values[name] = as_duration_ms(raw)
        else:
            values[name] = _first_str(raw)
    values["method"] = values["method"].upper()
    values.setdefault("path", "")  # OTLP senders may leave url.path out
    return RequestFields(**values)


def restore_request_attributes(request: RequestFields) -> dict[str, Any]:
    """The canonical attributes of a request, the inverse of :func:`extract_request`."""
    out: dict[str, Any] = {}
    for name, key in REQUEST_ATTRIBUTES.items():
        value = getattr(request, name)
        if name in ("method", "path", "status_code") or value not in ("", 0, 0.0):
            out[key] = value
    return out


_HEXDIGITS = frozenset("0123456789abcdef")


def normalize_trace_id(value: object, width: int = 32) -> str:
    """A trace (width 32) or span (width 16) id as lowercase hex.

    Accepts an int, hex (with or without ``0x`` or UUID dashes) of the right width, or any other
    string (the specification's ``trace_id="req-123"``), which maps to the first ``width`` hex digits
    of its SHA-256: the same string always gives the same id, so the query API can look it up too.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value & ((1 << (width * 4)) - 1):0{width}x}"
    text = safe_str(value).strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    compact = text.replace("-", "") if len(text) == 36 and width == 32 else text
    if len(compact) == width and set(compact) <= _HEXDIGITS and compact.strip("0"):
        return compact
    import hashlib

    return hashlib.sha256(safe_str(value).encode("utf-8", "surrogatepass")).hexdigest()[:width]


def _hex(value: int | None, width: int) -> str:
    return f"{value:0{width}x}" if value else ""


def _resource_dict(resource: Any) -> dict[str, Any]:
    attrs = getattr(resource, "attributes", None)
    return {str(k): json_safe(v) for k, v in attrs.items()} if attrs else {}


_resource_cache: dict[int, tuple[Any, dict[str, Any]]] = {}


def _cached_resource(resource: Any) -> dict[str, Any]:
    """Resources are shared by every record of a provider; convert each once."""
    if resource is None:
        return {}
    key = id(resource)
    hit = _resource_cache.get(key)
    if hit is not None and hit[0] is resource:
        return hit[1]
    value = _resource_dict(resource)
    if len(_resource_cache) > 64:
        _resource_cache.clear()
    _resource_cache[key] = (resource, value)
    return value


class EntryLogRecord(APILogRecord):
    """An OTel LogRecord that carries its content in compact form: ``build(fields, max_message_bytes,
    max_attribute_bytes)`` makes the :class:`LogEntry`, with the same limits :func:`from_readable`
    applies. The request logger's fast path (see ``request_log.emit_request``): the record travels
    through the same BatchLogRecordProcessor queue as every other one (copying it returns it: it
    goes to our processor only), the entry is built in the exporter (off the caller's path),
    :func:`from_readable` takes it as it is instead of re-reading attributes, and the OTel fields
    (request fields as their canonical attributes) are built only if an exporter reads them."""

    __slots__ = ("build", "fields", "_entry", "_view")

    def __init__(self, build: Callable[..., LogEntry], fields: Any) -> None:  # pylint: disable=super-init-not-called
        self.build = build
        self.fields = fields
        self._entry: LogEntry | None = None
        self._view: APILogRecord | None = None

    def __copy__(self) -> EntryLogRecord:
        return self

    def finished_entry(self, readable: Any, max_message_bytes: int, max_attribute_bytes: int) -> LogEntry:
        """The entry (built once), with the limits, and the resource and scope of ``readable`` (the
        ReadableLogRecord that carries this record), as every door applies them."""
        entry = self._entry
        if entry is None:
            entry = self.build(self.fields, max_message_bytes, max_attribute_bytes)
            attributes, entry.body = scrub_entry_parts(entry.attributes, entry.body)
            entry.attributes = attributes if isinstance(attributes, dict) else dict(attributes)
            self._entry = entry
        if readable is not None:
            entry.resource = _cached_resource(readable.resource)
            scope = readable.instrumentation_scope
            if scope is not None:
                entry.scope_name = scope.name or ""
                entry.scope_version = scope.version or ""
        return entry

    def __getattr__(self, name: str) -> Any:
        """The OTel fields (``body``, ``attributes``, ...), from the entry, for an exporter that
        reads them."""
        if name.startswith("_") or name in ("build", "fields"):
            raise AttributeError(name)
        view = self._view
        if view is None:
            view = self._view = _api_record(self.finished_entry(None, _NO_LIMIT, _NO_LIMIT))
        return getattr(view, name)


_NO_LIMIT = 1 << 62


def _api_record(entry: LogEntry) -> APILogRecord:
    """The OTel LogRecord an entry stands for (the inverse of :func:`from_readable`)."""
    attributes: dict[str, Any] = {}
    if entry.request is not None:
        attributes.update(restore_request_attributes(entry.request))
    attributes.update(entry.attributes)
    if entry.component:
        attributes["component"] = entry.component
    record = APILogRecord(
        timestamp=entry.timestamp_ns,
        observed_timestamp=entry.observed_ns or entry.timestamp_ns,
        context=_EMPTY_CONTEXT,
        severity_number=SeverityNumber(entry.severity_number) if entry.severity_number else None,
        severity_text=entry.severity_text or None,
        body=entry.body,
        attributes=attributes,
        event_name=entry.event or None,
    )
    record.trace_id = int(entry.trace_id, 16) if entry.trace_id else 0
    record.span_id = int(entry.span_id, 16) if entry.span_id else 0
    record.trace_flags = TraceFlags(entry.trace_flags)
    return record


def from_readable(readable: Any, max_message_bytes: int, max_attribute_bytes: int) -> LogEntry:
    """Normalise an OTel SDK ReadableLogRecord (or ReadWriteLogRecord)."""
    record = readable.log_record
    if record.__class__ is EntryLogRecord:
        return record.finished_entry(readable, max_message_bytes, max_attribute_bytes)
    attributes: dict[str, Any] = {}
    raw_attrs, body = scrub_entry_parts(record.attributes, record.body)
    if raw_attrs:
        for key, value in raw_attrs.items():
            key = clean_text(safe_str(key))
            if isinstance(value, str):
                attributes[key] = truncate(value, max_attribute_bytes)
            else:
                attributes[key] = json_safe(value)
    component = attributes.pop("component", None)
    severity = int(record.severity_number.value) if record.severity_number is not None else 0
    if body is None:
        body = ""
    elif isinstance(body, str):
        body = truncate(body, max_message_bytes)
    else:
        body = json_safe(body)
    timestamp = record.timestamp or record.observed_timestamp or 0
    scope = readable.instrumentation_scope
    request = extract_request(attributes)
    return LogEntry(
        timestamp_ns=int(timestamp),
        observed_ns=int(record.observed_timestamp or timestamp),
        level=severity_to_name(severity),
        severity_number=severity,
        severity_text=record.severity_text or "",
        body=body,
        component="" if component is None else truncate(safe_str(component), max_attribute_bytes),
        event=truncate(safe_str(record.event_name), max_attribute_bytes) if record.event_name else "",
        trace_id=_hex(record.trace_id, 32),
        span_id=_hex(record.span_id, 16),
        trace_flags=int(record.trace_flags or 0),
        attributes=attributes,
        resource=_cached_resource(readable.resource),
        scope_name=getattr(scope, "name", "") or "",
        scope_version=getattr(scope, "version", "") or "",
        request=request,
    )


#: LogEntry's fields in declaration order: the row layout, generated (reordering a field cannot
#: make the two ends of the writer-process pipe disagree)
ENTRY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(LogEntry))
_entry_values = operator.attrgetter(*ENTRY_FIELDS)
_REQUEST_AT = ENTRY_FIELDS.index("request")


def entry_to_row(entry: LogEntry) -> tuple[Any, ...]:
    """A LogEntry as a tuple of plain values (what ``marshal`` carries to the writer process): its
    fields in :data:`ENTRY_FIELDS` order, the request as a plain tuple."""
    row = _entry_values(entry)
    req = row[_REQUEST_AT]
    if req is None:
        return row  # type: ignore[no-any-return]
    return (*row[:_REQUEST_AT], tuple(req), *row[_REQUEST_AT + 1:])


def entry_from_row(row: tuple[Any, ...]) -> LogEntry:
    """Inverse of :func:`entry_to_row`."""
    request = row[_REQUEST_AT]
    if request is not None:
        row = (*row[:_REQUEST_AT], RequestFields._make(request), *row[_REQUEST_AT + 1:])
    return LogEntry(*row)


def iso_from_ns(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds: exact, sortable, and readable in redis-cli."""
    seconds, rem = divmod(ns, 1_000_000_000)
    return f"{_iso_second(seconds)}.{rem:09d}Z"


@functools.lru_cache(maxsize=1024)
def _iso_second(seconds: int) -> str:
    """The whole-second part of :func:`iso_from_ns` (records of one batch share a few seconds)."""
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


@functools.lru_cache(maxsize=4096)
def _epoch_seconds(main: str) -> int:
    """Seconds of ``YYYY-MM-DDTHH:MM:SS`` UTC; cached, as the records read together share seconds."""
    return int(_dt.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.timezone.utc).timestamp())


def ns_from_iso(text: str) -> int:
    """Inverse of :func:`iso_from_ns` (also accepts fewer fractional digits)."""
    main, _, frac = text.rstrip("Z").partition(".")
    frac = (frac + "000000000")[:9]
    return _epoch_seconds(main) * 1_000_000_000 + int(frac)


def iter_chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def entry_to_dict(key: str, entry: LogEntry) -> dict[str, Any]:
    """The JSON shape of a record everywhere outside Redis (API, SSE, CLI --json, console).

    Flat: ``id`` (the record key), ``kind`` (``request`` or ``log``), the common fields, and for
    requests the specification's Log Entry Schema fields at top level.
    """
    out: dict[str, Any] = {
        "id": key,
        "kind": "request" if entry.request is not None else "log",
        "timestamp": iso_from_ns(entry.timestamp_ns),
        "level": entry.level,
        "severity_number": entry.severity_number,
        "body": entry.body,
        "component": entry.component or None,
        "event": entry.event or None,
        "trace_id": entry.trace_id or None,
        "span_id": entry.span_id or None,
        "attributes": entry.attributes,
        "resource": entry.resource,
    }
    req = entry.request
    if req is not None:
        out.update(
            client_ip=req.client_ip or None,
            client_hostname=req.client_hostname or None,
            proxy_hostname=req.proxy_hostname or None,
            method=req.method,
            path=req.path,
            query=req.query or None,
            route=req.route or None,
            status_code=req.status_code,
            response_time_ms=req.response_time_ms,
            user_id=req.user_id or None,
            user_agent=req.user_agent or None,
            referrer=req.referrer or None,
            bytes_sent=req.bytes_sent,
            error=req.error or None,
            session_id=req.session_id or None,
            oauth_client_id=req.oauth_client_id or None,
        )
    return out
