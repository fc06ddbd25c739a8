"""Zero-code request logging: a span exporter turning finished HTTP SERVER spans into request records.

Registered as the ``redis`` entry point of ``opentelemetry_traces_exporter``, so
``OTEL_TRACES_EXPORTER=redis opentelemetry-instrument <app>`` logs every request of any framework
OpenTelemetry instruments. The exporter runs in the SDK's batch thread, off the request path; each
span is read once (current and older HTTP semantic conventions) and handed to
:func:`otel_redis.request_log.emit_request`, so the record has the same fields, masking, bounded
keys and trusted-proxy rule as one from ``instrument_app``. Other spans are skipped on their kind.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, Mapping, Sequence
from urllib.parse import SplitResult, urlsplit

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

from . import pipeline
from .client_ip import TrustedProxies, parse_ip, valid_ip
from .config import Settings, load_settings
from .counters import COUNTERS
from .masking import Masker
from .request_log import emit_request, requests_claimed

DEFAULT_EXCLUDED_PATHS = ("/healthz", "/health", "/livez", "/readyz")

#: each request field and the span attributes that carry it, current convention first
_METHOD = ("http.request.method", "http.method")
_STATUS = ("http.response.status_code", "http.status_code")
_PATH = ("url.path",)
_TARGET = ("http.target",)
_QUERY = ("url.query",)
_PEER = ("network.peer.address", "net.sock.peer.addr", "net.peer.ip")
_CLIENT = ("client.address", "http.client_ip")
_HOST = ("server.address", "http.host", "http.server_name")
#: the full URL: every instrumentation builds its host from the request's Host header, where the
#: ASGI instrumentation's ``server.address``/``http.host`` name the listening socket instead
_URL = ("url.full", "http.url")
_USER_AGENT = ("user_agent.original", "http.user_agent")
_SENT = ("http.response.body.size", "http.response_content_length")
_NO_PROXIES = TrustedProxies(())
_FORWARDED = "http.request.header.forwarded"
_X_FORWARDED_FOR = "http.request.header.x_forwarded_for"
_X_FORWARDED_HOST = "http.request.header.x_forwarded_host"


def _first(attributes: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return value
    return None


def _split_url(attributes: Mapping[str, Any]) -> SplitResult | None:
    """The span's full URL in parts, or None without one or when it does not parse (``http://[``:
    the URL comes from the client's Host header and request line, so it may be anything)."""
    url = _first(attributes, _URL)
    if not isinstance(url, str):
        return None
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _request_host(attributes: Mapping[str, Any]) -> str:
    """The Host the client asked for: from the full URL when the span has one, else the host fields."""
    parts = _split_url(attributes)
    netloc = parts.netloc.rpartition("@")[2] if parts is not None else ""
    return netloc or _text(_first(attributes, _HOST))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):  # captured headers are sequences of values
        return ",".join(str(v) for v in value)
    return str(value)


