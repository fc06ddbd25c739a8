"""The log_* functions: a level check first, then one OTel LogRecord handed to the batch queue.

A call never blocks on Redis and never raises: before :func:`otel_redis.configure` records wait in a
bounded buffer; after it they go to the BatchLogRecordProcessor's queue, which a worker thread
drains. No asyncio task is created, so calls are equally safe from sync code, threads, coroutines
and forked children.
"""

from __future__ import annotations

import os
import traceback
from collections import deque
from time import time_ns
from typing import Any, Callable, Mapping, Protocol

from .config import Settings
from .counters import COUNTERS
from .levels import CRITICAL, DEBUG, ERROR, INFO, NAME_TO_LEVEL, TRACE, WARNING, parse_level
from .record import json_safe, safe_str

__all__ = [
    "log_trace",
    "log_debug",
    "log_info",
    "log_warning",
    "log_error",
    "log_critical",
    "log_event",
    "log_at",
]


class Sink(Protocol):
    """Where log calls go: the configured pipeline (:class:`otel_redis.pipeline.Pipeline`), or the
    pre-configure buffer. ``fast``: the sink takes compact request records (``emit_fields``).
    ``settings``: the configuration the sink was built with (None: the environment's), read by the
    request doors (``log_request``'s DNS lookup) so that they need not import the pipeline."""

    fast: bool
    settings: Settings | None

    def emit(
        self,
        timestamp_ns: int,
        levelno: int,
        body: Any,
        attributes: dict[str, Any],
        event: str | None,
        trace_id: Any,
        span_id: Any,
    ) -> None: ...

    def emit_fields(self, build: Callable[..., Any], fields: Any) -> None: ...


class PendingBuffer:
    """The sink before :func:`otel_redis.configure`: a bounded buffer replayed into the pipeline
    when it is set; overflow is counted as ``dropped_preconfigure``."""

    fast = False
    settings = None

    def __init__(self, maxlen: int = 10_000) -> None:
        self.maxlen = maxlen
        self.records: deque[tuple[Any, ...]] = deque()

    def emit(self, *args: Any) -> None:
        if len(self.records) < self.maxlen:
            self.records.append(args)
        else:
            COUNTERS.add("dropped_preconfigure")

    def emit_fields(self, build: Callable[..., Any], fields: Any) -> None:
        """Not called: ``fast`` is False, so request records come as ``emit`` calls."""

    def replay(self, sink: Sink) -> None:
        records = self.records
        while records:
            try:
                args = records.popleft()
            except IndexError:
                break
            try:
                sink.emit(*args)
            except Exception:  # noqa: BLE001
                COUNTERS.add("internal_errors")


def _initial_gate() -> int:
    try:
        return NAME_TO_LEVEL[parse_level(os.environ.get("LOG_LEVEL"))]
    except ValueError:
        return INFO  # configure() reports the invalid value


#: calls below this stdlib level number return at once; set by configure()
_gate: int = _initial_gate()
_buffer = PendingBuffer()
_sink: Sink = _buffer

_SIMPLE = (str, int, float, bool, type(None))


def current_sink() -> Sink | None:
    """The configured pipeline, or None before :func:`otel_redis.configure` (records then wait in
    the pre-configure buffer)."""
    sink = _sink
    return None if sink is _buffer else sink


def set_sink(sink: Sink | None, *, level: int | None = None, pending_max: int | None = None) -> None:
    """Point log calls at ``sink`` and replay the pre-configure buffer into it (None: back to the
    buffer). ``level``: calls below this stdlib level number return at once from now on. Called by
    :func:`otel_redis.configure` and :func:`otel_redis.shutdown` only (tests use a fixture)."""
    global _sink, _gate
    if level is not None:
        _gate = level
    if pending_max is not None:
        _buffer.maxlen = pending_max
    if sink is None:
        _sink = _buffer
        return
    _sink = sink
    _buffer.replay(sink)


def level_gate() -> int:
    """The stdlib level number below which log calls return at once."""
    return _gate


def pending() -> PendingBuffer:
    """The pre-configure buffer (its ``records`` and ``maxlen``)."""
    return _buffer


