"""Django middleware: one request record per request. Name it first in ``MIDDLEWARE``::

    MIDDLEWARE = ["otel_redis.django.RequestLoggingMiddleware", ...]

Same record as ``instrument_app``: the route template (``resolver_match.route``), client IP with
trusted proxies (``OTEL_REDIS_TRUSTED_PROXIES``), masking, the user (``request.user_id`` set by the
app, else the authenticated user's name), exceptions as 500 with their error (Django turns them into
a 500 response; the middleware sees them through ``process_exception``), and streaming responses
timed to their last chunk. Records go to the pipeline of :func:`otel_redis.configure`.
"""

from __future__ import annotations

from threading import get_ident
from time import perf_counter, time_ns
from typing import Any, Callable, Iterator

from .levels import REQUEST_COMPONENT
from .wsgi import Door, describe, release, timed_body, trace_ids

_ERROR_ATTR = "_otel_redis_error"


def request_user_id(request: Any) -> str:
    """``request.user_id`` when the app set one, else the authenticated user's username."""
    value = getattr(request, "user_id", None)
    if value:
        return str(value)
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.get_username())
    return ""


def request_route(request: Any) -> str:
    """The URL pattern that matched (``items/<int:item_id>``) with a leading slash, like the path."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", "") or ""
    return route if not route or route.startswith("/") else "/" + route


class RequestLoggingMiddleware:
    """New-style Django middleware (synchronous)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.door = Door.build(None, None, None, REQUEST_COMPONENT)

    def __call__(self, request: Any) -> Any:
        environ = request.META
        if self.door.excluded(request.path_info):
            return self.get_response(request)
        timestamp_ns, started = time_ns(), perf_counter()
        trace_id, span_id, token = trace_ids(environ.get("HTTP_TRACEPARENT", ""))
        attached = (token, get_ident())  # released on this thread only (wsgi.release)
        try:
            response = self.get_response(request)
        except BaseException as exc:
            self._emit(request, timestamp_ns, started, 500, 0, describe(exc), trace_id, span_id, attached)
            raise
        if getattr(response, "streaming", False):
            response.streaming_content = self._timed(
                response.streaming_content, request, response.status_code, timestamp_ns, started, trace_id, span_id,
                attached,
            )
            return response
        error = getattr(request, _ERROR_ATTR, "")
        self._emit(request, timestamp_ns, started, response.status_code, len(response.content), error,
                   trace_id, span_id, attached)
        return response

    def process_exception(self, request: Any, exception: Exception) -> None:
        """Remember the error of the view; Django answers 500 itself."""
        setattr(request, _ERROR_ATTR, describe(exception))

    def _timed(self, content: Any, request: Any, status: int, timestamp_ns: int, started: float, trace_id: int,
               span_id: int, attached: tuple[Any, int]) -> Iterator[bytes]:
        return timed_body(content, lambda sent, error: self._emit(
            request, timestamp_ns, started, status, sent, error, trace_id, span_id, attached))

    def _emit(self, request: Any, timestamp_ns: int, started: float, status: int, sent: int, error: str,
              trace_id: int, span_id: int, attached: tuple[Any, int]) -> None:
        elapsed = (perf_counter() - started) * 1000.0
        release(*attached)
        try:
            user, route = request_user_id(request), request_route(request)
        except Exception:  # noqa: BLE001 - a broken user object must not lose the record
            user, route = "", ""
        self.door.emit(request.META, timestamp_ns, elapsed, status, sent, error, route, user, trace_id, span_id)
