"""``instrument_app`` for WSGI: one request record per request of a Flask app, a Django WSGI handler
or any WSGI callable, with the ASGI hook's features.

The record is emitted when the response body is exhausted (streaming responses are timed to their
last chunk), or when the app raises (status 500, the error, and the exception re-raised). Client IP
and proxy hostname follow the trusted-proxy rule; query and referrer are masked. Trace ids: the
current span's when an OpenTelemetry instrumentation started one, else the incoming ``traceparent``
continued (or a new trace) on a non-recording span that is current while the app runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from random import getrandbits
from threading import get_ident
from time import perf_counter, sleep, time_ns
from typing import Any, Callable, Iterable, Iterator

from opentelemetry.context import attach, detach
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    get_current_span,
    set_span_in_context,
)

from .client_ip import TrustedProxies
from .config import Settings, load_settings
from .counters import COUNTERS
from .levels import REQUEST_COMPONENT
from .masking import Masker
from .request_log import claim_requests, emit_request, on_shutdown_drain
from .traceparent import parse_traceparent

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
UserIdGetter = Callable[[Environ], Any]
RouteGetter = Callable[[Environ], str]

DEFAULT_EXCLUDED_PATHS = ("/healthz", "/health", "/livez", "/readyz")
USER_ID_KEY = "otel_redis.user_id"
ROUTE_KEY = "otel_redis.route"
ERROR_KEY = "otel_redis.error"
SHUTDOWN_GRACE_S = 2.0
INTERRUPTED = "shutdown: the process stopped before the response ended"


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def timed_body(body: Iterable[bytes], done: Callable[[int, str], None]) -> Iterator[bytes]:
    """Yields ``body`` and then calls ``done(bytes_sent, error)`` once: after the last chunk, when
    the client goes away (the server closes the generator) or when the body raises (re-raised)."""
    sent, error = 0, ""
    try:
        for chunk in body:
            sent += len(chunk)
            yield chunk
    except GeneratorExit:
        error = "client disconnected before the response completed"
        raise
    except BaseException as exc:
        error = describe(exc)
        raise
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
        done(sent, error)


def default_user_id(environ: Environ) -> str:
    """``environ["otel_redis.user_id"]`` (set by the app), else ``REMOTE_USER``."""
    return str(environ.get(USER_ID_KEY) or environ.get("REMOTE_USER") or "")


def flask_route(environ: Environ) -> str:
    """The matched Flask/werkzeug rule (``/items/<int:item_id>``) of the request in ``environ``."""
    route = environ.get(ROUTE_KEY)
    if route:
        return str(route)
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None)
    return getattr(rule, "rule", "") or ""


def trace_ids(traceparent: str) -> tuple[int, int, Any]:
    """``(trace_id, span_id, token)``: the current span's ids, else a continued (or new) trace made
    current on a non-recording span (``token`` to detach, None when nothing was attached)."""
    ctx = get_current_span().get_span_context()
    if ctx.is_valid:
        return ctx.trace_id, ctx.span_id, None
    parent = parse_traceparent(traceparent.encode("latin-1")) if traceparent else None
    trace_id, flags = (parent[0], parent[2]) if parent is not None else (getrandbits(128) or 1, 1)
    span_id = getrandbits(64) or 1
    span = NonRecordingSpan(SpanContext(trace_id, span_id, False, TraceFlags(flags)))
    return trace_id, span_id, attach(set_span_in_context(span))


def release(token: Any, thread: int) -> None:
    """Detach a context ``token`` of :func:`trace_ids`, but only on ``thread``, the thread that
    attached it: elsewhere it is not the current context, so there is nothing to restore, and
    OpenTelemetry would print the failed reset as a traceback (the shutdown drain runs on the main
    thread; Django may iterate a streaming body on another thread)."""
    if token is not None and get_ident() == thread:
        detach(token)


@dataclass
class Door:
    """What a WSGI-style door needs to turn a request's environ into one record."""

    proxies: TrustedProxies
    masker: Masker
    exact: frozenset[str]
    prefixes: tuple[str, ...]
    component: str

    @classmethod
    def build(cls, settings: Settings | None, trusted_proxies: Iterable[str] | None,
              exclude_paths: Iterable[str] | None, component: str) -> "Door":
        settings = settings or load_settings()
        excluded = tuple(DEFAULT_EXCLUDED_PATHS if exclude_paths is None else exclude_paths)
        claim_requests()
        return cls(
            TrustedProxies(settings.trusted_proxies if trusted_proxies is None else trusted_proxies),
            Masker(settings.mask_headers, settings.mask_query_params),
            frozenset(p for p in excluded if not p.endswith("*")),
            tuple(p[:-1] for p in excluded if p.endswith("*")),
            component,
        )

    def excluded(self, path: str) -> bool:
        return path in self.exact or bool(self.prefixes and path.startswith(self.prefixes))

    def client(self, environ: Environ) -> tuple[str, str]:
        return self.proxies.resolve(
            environ.get("REMOTE_ADDR", ""),
            environ.get("HTTP_FORWARDED", ""),
            environ.get("HTTP_X_FORWARDED_FOR", ""),
            environ.get("HTTP_HOST", "") or environ.get("SERVER_NAME", ""),
            environ.get("HTTP_X_FORWARDED_HOST", ""),
        )

    def emit(self, environ: Environ, timestamp_ns: int, elapsed_ms: float, status: int, sent: int, error: str,
             route: str, user_id: Any, trace_id: int, span_id: int) -> None:
        """One record for the request in ``environ`` (never raises)."""
        try:
            client_ip, proxy_hostname = self.client(environ)
            query = environ.get("QUERY_STRING", "")
            referrer = environ.get("HTTP_REFERER", "")
            emit_request(
                timestamp_ns, environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "") or "/", status,
                client_ip, proxy_hostname, query=self.masker.query(query) if query else "", route=route or "",
                response_time_ms=elapsed_ms, user_id=str(user_id or ""),
                user_agent=environ.get("HTTP_USER_AGENT", ""),
                referrer=self.masker.url(referrer) if referrer else "", bytes_sent=sent, error=error,
                trace_id=trace_id, span_id=span_id, component=self.component,
            )
        except Exception:  # noqa: BLE001 - never break the response for a log record
            COUNTERS.add("internal_errors")


