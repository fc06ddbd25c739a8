"""Request records: the one place that turns request fields into a LogRecord, plus
``log_request`` / ``log_response`` for code that is not ASGI (a proxy handler, say).

``log_request`` remembers the request under its trace id; ``log_response`` with the same trace id
completes it, and ONE record is emitted with every field of the Log Entry Schema. Unanswered
requests are bounded in number and age; when evicted they are still emitted (status 0, with an
``error`` saying no response was logged), so nothing disappears silently.

Request records are an access log: they are not subject to ``LOG_LEVEL`` (a WARNING gate must not
silence successful requests); their level is INFO, WARNING for 4xx and ERROR for 5xx.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import OrderedDict
from time import time_ns
from typing import Any, Callable, Mapping, NamedTuple

from opentelemetry import trace
from opentelemetry.trace import get_current_span

from . import api
from .client_ip import clean_hostname, valid_ip
from .counters import COUNTERS
from .dns import current as current_resolver
from .levels import NAME_TO_SEVERITY
from .masking import default_masker
from .record import (
    MAX_DURATION_MS,
    REQUEST_ATTRIBUTES,
    LogEntry,
    RequestFields,
    as_duration_ms,
    clamp_duration_ms,
    clean_text,
    normalize_trace_id,
    safe_str,
    truncate,
)
from .levels import REQUEST_COMPONENT, request_level, request_levelno
from .schema import request_body

_A = REQUEST_ATTRIBUTES
COMPONENT = REQUEST_COMPONENT


class RequestCall(NamedTuple):
    """One finished request as the direct path queues it: what the batch queue carries and, as a
    plain tuple, what goes to the writer process. The order of these fields is written down here;
    :func:`queue_request` fills a plain tuple in this order (the request path's cheapest form) and
    :func:`request_entry` unpacks it. The values are as the caller gave them; :func:`request_entry`
    bounds and cleans them."""

    timestamp_ns: int
    method: str
    path: str
    status_code: int
    client_ip: str
    client_hostname: str
    proxy_hostname: str
    query: str
    route: str
    response_time_ms: float
    user_id: str
    user_agent: str
    referrer: str
    bytes_sent: int
    error: str
    trace_id: Any
    span_id: Any
    trace_flags: int
    extra: dict[str, str] | None
    component: Any
PENDING_MAX = 10_000
PENDING_MAX_AGE_S = 300.0


_claimed = False


def claim_requests() -> None:
    """Called by ``instrument_app``: this process logs requests through the middleware, so the span
    exporter must not write a second record for the same request."""
    global _claimed
    _claimed = True


def requests_claimed() -> bool:
    return _claimed


def emit_request(
    timestamp_ns: int,
    method: str,
    path: str,
    status_code: int,
    client_ip: str = "",
    proxy_hostname: str = "",
    *,
    client_hostname: str = "",
    query: str = "",
    route: str = "",
    response_time_ms: float = 0.0,
    user_id: str = "",
    user_agent: str = "",
    referrer: str = "",
    bytes_sent: int = 0,
    error: str = "",
    trace_id: int | str | None = None,
    span_id: int | str | None = None,
    extra: Mapping[str, Any] | None = None,
    component: str = COMPONENT,
) -> None:
    """Hand one finished request to the pipeline (never blocks, never raises).

    Values must already be safe: masked query and referrer, validated client IP and hostname.
    When the pipeline owns its processor and the values have their documented types (what the
    middleware passes), the record is built directly as a :class:`~otel_redis.record.LogEntry`;
    otherwise it takes the general path (OTel attributes, normalised by the exporter). Both give
    the same stored record.
    """
    sink = api.current_sink()
    if (
        sink is not None
        and sink.fast
        and type(status_code) is int
        and type(bytes_sent) is int
        and type(response_time_ms) in _NUMBER
        and type(method) is str
        and type(path) is str
        and type(client_ip) is str
        and type(proxy_hostname) is str
        and type(client_hostname) is str
        and type(query) is str
        and type(route) is str
        and type(user_id) is str
        and type(user_agent) is str
        and type(referrer) is str
        and type(error) is str
        and (not extra or plain_extra(extra))
    ):
        queue_request(
            sink, timestamp_ns, method, path, status_code, client_ip, proxy_hostname, client_hostname, query,
            route, response_time_ms, user_id, user_agent, referrer, bytes_sent, error, trace_id, span_id, extra,
            component,
        )
        return
    attributes = _general_attributes(method, path, status_code, response_time_ms, bytes_sent, (
        ("client_ip", client_ip), ("client_hostname", client_hostname), ("proxy_hostname", proxy_hostname),
        ("query", query), ("route", route), ("user_id", user_id), ("user_agent", user_agent),
        ("referrer", referrer), ("error", error),
    ), extra, trace_id, span_id)
    api.emit(request_levelno(status_code), f"{method} {path} {status_code}", component, attributes, None, timestamp_ns)


def _general_attributes(
    method: str,
    path: str,
    status_code: int,
    response_time_ms: float,
    bytes_sent: int,
    optional: tuple[tuple[str, str], ...],
    extra: Mapping[str, Any] | None,
    trace_id: int | str | None,
    span_id: int | str | None,
) -> dict[str, Any]:
    """The OTel attributes of :func:`emit_request`'s general path (values of any type, or a pipeline
    that does not own its processor), which the exporter normalises (``record.from_readable``) into
    the entry the direct path builds. ``optional`` holds the ``(field, value)`` pairs stored only
    when set."""
    attributes: dict[str, Any] = {
        _A["method"]: method,
        _A["path"]: path,
        _A["status_code"]: status_code,
        _A["response_time_ms"]: response_time_ms,
        _A["bytes_sent"]: bytes_sent,
    }
    for name, value in optional:
        if value:
            attributes[_A[name]] = value
    if extra:
        attributes.update(extra)
    if trace_id is not None:
        attributes["trace_id"] = trace_id
        if span_id is not None:
            attributes["span_id"] = span_id
    return attributes


def queue_request(
    sink: Any,
    timestamp_ns: int,
    method: str,
    path: str,
    status_code: int,
    client_ip: str,
    proxy_hostname: str,
    client_hostname: str,
    query: str,
    route: str,
    response_time_ms: float,
    user_id: str,
    user_agent: str,
    referrer: str,
    bytes_sent: int,
    error: str,
    trace_id: Any,
    span_id: Any,
    extra: Mapping[str, str] | None,
    component: Any,
) -> None:
    """The direct path of :func:`emit_request` for values of the documented types (the middleware
    calls it): one tuple goes on the batch queue, and the exporter builds the entry from it
    (:func:`request_entry`). Never raises."""
    try:
        if trace_id is None:  # the current span's ids, read now (the record is built later)
            ctx = get_current_span().get_span_context()
            trace_id, span_id, flags = ctx.trace_id, ctx.span_id, int(ctx.trace_flags)
        else:
            flags = 1  # SAMPLED, as Pipeline.emit sets for an explicit trace id
        # a RequestCall's values in its field order, as a plain tuple: building it by keyword cost
        # several times more on the request path (tests/otel_redis/test_record.py checks the order)
        sink.emit_fields(request_entry, (
            timestamp_ns or time_ns(), method, path, status_code, client_ip, client_hostname, proxy_hostname, query,
            route, response_time_ms, user_id, user_agent, referrer, bytes_sent, error, trace_id, span_id, flags,
            dict(extra) if extra else None, component,
        ))
    except Exception:  # noqa: BLE001 - never raise into the application
        COUNTERS.add("internal_errors")


def request_entry(fields: tuple[Any, ...], max_message_bytes: int, max_attribute_bytes: int) -> LogEntry:
    """The entry of a request queued by :func:`queue_request` (a :class:`RequestCall`, or the same
    values as a plain tuple from the writer process's pipe): exactly what the general path (OTel
    attributes, normalised by ``record.from_readable`` with these limits) gives for the same call."""
    (ts, method, path, status, client_ip, client_hostname, proxy_hostname, query, route, rt, user_id, user_agent,
     referrer, bytes_sent, error, trace_id, span_id, flags, extra, component) = fields
    if not _INT_MIN <= status <= _INT_MAX or not _INT_MIN <= bytes_sent <= _INT_MAX:
        status, bytes_sent = (min(max(v, _INT_MIN), _INT_MAX) for v in (status, bytes_sent))
    cut = max_attribute_bytes >> 2  # below this many characters no value can be over the limit
    if (len(method) > cut or len(path) > cut or len(client_ip) > cut or len(client_hostname) > cut
            or len(proxy_hostname) > cut or len(query) > cut or len(route) > cut or len(user_id) > cut
            or len(user_agent) > cut or len(referrer) > cut or len(error) > cut):
        method, path, client_ip, client_hostname, proxy_hostname, query, route, user_id, user_agent, referrer, error = (
            truncate(v, max_attribute_bytes) for v in (method, path, client_ip, client_hostname, proxy_hostname, query,
                                                       route, user_id, user_agent, referrer, error)
        )
    elif not (method.isascii() and path.isascii() and client_hostname.isascii() and proxy_hostname.isascii()
              and query.isascii() and route.isascii() and user_id.isascii() and user_agent.isascii()
              and referrer.isascii() and error.isascii()):
        # short values are not truncated, but a lone surrogate must still become valid text
        method, path, client_hostname, proxy_hostname, query, route, user_id, user_agent, referrer, error = (
            clean_text(v) for v in (method, path, client_hostname, proxy_hostname, query, route, user_id, user_agent,
                                    referrer, error)
        )
    body = request_body(method, path, status)
    if len(body) > max_message_bytes >> 2:
        body = truncate(body, max_message_bytes)
    if extra:
        extra = {clean_text(k): truncate(v, max_attribute_bytes) for k, v in extra.items()}
    if not isinstance(component, str):
        component = "" if component is None else safe_str(component)
    if len(component) > cut:
        component = truncate(component, max_attribute_bytes)
    rt = float(rt) if type(rt) is float or -(1 << 53) < rt < (1 << 53) else as_duration_ms(rt)
    if not 0.0 <= rt < MAX_DURATION_MS:  # negative, nan, inf or absurdly large
        rt = clamp_duration_ms(rt)
    level = request_level(status)
    severity = _SEVERITY[level]
    # positional: keyword construction cost about 2 us more per record (the test checks every field)
    return LogEntry(
        ts, level, severity, body, level, component, "", _id_hex(trace_id, 32),
        _id_hex(span_id, 16) if span_id is not None else "", flags, extra or {}, {}, "", "", ts,
        RequestFields(
            method.upper(), path, status, client_ip, client_hostname, proxy_hostname, query, route, rt, user_id,
            user_agent, referrer, bytes_sent, error, "", "",
        ),
        {},
    )


_NUMBER = (float, int)
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
#: the OTel severity number of each level a request record can have (levels.request_level)
_SEVERITY = {name: NAME_TO_SEVERITY[name].value for name in ("INFO", "WARNING", "ERROR")}
#: attribute keys ``extra`` must not carry on the direct path (they mean something to the general one)
_RESERVED = frozenset({*REQUEST_ATTRIBUTES.values(), "trace_id", "span_id", "error", "component"})


def plain_extra(extra: Mapping[str, Any]) -> bool:
    """Extra attributes the direct path stores as they are: string keys and values, none reserved."""
    for key, value in extra.items():
        if type(key) is not str or type(value) is not str or key in _RESERVED:
            return False
    return True


def _id_hex(value: Any, width: int) -> str:
    """A trace or span id as Pipeline.emit and from_readable would store it ("" for zero)."""
    if type(value) is int:
        value &= (1 << (width * 4)) - 1
        return f"{value:0{width}x}" if value else ""
    text = normalize_trace_id(value, width)
    return text if text.strip("0") else ""


# ---------------------------------------------------------------------------- log_request / log_response


class _Open:
    __slots__ = ("timestamp_ns", "started", "fields", "span_id")

    def __init__(self, timestamp_ns: int, started: float, fields: dict[str, Any], span_id: int) -> None:
        self.timestamp_ns = timestamp_ns
        self.started = started
        self.fields = fields
        self.span_id = span_id


_open: OrderedDict[str, _Open] = OrderedDict()
_open_lock = threading.Lock()


def _current_ids() -> tuple[int, int]:
    ctx = trace.get_current_span().get_span_context()
    return (ctx.trace_id, ctx.span_id) if ctx.is_valid else (0, 0)


def log_request(
    method: str,
    path: str,
    client_ip: str = "",
    proxy_hostname: str = "",
    *,
    trace_id: Any = None,
    user_id: str = "",
    user_agent: str = "",
    referrer: str = "",
    route: str = "",
    headers: Mapping[str, str] | None = None,
) -> str:
    """Start a request record; returns its trace id (32 hex digits) for :func:`log_response`.

    ``trace_id`` defaults to the current span's, else a new one. ``path`` may carry a query string
    (masked before it is stored); ``client_ip`` is stored only when it is an IP address;
    ``headers`` (optional) supply ``User-Agent`` and ``Referer`` when not given.
    """
    try:
        now_ns = time.time_ns()
        span_id = 0
        if trace_id is None:
            tid, span_id = _current_ids()
            trace_hex = f"{tid:032x}" if tid else f"{random.getrandbits(128) or 1:032x}"
        else:
            trace_hex = normalize_trace_id(trace_id)
        if headers:
            lowered = {safe_str(k).lower(): safe_str(v) for k, v in headers.items()}
            user_agent = user_agent or lowered.get("user-agent", "")
            referrer = referrer or lowered.get("referer", "")
        masker = default_masker()
        path = safe_str(path)
        path, _, query = path.partition("?")
        ip = valid_ip(safe_str(client_ip))
        sink = api.current_sink()
        resolver = current_resolver(sink.settings if sink is not None else None)
        if ip and resolver is not None:
            resolver.lookup(ip)
        fields = {
            "method": safe_str(method).upper()[:32],
            "path": path,
            "client_ip": ip,
            "proxy_hostname": clean_hostname(safe_str(proxy_hostname)),
            "query": masker.query(query),
            "route": safe_str(route),
            "user_id": safe_str(user_id),
            "user_agent": safe_str(user_agent),
            "referrer": masker.url(safe_str(referrer)),
        }
        evicted: list[tuple[str, _Open]] = []
        with _open_lock:
            _open[trace_hex] = _Open(now_ns, time.perf_counter(), fields, span_id)
            _open.move_to_end(trace_hex)
            cutoff = time.perf_counter() - PENDING_MAX_AGE_S
            while _open:
                oldest_key, oldest = next(iter(_open.items()))
                if len(_open) <= PENDING_MAX and oldest.started >= cutoff:
                    break
                _open.popitem(last=False)
                evicted.append((oldest_key, oldest))
        for key, item in evicted:
            _emit_open(key, item, 0, None, error=f"no response logged within {PENDING_MAX_AGE_S:.0f} s")
        return trace_hex
    except Exception:  # noqa: BLE001 - never raise into the application
        COUNTERS.add("internal_errors")
        return ""


def log_response(
    status: int,
    response_time_ms: float | None = None,
    trace_id: Any = None,
    *,
    bytes_sent: int = 0,
    error: Any = None,
    user_id: str | None = None,
) -> None:
    """Complete the request started by :func:`log_request` with the same ``trace_id`` (default: the
    current span's) and emit its one record. ``response_time_ms`` defaults to the time since
    ``log_request``. Without a matching request, a record with just the response fields is emitted."""
    try:
        if trace_id is None:
            tid, _ = _current_ids()
            trace_hex = f"{tid:032x}" if tid else ""
        else:
            trace_hex = normalize_trace_id(trace_id)
        with _open_lock:
            item = _open.pop(trace_hex, None) if trace_hex else None
        if item is None:
            item = _Open(time.time_ns(), time.perf_counter(), {"method": "", "path": ""}, 0)
        if user_id:
            item.fields["user_id"] = safe_str(user_id)
        err = "" if error is None else safe_str(error) if not isinstance(error, BaseException) else (
            f"{type(error).__name__}: {error}"
        )
        _emit_open(trace_hex, item, int(status), response_time_ms, bytes_sent=int(bytes_sent or 0), error=err)
    except Exception:  # noqa: BLE001
        COUNTERS.add("internal_errors")


def _emit_open(
    trace_hex: str,
    item: _Open,
    status: int,
    response_time_ms: float | None,
    *,
    bytes_sent: int = 0,
    error: str = "",
) -> None:
    if response_time_ms is None:
        response_time_ms = (time.perf_counter() - item.started) * 1000.0
    f = item.fields
    emit_request(
        item.timestamp_ns,
        f["method"],
        f["path"],
        status,
        f.get("client_ip", ""),
        f.get("proxy_hostname", ""),
        query=f.get("query", ""),
        route=f.get("route", ""),
        response_time_ms=as_duration_ms(response_time_ms),
        user_id=f.get("user_id", ""),
        user_agent=f.get("user_agent", ""),
        referrer=f.get("referrer", ""),
        bytes_sent=bytes_sent,
        error=error,
        trace_id=trace_hex or None,
        span_id=item.span_id or None,
    )


_drains: list[Callable[[], int]] = []


def on_shutdown_drain(drain: Callable[[], int]) -> None:
    """Register a door's ``drain()``: at shutdown it finishes the door's requests still in flight and
    returns how many it recorded as interrupted (the WSGI door: daemon threads of a threaded server)."""
    if drain not in _drains:
        _drains.append(drain)


def emit_unanswered() -> int:
    """Emit every request still waiting for its ``log_response`` (status 0 and an error saying so),
    after the doors' drains: called by shutdown, so an unanswered request is stored rather than lost.
    Returns how many were emitted unfinished."""
    drained = 0
    for drain in list(_drains):
        try:
            drained += drain()
        except Exception:  # noqa: BLE001 - never raise into the application
            COUNTERS.add("internal_errors")
    return drained + _emit_unanswered_log_requests()


def _emit_unanswered_log_requests() -> int:
    with _open_lock:
        items = list(_open.items())
        _open.clear()
    for key, item in items:
        try:
            _emit_open(key, item, 0, None, error="no response logged before shutdown")
        except Exception:  # noqa: BLE001 - never raise into the application
            COUNTERS.add("internal_errors")
    return len(items)


def _forget_in_child() -> None:
    """A forked child does not own its parent's open requests (the parent emits them)."""
    global _open_lock
    _open_lock = threading.Lock()
    _open.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