def exception_attributes(exc: BaseException) -> dict[str, str]:
    """OTel ``exception.*`` attributes, computed at the call (the traceback pins frames otherwise)."""
    cls = type(exc)
    module = cls.__module__
    return {
        "exception.type": cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}",
        "exception.message": safe_str(exc),
        "exception.stacktrace": "".join(traceback.format_exception(cls, exc, exc.__traceback__)),
    }


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """Snapshot non-primitive values now, so later mutation by the caller cannot change the record."""
    return {
        safe_str(k): v if isinstance(v, _SIMPLE) else json_safe(v) for k, v in attributes.items()
    }


def _emit(
    levelno: int, body: Any, component: Any, attributes: dict[str, Any], event: str | None, ts: int = 0
) -> None:
    """Build and hand over one record (no level check: callers do it; the request logger skips it)."""
    try:
        ts = ts or time_ns()
        trace_id = span_id = None
        if attributes:
            error = attributes.get("error")
            if isinstance(error, BaseException):
                del attributes["error"]
                attributes.update(exception_attributes(error))
            if "trace_id" in attributes:
                trace_id = attributes.pop("trace_id")
            if "span_id" in attributes:
                span_id = attributes.pop("span_id")
            for value in attributes.values():
                if not isinstance(value, _SIMPLE):
                    attributes = _clean(attributes)
                    break
        if component is not None:
            attributes["component"] = component if isinstance(component, str) else safe_str(component)
        if not isinstance(body, str):
            body = safe_str(body)
        _sink.emit(ts, levelno, body, attributes, event, trace_id, span_id)
    except Exception:  # noqa: BLE001 - a log call never raises into the application
        COUNTERS.add("internal_errors")


#: :func:`_emit` for the package's other doors (the request logger, the OAuth helpers)
emit = _emit


def log_trace(message: Any, component: str | None = None, **attributes: Any) -> None:
    """TRACE (5): very verbose debugging."""
    if TRACE < _gate:
        return
    _emit(TRACE, message, component, attributes, None)


def log_debug(message: Any, component: str | None = None, **attributes: Any) -> None:
    if DEBUG < _gate:
        return
    _emit(DEBUG, message, component, attributes, None)


def log_info(message: Any, component: str | None = None, **attributes: Any) -> None:
    """``log_info("Server started", component="api_server", port=8080)``."""
    if INFO < _gate:
        return
    _emit(INFO, message, component, attributes, None)


def log_warning(message: Any, component: str | None = None, **attributes: Any) -> None:
    if WARNING < _gate:
        return
    _emit(WARNING, message, component, attributes, None)


def log_error(message: Any, component: str | None = None, **attributes: Any) -> None:
    """``log_error("Connection failed", component="proxy", error=exc)`` stores exception.* attributes."""
    if ERROR < _gate:
        return
    _emit(ERROR, message, component, attributes, None)


def log_critical(message: Any, component: str | None = None, **attributes: Any) -> None:
    if CRITICAL < _gate:
        return
    _emit(CRITICAL, message, component, attributes, None)


def log_at(levelno: int, message: Any, component: str | None = None, **attributes: Any) -> None:
    """Log at a stdlib level number (used by the stdlib bridge and the request logger)."""
    if levelno < _gate:
        return
    _emit(levelno, message, component, attributes, None)


def log_event(
    event_name: str,
    data: Mapping[str, Any] | None = None,
    component: str | None = None,
    *,
    level: str = "INFO",
    message: str | None = None,
    **attributes: Any,
) -> None:
    """``log_event("proxy_created", {"hostname": "example.com"}, trace_id="...")``: an OTel event record.

    ``data`` becomes attributes; the body is ``message`` or the event name.
    """
    try:
        levelno = NAME_TO_LEVEL[parse_level(level)]
    except ValueError:
        levelno = INFO
    if levelno < _gate:
        return
    if data:
        try:
            merged = dict(data)
        except Exception:  # noqa: BLE001
            merged = {"data": safe_str(data)}
        merged.update(attributes)
        attributes = merged
    _emit(levelno, message if message is not None else event_name, component, attributes, safe_str(event_name))