class _Request:
    """The state of one request between ``start_response`` and the end of its body.

    ``token`` is the attached trace context, detached by :meth:`release` on ``thread``, the thread that
    attached it (see :func:`release`)."""

    __slots__ = ("environ", "timestamp_ns", "started", "status", "sent", "trace_id", "span_id", "token", "thread")

    def __init__(self, environ: Environ) -> None:
        self.environ = environ
        self.timestamp_ns = time_ns()
        self.started = perf_counter()
        self.status = 0
        self.sent = 0
        self.trace_id, self.span_id, self.token = trace_ids(environ.get("HTTP_TRACEPARENT", ""))
        self.thread = get_ident()

    def release(self) -> None:
        """Detach the trace context this request attached, once, on its own thread: a pooled thread
        (gunicorn's gthread, waitress) thus never keeps a finished request's span current, even when
        the shutdown drain recorded the request first."""
        token, self.token = self.token, None
        release(token, self.thread)


_in_flight: dict[_Request, "WSGIRequestLogging"] = {}


def drain_in_flight(grace_s: float = SHUTDOWN_GRACE_S) -> int:
    """At shutdown: wait up to ``grace_s`` for requests still being answered, then record the rest
    with their status so far and :data:`INTERRUPTED`; returns how many were interrupted.

    A threaded server (werkzeug's ``run_simple``, for one) answers on daemon threads, which the
    interpreter stops at exit, possibly between the last byte sent and the record: without this,
    a request answered just before Ctrl-C was lost and counted nowhere."""
    deadline = perf_counter() + grace_s
    while _in_flight and perf_counter() < deadline:
        sleep(0.005)
    left = list(_in_flight.items())
    for req, middleware in left:
        middleware._finish(req, INTERRUPTED)
    return len(left)


