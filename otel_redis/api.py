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
from typing import Any, Mapping, Protocol

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


def _initial_gate() -> int:
    try:
        return NAME_TO_LEVEL[parse_level(os.environ.get("LOG_LEVEL"))]
    except ValueError:
        return INFO  # configure() reports the invalid value


#: calls below this stdlib level number return at once; set by configure()
_gate: int = _initial_gate()
_sink: Sink | None = None
_pending: deque[tuple[Any, ...]] = deque()
_pending_max = 10_000

_SIMPLE = (str, int, float, bool, type(None))


def _set_gate(levelno: int) -> None:
    global _gate
    _gate = levelno


def _install(sink: Sink | None, pending_max: int | None = None) -> None:
    """Point the API at a pipeline (or back at the pre-configure buffer) and replay the buffer."""
    global _sink, _pending_max
    if pending_max is not None:
        _pending_max = pending_max
    _sink = sink
    if sink is None:
        return
    while _pending:
        try:
            args = _pending.popleft()
        except IndexError:
            break
        try:
            sink.emit(*args)
        except Exception:  # noqa: BLE001
            COUNTERS.add("internal_errors")


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
        sink = _sink
        if sink is not None:
            sink.emit(ts, levelno, body, attributes, event, trace_id, span_id)
        elif len(_pending) < _pending_max:
            _pending.append((ts, levelno, body, attributes, event, trace_id, span_id))
        else:
            COUNTERS.add("dropped_preconfigure")
    except Exception:  # noqa: BLE001 - a log call never raises into the application
        COUNTERS.add("internal_errors")


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
