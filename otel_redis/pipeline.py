"""configure() / shutdown() / force_flush(): the LoggerProvider, processor and exporter wiring."""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Any, Callable

from opentelemetry import _logs
from opentelemetry._logs import LogRecord as APILogRecord
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import TraceFlags

from . import api
from .config import ConfigError, Settings, limits_set, load_settings, logs_exporters, sdk_disabled
from .connection import resolve_url
from .counters import COUNTERS, PipelineCounters
from .exporter import RedisLogRecordExporter
from .levels import NAME_TO_LEVEL, NAME_TO_SEVERITY, parse_level, stdlib_to_name
from .processor import CountingBatchLogRecordProcessor, QueuedLogRecord
from .record import EntryLogRecord, LogEntry, normalize_trace_id
from .request_log import emit_unanswered

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
        *,
        limited: bool = False,
        extra_processors: tuple[Any, ...] = (),
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
        self.extra_processors = extra_processors
        #: attribute limits are set: records take the SDK's path, which applies them
        self.limited = limited
        # the fast path is only correct when our processor is the provider's only processor
        self.fast = owns_provider and processor is not None and not limited and not extra_processors

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
        record = (QueuedLogRecord if self.fast else APILogRecord)(
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
            self.processor.emit_fast(record, self._resource, self._scope)  # type: ignore[union-attr]
        else:
            self.logger.emit(record)
            dropped = getattr(record.attributes, "dropped", 0)  # the SDK's BoundedAttributes
            if dropped:
                self.counters.add("dropped_attributes", dropped)

    def emit_fields(self, build: Callable[[Any], LogEntry], fields: Any) -> None:
        """Queue a record in compact form, ``build(fields)`` making its entry in the exporter (only
        on the fast path: our processor is the provider's only one)."""
        self.counters.add_emitted()
        self.processor.emit_fast(EntryLogRecord(build, fields), self._resource, self._scope)  # type: ignore[union-attr]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        if self.owns_provider:
            self.provider.shutdown()
        else:
            for proc in (self.processor, *self.extra_processors):
                if proc is not None:
                    proc.shutdown()

    def queue_length(self) -> int:
        return self.processor.queue_length() if self.processor is not None else 0


class DisabledPipeline:
    """``OTEL_SDK_DISABLED=true``: log calls are accepted and discarded (they still never raise)."""

    fast = False

    def __init__(self, settings: Settings, counters: PipelineCounters) -> None:
        self.settings = settings
        self.counters = counters
        self.provider = None
        self.processor = None
        self.exporter = None

    def emit(self, *args: Any) -> None:
        """Discard the record."""

    def emit_fields(self, build: Callable[[Any], LogEntry], fields: Any) -> None:
        """Discard the record."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        """Nothing to stop."""

    def queue_length(self) -> int:
        return 0


class _Switch(LogRecordProcessor):
    """The one processor configure(provider=p) adds to a provider it does not own: it hands records
    to the current pipeline's processor, so configuring again with ``p`` never attaches a second
    exporter (which would store every record twice)."""

    def __init__(self, target: LogRecordProcessor) -> None:
        self.target = target

    def on_emit(self, log_record: Any) -> None:
        self.target.on_emit(log_record)

    def shutdown(self) -> None:
        self.target.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.target.force_flush(timeout_millis)


#: the switch of each provider that configure(provider=...) attached our exporter to
_attached: "weakref.WeakKeyDictionary[LoggerProvider, _Switch]" = weakref.WeakKeyDictionary()


def _resource(settings: Settings, explicit_name: str | None) -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (the SDK reads both; the latter wins); our
    default service name only when neither names one; a configure(service_name=...) wins over all."""
    resource = Resource.create({"service.name": explicit_name} if explicit_name else {})
    name = resource.attributes.get("service.name", "")
    if explicit_name or (isinstance(name, str) and not name.startswith("unknown_service")):
        return resource
    return resource.merge(Resource({"service.name": settings.service_name}))


def _extra_exporters(names: tuple[str, ...]) -> list[Any]:
    """The exporters OTEL_LOGS_EXPORTER names besides ``redis``."""
    out: list[Any] = []
    for name in names:
        if name == "console":
            out.append(ConsoleLogRecordExporter())
        elif name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            except ImportError:
                raise ConfigError(
                    "OTEL_LOGS_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http installed"
                ) from None
            out.append(OTLPLogExporter())
    return out


_lock = threading.RLock()
_current: Pipeline | None = None
_stdlib_handler: Any = None
_requests_need_redis = False


def keep_redis_for_requests() -> None:
    """Called by the span exporter (``OTEL_TRACES_EXPORTER=redis``): this process asked for request
    records in Redis, so a later ``configure()`` keeps the Redis exporter even when
    ``OTEL_LOGS_EXPORTER`` leaves it out (zero-code setups often say ``none``). Without this, an app
    that also calls ``configure()`` itself would replace the span door's pipeline with one that
    stores nothing, and every request record would vanish."""
    global _requests_need_redis
    _requests_need_redis = True


def _global_sdk_provider() -> LoggerProvider | None:
    provider = _logs.get_logger_provider()
    return provider if isinstance(provider, LoggerProvider) else None


def _with_arguments(
    settings: Settings,
    redis_url: str | None,
    level: str | int | None,
    service_name: str | None,
    capture_stdlib: bool | None,
) -> Settings:
    """The settings with configure()'s explicit arguments over the environment's."""
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
    return settings.with_overrides(**overrides) if overrides else settings


def _exporter_names(exporters: tuple[str, ...] | None) -> tuple[str, ...]:
    """Where records go: the argument, else ``OTEL_LOGS_EXPORTER``; ``redis`` always when the
    request doors need it."""
    names = logs_exporters({"OTEL_LOGS_EXPORTER": ",".join(exporters)} if exporters is not None else None)
    if _requests_need_redis and "redis" not in names:
        names = ("redis", *names)
    return names


def _provider_of_distro(
    provider: LoggerProvider | None, exporter: RedisLogRecordExporter | None
) -> LoggerProvider | None:
    """The provider that ``opentelemetry-instrument`` already attached our exporter to
    (``OTEL_LOGS_EXPORTER`` names ``redis``), or None: a second exporter on it would store every
    record twice."""
    if exporter is not None or "redis" not in os.environ.get("OTEL_LOGS_EXPORTER", ""):
        return None
    global_provider = _global_sdk_provider()
    if provider is None:
        return global_provider
    return provider if provider not in _attached and provider is global_provider else None


def _redis_processor(
    names: tuple[str, ...], settings: Settings, exporter: RedisLogRecordExporter | None, counters: PipelineCounters
) -> tuple[CountingBatchLogRecordProcessor | None, RedisLogRecordExporter | None]:
    """Our counting batch processor and the Redis exporter behind it, when records go to Redis."""
    if "redis" not in names and exporter is None:
        return None, None
    if exporter is None:
        if settings.redis_url is None:
            resolve_url(settings)  # start the embedded server before our atexit hook in configure
        exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    processor = CountingBatchLogRecordProcessor(
        exporter,
        counters,
        schedule_delay_millis=settings.batch_delay_ms,
        max_queue_size=settings.max_queue_size,
        max_export_batch_size=settings.max_export_batch_size,
        export_timeout_millis=settings.export_timeout_ms,
    )
    return processor, exporter


def _extra_processors(names: tuple[str, ...], settings: Settings) -> list[BatchLogRecordProcessor]:
    """One SDK batch processor per other exporter named (``console``, ``otlp``)."""
    return [
        BatchLogRecordProcessor(
            extra,
            schedule_delay_millis=settings.batch_delay_ms,
            max_queue_size=settings.max_queue_size,
            max_export_batch_size=min(settings.max_export_batch_size, settings.max_queue_size),
            export_timeout_millis=settings.export_timeout_ms,
        )
        for extra in _extra_exporters(names)
    ]


def _own_provider(settings: Settings, service_name: str | None, limited: bool, set_global: bool) -> LoggerProvider:
    """A LoggerProvider of our own; global only when asked and no other is."""
    provider = LoggerProvider(
        resource=_resource(settings, service_name),
        shutdown_on_exit=False,
        log_record_limits=LogRecordLimits() if limited else None,
    )
    if set_global and _global_sdk_provider() is None:
        _logs.set_logger_provider(provider)
    return provider


def _add_processors(provider: LoggerProvider, owns: bool, processor: Any, extras: list[Any]) -> None:
    """Add the processors to the provider. On a provider we do not own, ours goes behind a switch
    added once, so that configuring again points it at the new processor instead of adding one."""
    for proc in (processor, *extras):
        if proc is None:
            continue
        if not owns and proc is processor:
            switch = _attached.get(provider)
            if switch is not None:
                switch.target = proc
                continue
            proc = _attached[provider] = _Switch(proc)
        provider.add_log_record_processor(proc)


def _install(pipeline: Pipeline | DisabledPipeline, settings: Settings) -> None:
    """Make ``pipeline`` the live one: the log calls' sink, and the stdlib handler when asked."""
    global _current, _stdlib_handler
    _current = pipeline  # type: ignore[assignment]
    api.set_sink(pipeline, level=NAME_TO_LEVEL[settings.log_level], pending_max=settings.preconfigure_buffer)
    if settings.capture_stdlib and isinstance(pipeline, Pipeline):
        from .stdlib import install_handler

        _stdlib_handler = install_handler()


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
    exporters: tuple[str, ...] | None = None,
) -> Pipeline:
    """Build the pipeline (from the environment unless overridden) and replay buffered records.

    The provider is private to otel_redis unless ``set_global_provider=True``: a global
    LoggerProvider switches on other libraries' per-request logs telemetry (FastAPI's among them),
    which halves a small app's request rate; the fast setting is the default.

    ``exporters`` (default: ``OTEL_LOGS_EXPORTER``, else ``redis``) names where records go.

    Raises :class:`~otel_redis.config.ConfigError` for an invalid setting such as ``LOG_LEVEL=LOUD``.
    Calling it again replaces the previous pipeline (flushing it first).
    """
    settings = _with_arguments(settings or load_settings(), redis_url, level, service_name, capture_stdlib)
    with _lock:
        if _current is not None:
            _shutdown_locked()
        counters = exporter.counters if exporter is not None else COUNTERS
        if sdk_disabled():
            disabled = DisabledPipeline(settings, counters)
            _install(disabled, settings)
            return disabled  # type: ignore[return-value]
        names = _exporter_names(exporters)
        limited = limits_set()
        processor, extras, owns = None, [], False
        distro = _provider_of_distro(provider, exporter)
        if distro is not None:
            provider = distro
        else:
            processor, exporter = _redis_processor(names, settings, exporter, counters)
            extras = _extra_processors(names, settings)
            if provider is None:
                provider, owns = _own_provider(settings, service_name, limited, set_global_provider), True
            _add_processors(provider, owns, processor, extras)
        # atexit runs last-registered first: flush the pipeline before the embedded server stops
        atexit.unregister(shutdown)
        atexit.register(shutdown)
        pipeline = Pipeline(
            settings, provider, processor, exporter, counters, owns, limited=limited, extra_processors=tuple(extras)
        )
        _install(pipeline, settings)
    return pipeline


def _shutdown_locked() -> None:
    global _current, _stdlib_handler
    pipeline, _current = _current, None
    if pipeline is not None:
        emit_unanswered()  # requests never answered: stored with status 0 and an error, not lost
    api.set_sink(None)
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
    out["queue_length"] = pipeline.queue_length() if pipeline is not None else len(api.pending().records)
    return out

