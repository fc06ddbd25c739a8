"""configure() / shutdown() / force_flush(): the LoggerProvider, processor and exporter wiring."""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any, Callable

from opentelemetry import _logs
from opentelemetry._logs import LogRecord as APILogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import TraceFlags

from . import api
from .config import ConfigError, Settings, load_settings
from .connection import resolve_url
from .counters import COUNTERS, PipelineCounters
from .exporter import RedisLogRecordExporter
from .levels import NAME_TO_LEVEL, NAME_TO_SEVERITY, parse_level, stdlib_to_name
from .processor import CountingBatchLogRecordProcessor
from .record import EntryLogRecord, LogEntry, normalize_trace_id

_EMPTY_CONTEXT = Context()
_SEVERITY = {NAME_TO_LEVEL[name]: (sev, name) for name, sev in NAME_TO_SEVERITY.items()}


def _severity(levelno: int) -> tuple[Any, str]:
    hit = _SEVERITY.get(levelno)
    if hit is None:
        name = stdlib_to_name(levelno)
        hit = (NAME_TO_SEVERITY[name], name)
    return hit


class Pipeline:
    """One configured pipeline: provider -> CountingBatchLogRecordProcessor -> RedisLogRecordExporter."""

    def __init__(
        self,
        settings: Settings,
        provider: LoggerProvider,
        processor: CountingBatchLogRecordProcessor | None,
        exporter: RedisLogRecordExporter | None,
        counters: PipelineCounters,
        owns_provider: bool,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.processor = processor
        self.exporter = exporter
        self.counters = counters
        self.owns_provider = owns_provider
        self.logger = provider.get_logger("otel_redis")
        self._resource = provider.resource
        self._scope = getattr(self.logger, "instrumentation_scope", None)
        # the fast path is only correct when our processor is the provider's only processor
        self.fast = owns_provider and processor is not None

    def emit(
        self,
        timestamp_ns: int,
        levelno: int,
        body: Any,
        attributes: dict[str, Any],
        event: str | None,
        trace_id: Any,
        span_id: Any,
    ) -> None:
        severity, text = _severity(levelno)
        record = APILogRecord(
            timestamp=timestamp_ns,
            observed_timestamp=timestamp_ns,
            severity_number=severity,
            severity_text=text,
            body=body,
            attributes=attributes,
            event_name=event,
        )
        if trace_id is not None:
            record.trace_id = int(normalize_trace_id(trace_id), 16)
            record.span_id = int(normalize_trace_id(span_id, 16), 16) if span_id is not None else 0
            record.trace_flags = TraceFlags(TraceFlags.SAMPLED)
        self.counters.add_emitted()
        if self.fast:
            record.context = _EMPTY_CONTEXT
            self.processor.emit_readable(  # type: ignore[union-attr]
                ReadableLogRecord(record, self._resource, self._scope, None)
            )
        else:
            self.logger.emit(record)

    def emit_fields(self, build: Callable[[Any], LogEntry], fields: Any) -> None:
        """Queue a record in compact form, ``build(fields)`` making its entry in the exporter (only
        on the fast path: our processor is the provider's only one)."""
        self.counters.add_emitted()
        self.processor.emit_readable(EntryLogRecord(build, fields, self._resource, self._scope))  # type: ignore[union-attr]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        if self.owns_provider:
            self.provider.shutdown()
        elif self.processor is not None:
            self.processor.shutdown()

    def queue_length(self) -> int:
        return self.processor.queue_length() if self.processor is not None else 0


_lock = threading.RLock()
_current: Pipeline | None = None
_stdlib_handler: Any = None


def _global_sdk_provider() -> LoggerProvider | None:
    provider = _logs.get_logger_provider()
    return provider if isinstance(provider, LoggerProvider) else None


def configure(
    redis_url: str | None = None,
    *,
    level: str | int | None = None,
    service_name: str | None = None,
    capture_stdlib: bool | None = None,
    settings: Settings | None = None,
    exporter: RedisLogRecordExporter | None = None,
    provider: LoggerProvider | None = None,
    set_global_provider: bool = False,
) -> Pipeline:
    """Build the pipeline (from the environment unless overridden) and replay buffered records.

    The provider is private to otel_redis unless ``set_global_provider=True``: a global
    LoggerProvider switches on other libraries' per-request logs telemetry (FastAPI's among them),
    which halves a small app's request rate; the fast setting is the default.

    Raises :class:`~otel_redis.config.ConfigError` for an invalid setting such as ``LOG_LEVEL=LOUD``.
    Calling it again replaces the previous pipeline (flushing it first).
    """
    global _current
    settings = settings or load_settings()
    overrides: dict[str, Any] = {}
    if redis_url is not None:
        overrides["redis_url"] = redis_url
    if level is not None:
        try:
            overrides["log_level"] = parse_level(level)
        except ValueError as exc:
            raise ConfigError(f"level: {exc}") from None
    if service_name is not None:
        overrides["service_name"] = service_name
    if capture_stdlib is not None:
        overrides["capture_stdlib"] = capture_stdlib
    if overrides:
        settings = settings.with_overrides(**overrides)

    with _lock:
        if _current is not None:
            _shutdown_locked()
        counters = exporter.counters if exporter is not None else COUNTERS
        owns = False
        processor = None
        distro = _global_sdk_provider() if provider is None and exporter is None else None
        if distro is not None and "redis" in os.environ.get("OTEL_LOGS_EXPORTER", ""):
            provider = distro  # opentelemetry-instrument already attached our exporter to it
        else:
            if exporter is None:
                if settings.redis_url is None:
                    resolve_url(settings)  # start the embedded server before our atexit hook below
                exporter = RedisLogRecordExporter(settings=settings, counters=counters)
            processor = CountingBatchLogRecordProcessor(
                exporter,
                counters,
                schedule_delay_millis=settings.batch_delay_ms,
                max_queue_size=settings.max_queue_size,
                max_export_batch_size=settings.max_export_batch_size,
            )
            if provider is None:
                provider = LoggerProvider(
                    resource=Resource.create({"service.name": settings.service_name}),
                    shutdown_on_exit=False,
                )
                owns = True
                if set_global_provider and _global_sdk_provider() is None:
                    _logs.set_logger_provider(provider)
            provider.add_log_record_processor(processor)
        # atexit runs last-registered first: flush the pipeline before the embedded server stops
        atexit.unregister(shutdown)
        atexit.register(shutdown)
        pipeline = Pipeline(settings, provider, processor, exporter, counters, owns)
        _current = pipeline
        api._set_gate(NAME_TO_LEVEL[settings.log_level])
        api._install(pipeline, settings.preconfigure_buffer)
        if settings.capture_stdlib:
            from .stdlib import install_handler

            global _stdlib_handler
            _stdlib_handler = install_handler()
    return pipeline


def _shutdown_locked() -> None:
    global _current, _stdlib_handler
    pipeline, _current = _current, None
    api._install(None)
    if _stdlib_handler is not None:
        from .stdlib import remove_handler

        remove_handler(_stdlib_handler)
        _stdlib_handler = None
    if pipeline is not None:
        pipeline.shutdown()


def shutdown() -> None:
    """Flush what is queued and stop the pipeline; later log calls are buffered again."""
    with _lock:
        _shutdown_locked()


def force_flush(timeout_millis: int = 30_000) -> bool:
    """Export everything queued so far; True when it was written."""
    pipeline = _current
    if pipeline is None:
        return False
    return pipeline.force_flush(timeout_millis)


def current() -> Pipeline | None:
    return _current


def stats() -> dict[str, float]:
    """Pipeline counters plus the current queue length."""
    pipeline = _current
    out = (pipeline.counters if pipeline is not None else COUNTERS).snapshot()
    out["queue_length"] = pipeline.queue_length() if pipeline is not None else len(api._pending)
    return out

