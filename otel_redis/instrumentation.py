"""``instrument_app(app)``: one request record per HTTP request (and websocket) of any ASGI app.

A pure ASGI middleware rather than OpenTelemetry's ASGI instrumentation: it does one pass over the
headers, wraps ``send`` to see the status and the body size, and emits one LogRecord when the
response ends (the benchmark in ``benchmarks/bench_requests.py`` compares both). Trace context:

- when a span is current (an OTel tracer is configured and an outer instrumentation started one),
  the record uses it;
- else, when an SDK TracerProvider is configured, a SERVER span is started (continuing an incoming
  W3C ``traceparent``) and is current while the app runs;
- else (no tracer at all) the middleware continues the incoming ``traceparent`` (or starts a new
  trace id) and makes a non-recording span current, so ``log_info`` calls inside the app and
  ``trace.get_current_span()`` see the same trace id as the request record.

Streaming responses are timed to their last chunk; an exception raised by the app is logged as 500
with the error (and re-raised); a response the client abandoned is logged with
``error = "client disconnected"``; websockets give one record per connection (status 101 once
accepted, 403 when closed before accepting).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from random import getrandbits
from time import perf_counter, time_ns
from typing import Any, Awaitable, Callable, Iterable, MutableMapping

from opentelemetry import trace
from opentelemetry.context import attach, detach
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    TraceFlags,
    get_current_span,
    set_span_in_context,
)

from . import api
from .client_ip import TrustedProxies
from .config import Settings, load_settings
from .counters import COUNTERS
from .dns import ReverseResolver
from .dns import current as current_resolver
from .dns import install as install_resolver
from .levels import REQUEST_COMPONENT
from .masking import Masker
from .pipeline import force_flush
from .request_log import claim_requests, emit_request, plain_extra, queue_request
from .traceparent import parse_traceparent
from .wsgi import instrument_wsgi

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
UserIdGetter = Callable[[Scope], Any]

DEFAULT_EXCLUDED_PATHS = ("/healthz", "/health", "/livez", "/readyz")
_NO_TRACER = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def default_user_id(scope: Scope) -> str:
    """``scope["user"]`` (Starlette's AuthenticationMiddleware) when authenticated, else
    ``request.state.user_id`` (``scope["state"]["user_id"]``)."""
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", True):
        for attr in ("identity", "username", "display_name"):
            value = getattr(user, attr, None)
            if value:
                return str(value)
        if isinstance(user, str):
            return user
    state = scope.get("state")
    if state:
        value = state.get("user_id")
        if value:
            return str(value)
    return ""


def _route_template(scope: Scope, router_app: Any) -> str:
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path_format", None) or getattr(route, "path", "") or ""
    endpoint = scope.get("endpoint")
    if endpoint is not None and router_app is not None:
        for candidate in getattr(router_app, "routes", ()):
            if getattr(candidate, "endpoint", None) is endpoint:
                return getattr(candidate, "path", "") or ""
    return ""


class RequestLoggingMiddleware:
    """ASGI middleware emitting one request record per HTTP request or websocket connection."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings | None = None,
        trusted_proxies: Iterable[str] | None = None,
        exclude_paths: Iterable[str] | None = None,
        user_id: UserIdGetter | None = None,
        capture_headers: Iterable[str] = (),
        capture_response_headers: Iterable[str] = (),
        resolver: ReverseResolver | None = None,
        masker: Masker | None = None,
        component: str = REQUEST_COMPONENT,
        router_app: Any = None,
    ) -> None:
        settings = settings or load_settings()
        self.app = app
        self.proxies = TrustedProxies(settings.trusted_proxies if trusted_proxies is None else trusted_proxies)
        excluded = tuple(DEFAULT_EXCLUDED_PATHS if exclude_paths is None else exclude_paths)
        self.exact = frozenset(p for p in excluded if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in excluded if p.endswith("*"))
        self.user_id = user_id or default_user_id
        self.masker = masker or Masker(settings.mask_headers, settings.mask_query_params)
        self.capture = {h.lower().encode("latin-1"): h.lower() for h in capture_headers}
        self.capture_response = {h.lower().encode("latin-1"): h.lower() for h in capture_response_headers}
        if resolver is not None:
            install_resolver(resolver)
        self.settings = settings
        self.component = component
        self.router_app = router_app
        trace.get_tracer_provider()  # loads a provider named by OTEL_PYTHON_TRACER_PROVIDER, if any
        self._tracer = trace.get_tracer("otel_redis.instrumentation")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, _flush_at_shutdown(send) if kind == "lifespan" else send)
            return
        path = scope.get("path", "")
        if path in self.exact or (self.prefixes and path.startswith(self.prefixes)):
            await self.app(scope, receive, send)
            return
        timestamp_ns = time_ns()
        started = perf_counter()
        headers = dict(scope.get("headers") or ())
        client_ip, proxy_hostname = self._client_address(scope, headers)
        resolver = current_resolver(self.settings)
        if client_ip and resolver is not None:
            resolver.lookup(client_ip)
        trace_id, span_id, span, token = self._trace_context(scope, headers, path)

        status = 0
        sent = 0
        complete = False
        ended = 0.0
        response_headers: dict[str, str] = {}
        capture_response = self.capture_response

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent, complete, ended
            mtype = message["type"]
            if mtype == "http.response.body":
                await send(message)
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    complete = True
                    ended = perf_counter()
                return
            if mtype == "http.response.start":
                status = message["status"]
                if capture_response:
                    for name, value in message.get("headers", ()):
                        key = capture_response.get(name.lower())
                        if key is not None:
                            response_headers[key] = value.decode("latin-1")
            elif mtype == "websocket.send":
                data = message.get("bytes")
                sent += len(data) if data is not None else len((message.get("text") or "").encode("utf-8"))
            elif mtype == "websocket.accept":
                status = 101
            elif mtype == "websocket.close":
                if status == 0:
                    status = 403
                complete = True
            elif mtype == "websocket.http.response.start":
                status = message["status"]
            await send(message)

        error = ""
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:  # noqa: BLE001 - logged, then re-raised unchanged
            error = _describe(exc)
            if status == 0:
                status = 500
            if span is not None:
                span.record_exception(exc)
            raise
        finally:
            if not ended:
                ended = perf_counter()
            if not error and not complete and kind != "websocket":  # a websocket app that returned is closed
                error = _DISCONNECTED  # by the server; an HTTP response without its last chunk was abandoned
                status = status or 499
            _end_trace(token, span, status)
            self._emit(scope, headers, timestamp_ns, (ended - started) * 1000.0, status, sent, error,
                       client_ip, proxy_hostname, trace_id, span_id, response_headers, resolver)

    def _client_address(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[str, str]:
        """``(client_ip, proxy_hostname)``: through the trusted proxies' headers when any proxy is
        trusted, else the socket peer and the Host header."""
        peer = scope.get("client")
        peer_ip = peer[0] if peer else ""
        if not self.proxies:
            return _direct_client(peer_ip, headers.get(b"host", b""))
        return self.proxies.resolve(
            peer_ip,
            self._joined(scope, b"forwarded", headers),
            self._joined(scope, b"x-forwarded-for", headers),
            headers.get(b"host", b"").decode("latin-1"),
            headers.get(b"x-forwarded-host", b"").decode("latin-1"),
        )

    def _trace_context(self, scope: Scope, headers: dict[bytes, bytes], path: str) -> tuple[int, int, Any, Any]:
        """``(trace_id, span_id, span, token)`` of the request: the current span's ids when one is
        current (``span`` and ``token`` None); else a SERVER span this middleware started and must end,
        or, without a tracer, a non-recording span continuing the caller's ``traceparent`` (or a new
        trace), so log calls inside the app see the request's ids. ``token`` detaches what was made
        current."""
        ctx = get_current_span().get_span_context()
        if ctx.is_valid:
            return ctx.trace_id, ctx.span_id, None, None
        raw = headers.get(b"traceparent")
        parent = parse_traceparent(raw) if raw else None
        span = self._server_span(scope.get("method", "GET"), path, parent)
        if span is not None:
            sctx = span.get_span_context()
            return sctx.trace_id, sctx.span_id, span, attach(set_span_in_context(span))
        if parent is not None:
            trace_id, flags = parent[0], _FLAGS[parent[2]]
        else:
            trace_id, flags = getrandbits(128) or 1, _SAMPLED
        span_id = getrandbits(64) or 1
        token = attach(set_span_in_context(NonRecordingSpan(SpanContext(trace_id, span_id, False, flags))))
        return trace_id, span_id, None, token

    def _server_span(self, method: str, path: str, parent: tuple[int, int, int] | None) -> Any:
        """The request's SERVER span from the configured tracer (continuing ``parent``), or None when
        no SDK tracer is configured.

        Without a parent, the span is simply asked for: the API's no-op tracer answers with the
        current, invalid span, a real tracer with a valid one. That saves asking
        ``trace.get_tracer_provider()`` on every request, which costs a missed ``os.environ``
        lookup (a raised KeyError, about 5 us) for as long as no provider is set."""
        name = f"{method} {path}"
        if parent is None and not _TracerSeen.configured:
            span = self._tracer.start_span(name, None, SpanKind.SERVER)
            if not span.get_span_context().is_valid:
                return None
            _TracerSeen.configured = True
            return span
        if not _sdk_tracer_configured():
            return None
        parent_ctx = None
        if parent is not None:
            parent_ctx = trace.set_span_in_context(
                NonRecordingSpan(SpanContext(parent[0], parent[1], True, TraceFlags(parent[2])))
            )
        return self._tracer.start_span(name, parent_ctx, SpanKind.SERVER)

    @staticmethod
    def _joined(scope: Scope, name: bytes, headers: dict[bytes, bytes]) -> str:
        """A header that may be sent on several lines, joined with commas in order."""
        values = [v for k, v in scope.get("headers") or () if k == name]
        if len(values) <= 1:
            return headers.get(name, b"").decode("latin-1")
        return ",".join(v.decode("latin-1") for v in values)

    def _emit(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        timestamp_ns: int,
        response_time_ms: float,
        status: int,
        sent: int,
        error: str,
        client_ip: str,
        proxy_hostname: str,
        trace_id: int,
        span_id: int,
        response_headers: dict[str, str],
        resolver: ReverseResolver | None,
    ) -> None:
        try:
            masker = self.masker
            query = scope.get("query_string")
            referrer = headers.get(b"referer")
            extra: dict[str, str] | None = None
            if self.capture or response_headers:
                extra = {}
                for name, key in self.capture.items():
                    value = headers.get(name)
                    if value is not None:
                        extra[f"http.request.header.{key}"] = masker.header(key, value.decode("latin-1"))
                for key, value in response_headers.items():
                    extra[f"http.response.header.{key}"] = masker.header(key, value)
            try:
                user = self.user_id(scope) or ""
            except Exception:  # noqa: BLE001 - a broken user getter must not lose the record
                user = ""
            route = scope.get("route")
            user_agent = headers.get(b"user-agent")
            args = (
                timestamp_ns,
                scope.get("method", "GET") if scope["type"] == "http" else "GET",
                scope.get("path", ""),
                status,
                client_ip,
                proxy_hostname,
                (resolver.cached(client_ip) or "") if resolver is not None and client_ip else "",
                masker.query(query.decode("latin-1")) if query else "",
                (getattr(route, "path_format", None) or getattr(route, "path", "") or "") if route is not None
                else _route_template(scope, self.router_app),
                response_time_ms,
                user if isinstance(user, str) else str(user),
                _latin1(user_agent) if user_agent is not None else "",
                masker.url(referrer.decode("latin-1")) if referrer else "",
                sent,
                error,
                trace_id,
                span_id,
                extra,
                self.component,
            )
            sink = api.current_sink()
            if sink is not None and sink.fast and type(status) is int and (extra is None or plain_extra(extra)):
                queue_request(sink, *args)  # every value has its documented type: the direct path
            else:
                emit_request(*args[:6], client_hostname=args[6], query=args[7], route=args[8],
                             response_time_ms=args[9], user_id=args[10], user_agent=args[11], referrer=args[12],
                             bytes_sent=args[13], error=args[14], trace_id=args[15], span_id=args[16], extra=extra,
                             component=self.component)
        except Exception:  # noqa: BLE001 - never break the response for a log record
            COUNTERS.add("internal_errors")


class _TracerSeen:
    """Whether a real TracerProvider was seen: the API sets its global once and never unsets it, so
    once seen, the answer is cached; until then the public getter costs one environ lookup."""

    configured = False


def _sdk_tracer_configured() -> bool:
    if _TracerSeen.configured:
        return True
    if isinstance(trace.get_tracer_provider(), _NO_TRACER):
        return False
    _TracerSeen.configured = True
    return True


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_FLAGS = tuple(TraceFlags(i) for i in range(256))


@functools.lru_cache(maxsize=4096)
def _direct_client(peer_ip: str, host: bytes) -> tuple[str, str]:
    """``(client_ip, proxy_hostname)`` when no proxy is trusted: the socket peer and the Host header
    (both validated; a few distinct values per process, so cached)."""
    return _NO_PROXIES.resolve(peer_ip, host=host.decode("latin-1"))


_NO_PROXIES = TrustedProxies(())


@functools.lru_cache(maxsize=1024)
def _latin1(value: bytes) -> str:
    """Header bytes as text (User-Agents repeat: decode each once)."""
    return value.decode("latin-1")


def _flush_at_shutdown(send: Send) -> Send:
    """The lifespan ``send``, flushing the pipeline once the app's own shutdown is done (its handlers
    may log). uvicorn ends a SIGTERM shutdown by raising the signal again with its default action,
    which kills the process before atexit handlers run: without this, the records still queued (and
    those handed to the writer process) would be lost without being counted."""

    async def wrapped(message: Message) -> None:
        if message.get("type") in _SHUTDOWN_DONE:
            await asyncio.get_running_loop().run_in_executor(None, force_flush)
        await send(message)

    return wrapped


_SHUTDOWN_DONE = ("lifespan.shutdown.complete", "lifespan.shutdown.failed")


def _end_trace(token: Any, span: Any, status: int) -> None:
    """Undo what :meth:`RequestLoggingMiddleware._trace_context` made current, and end the SERVER
    span it started (with the response's status)."""
    if token is not None:
        detach(token)
    if span is not None:
        span.set_attribute("http.response.status_code", status)
        span.end()


_DISCONNECTED = "client disconnected before the response completed"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "client disconnected (request cancelled)"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def instrument_app(app: Any, **options: Any) -> Any:
    """Log every request of ``app`` (FastAPI, Starlette, or any ASGI callable; a WSGI app such as
    Flask or a Django handler goes to :func:`otel_redis.wsgi.instrument_wsgi`); records go to the
    pipeline of :func:`otel_redis.configure`. In this process the span exporter then writes no
    request records: one record per request.

    FastAPI and Starlette apps get the middleware added (outermost of the user middleware) and are
    returned; any other ASGI app is returned wrapped. ``options`` are those of
    :class:`RequestLoggingMiddleware`: ``trusted_proxies`` (default ``OTEL_REDIS_TRUSTED_PROXIES``),
    ``exclude_paths`` (default: the usual health checks; an entry ending in ``*`` is a prefix),
    ``user_id`` (a callable ``scope -> user id``, default :func:`default_user_id`),
    ``capture_headers`` / ``capture_response_headers`` (headers stored as
    ``http.request.header.<name>`` / ``http.response.header.<name>``, secrets masked), ``resolver``
    (a :class:`~otel_redis.dns.ReverseResolver`), ``component`` (default ``http``), ``settings``.
    """
    if hasattr(app, "add_middleware") and hasattr(app, "user_middleware"):
        claim_requests()
        app.add_middleware(RequestLoggingMiddleware, router_app=app, **options)
        return app
    if not _is_asgi(app):
        return instrument_wsgi(app, **options)
    claim_requests()
    return RequestLoggingMiddleware(app, **options)


def _is_asgi(app: Any) -> bool:
    """ASGI apps are coroutine functions (or objects whose ``__call__`` is one); a Flask app or a
    Django ``WSGIHandler`` is not."""
    if hasattr(app, "wsgi_app") and hasattr(app, "url_map"):
        return False
    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(getattr(app, "__call__", None))