on_shutdown_drain(drain_in_flight)
if hasattr(os, "register_at_fork"):  # a child does not answer its parent's requests
    os.register_at_fork(after_in_child=_in_flight.clear)


class WSGIRequestLogging:
    """WSGI middleware emitting one request record per request."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        settings: Settings | None = None,
        trusted_proxies: Iterable[str] | None = None,
        exclude_paths: Iterable[str] | None = None,
        user_id: UserIdGetter | None = None,
        route: RouteGetter | None = None,
        component: str = REQUEST_COMPONENT,
    ) -> None:
        self.app = app
        self.door = Door.build(settings, trusted_proxies, exclude_paths, component)
        self.user_id = user_id or default_user_id
        self.route = route or flask_route

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.door.excluded(environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        req = _Request(environ)
        _in_flight[req] = self

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            req.status = int(status[:3]) if status[:3].isdigit() else 0
            write = start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)

            def counted_write(data: bytes) -> Any:
                req.sent += len(data)
                return write(data)

            return counted_write

        try:
            body = self.app(environ, start)
        except BaseException as exc:
            self._finish(req, describe(exc))
            req.release()
            raise
        return self._iterate(req, body)

    def _iterate(self, req: _Request, body: Iterable[bytes]) -> Iterator[bytes]:
        """Yields the body, counting its bytes; the record is emitted after the last chunk (or on
        close when the server stops early)."""

        def done(sent: int, error: str) -> None:
            req.sent += sent
            self._finish(req, error)
            req.release()

        return timed_body(body, done)

    def _finish(self, req: _Request, error: str) -> None:
        """The request's record, once (whichever comes first: the body's end or the shutdown drain,
        which may run on another thread; the trace context is the caller's to release)."""
        if _in_flight.pop(req, None) is None:
            return  # finished already (the body ended, or shutdown recorded it as interrupted)
        error = error or req.environ.get(ERROR_KEY, "")
        elapsed = (perf_counter() - req.started) * 1000.0
        status = req.status
        if error and status == 0:
            status = 499 if error.startswith("client") else 500
        try:
            user = self.user_id(req.environ)
        except Exception:  # noqa: BLE001 - a broken user getter must not lose the record
            user = ""
        try:
            route = self.route(req.environ)
        except Exception:  # noqa: BLE001
            route = ""
        self.door.emit(req.environ, req.timestamp_ns, elapsed, status, req.sent, error, route, user,
                       req.trace_id, req.span_id)


def _remember_flask_route() -> None:
    """Flask's request context is gone when the body ends: keep the matched rule in the environ."""
    from flask import request

    rule = request.url_rule
    if rule is not None:
        request.environ[ROUTE_KEY] = rule.rule


def _remember_flask_error(sender: Any, exception: BaseException, **_extra: Any) -> None:
    """Flask answers an unhandled exception with a 500 itself: keep its description for the record."""
    from flask import request

    request.environ[ERROR_KEY] = describe(exception)


def instrument_wsgi(app: Any, **options: Any) -> Any:
    """Log every request of a WSGI app. A Flask app gets its ``wsgi_app`` wrapped and is returned;
    any other WSGI callable (a Django ``WSGIHandler`` included) is returned wrapped."""
    wsgi_app = getattr(app, "wsgi_app", None)
    if wsgi_app is not None and hasattr(app, "url_map"):
        from flask import got_request_exception

        app.before_request(_remember_flask_route)
        got_request_exception.connect(_remember_flask_error, app, weak=False)
        app.wsgi_app = WSGIRequestLogging(wsgi_app, **options)
        return app
    return WSGIRequestLogging(app, **options)


def instrument_app(app: Any, **options: Any) -> Any:
    """``otel_redis.instrument_app`` for WSGI apps (the ASGI hook hands WSGI apps here)."""
    return instrument_wsgi(app, **options)