def _int(value: Any) -> int:
    """A sender's number as an int; what has none (text, NaN, an infinity) is 0, never an exception."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0


def _route(route: str) -> str:
    """Route templates start with "/" like paths (Django's patterns do not)."""
    return route if not route or route.startswith("/") else "/" + route


def _error(span: ReadableSpan, status: int) -> str:
    """The exception recorded on the span ("Type: message"), else the span's error description."""
    for event in span.events:
        if event.name == "exception":
            attrs = event.attributes or {}
            kind, message = _text(attrs.get("exception.type")), _text(attrs.get("exception.message"))
            return f"{kind}: {message}" if message else kind
    if span.status.status_code is StatusCode.ERROR and status >= 500:
        return span.status.description or ""
    return ""


class SpanRequestReader:
    """Turns one SERVER span into the arguments of :func:`emit_request` (None for non-HTTP spans)."""

    def __init__(self, settings: Settings, exclude_paths: Sequence[str] = DEFAULT_EXCLUDED_PATHS) -> None:
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.masker = Masker(settings.mask_headers, settings.mask_query_params)
        self.excluded = frozenset(exclude_paths)

    def client(self, attributes: Mapping[str, Any]) -> tuple[str, str]:
        """``(client_ip, proxy_hostname)``: forwarded values are believed only from a trusted peer."""
        peer = _text(_first(attributes, _PEER))
        host = _request_host(attributes)
        if not peer:  # only the instrumentation's own client value: keep it when it is an address
            return valid_ip(_text(_first(attributes, _CLIENT))), _NO_PROXIES.resolve("", host=host)[1]
        forwarded = _text(attributes.get(_FORWARDED))
        x_forwarded_for = _text(attributes.get(_X_FORWARDED_FOR))
        if self.proxies and not (forwarded or x_forwarded_for):
            client = _text(_first(attributes, _CLIENT))  # derived from forwarding headers
            addr = parse_ip(peer)
            if client and addr is not None and self.proxies.trusts(addr):
                x_forwarded_for = client
        return self.proxies.resolve(peer, forwarded, x_forwarded_for, host, _text(attributes.get(_X_FORWARDED_HOST)))

    def read(self, span: ReadableSpan) -> dict[str, Any] | None:
        if span.kind is not SpanKind.SERVER:
            return None
        attributes = span.attributes or {}
        method = _first(attributes, _METHOD)
        if method is None:
            return None
        path = _text(_first(attributes, _PATH))
        query = _text(_first(attributes, _QUERY))
        if not path:
            path, _, query = _text(_first(attributes, _TARGET)).partition("?")
        if not query:  # the ASGI instrumentation's http.target has no query; its URL has
            parts = _split_url(attributes)
            query = parts.query if parts is not None else ""
        if path in self.excluded:
            return None
        status = _int(_first(attributes, _STATUS))
        client_ip, proxy_hostname = self.client(attributes)
        start, end = span.start_time or 0, span.end_time or span.start_time or 0
        ctx = span.context
        return {
            "timestamp_ns": start,
            "method": _text(method),
            "path": path,
            "status_code": status,
            "client_ip": client_ip,
            "proxy_hostname": proxy_hostname,
            "query": self.masker.query(query) if query else "",
            "route": _route(_text(attributes.get("http.route"))),
            "response_time_ms": (end - start) / 1e6,
            "user_id": _text(attributes.get("enduser.id")),
            "user_agent": _text(_first(attributes, _USER_AGENT)),
            "bytes_sent": _int(_first(attributes, _SENT)),
            "error": _error(span, status),
            "trace_id": ctx.trace_id if ctx is not None else None,
            "span_id": ctx.span_id if ctx is not None else None,
        }


class RedisSpanExporter(SpanExporter):
    """Stores one request record per finished HTTP SERVER span; other spans are ignored.

    Records go to the pipeline of :func:`otel_redis.configure`, configured from the environment on
    the first export when the app did not configure it. In a process where ``instrument_app`` is
    applied, the middleware owns request records and this exporter writes none (one record per request).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._reader: SpanRequestReader | None = None
        self._lock = threading.Lock()
        # configured now, not on the first export: that may come from an exit hook, too late to flush
        self._ensure_pipeline()

    def _ensure_pipeline(self) -> SpanRequestReader:
        with self._lock:
            if self._reader is not None:
                return self._reader
            pipeline.keep_redis_for_requests()
            current = pipeline.current()
            if current is None:
                # request records go to Redis whatever the distro's OTEL_LOGS_EXPORTER says (often none)
                current = pipeline.configure(settings=self._settings, set_global_provider=False, exporters=("redis",))
                # atexit runs last-registered first: flush the last spans into the pipeline before it stops
                atexit.register(_flush_spans)
            self._reader = SpanRequestReader(self._settings or current.settings or load_settings())
            return self._reader

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            if requests_claimed():
                return SpanExportResult.SUCCESS
            reader = self._reader or self._ensure_pipeline()
        except Exception:  # noqa: BLE001 - no pipeline to write to: the SDK's export thread goes on
            COUNTERS.add("internal_errors")
            return SpanExportResult.SUCCESS
        for span in spans:
            if span.kind is not SpanKind.SERVER:
                continue
            try:  # one span at a time: a span that cannot be read loses only its own record
                fields = reader.read(span)
                if fields is not None:
                    emit_request(**fields)
            except Exception:  # noqa: BLE001 - counted, and the batch's other spans still stored
                COUNTERS.add("internal_errors")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pipeline.force_flush()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return pipeline.current() is None or pipeline.force_flush(timeout_millis)


def _flush_spans() -> None:
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush()
