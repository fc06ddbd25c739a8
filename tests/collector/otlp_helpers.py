"""Helpers shared by the collector tests: SDK providers, canonical OTLP comparison, raw posts."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterable, Iterator, Sequence

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags


def span_context(trace_id: int, span_id: int, flags: int = 1) -> Any:
    """An OTel context carrying these ids (what an instrumented app has inside a span)."""
    ctx = SpanContext(trace_id=trace_id, span_id=span_id, is_remote=False, trace_flags=TraceFlags(flags))
    return trace.set_span_in_context(NonRecordingSpan(ctx))


class SdkSender:
    """A LoggerProvider with the official OTLP exporter, and a copy of every record it emitted."""

    def __init__(self, exporter: Any, resource: dict[str, Any]) -> None:
        self.memory = InMemoryLogRecordExporter()
        self.provider = LoggerProvider(resource=Resource.create(resource))
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.memory))
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))

    def logger(self, name: str, version: str | None = None) -> Any:
        return self.provider.get_logger(name, version)

    def sent(self) -> ExportLogsServiceRequest:
        """What the exporter put on the wire (the SDK's own encoder)."""
        return encode_logs(self.memory.get_finished_logs())

    def close(self) -> None:
        self.provider.shutdown()


def _attrs(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: kv.get("value", {}) for kv in items}


def canonical(requests: Iterable[ExportLogsServiceRequest]) -> list[dict[str, Any]]:
    """Every record with its resource and scope, attribute lists as dicts, in a stable order."""
    out = []
    for request in requests:
        for rl in MessageToDict(request)["resourceLogs"] if request.resource_logs else ():
            resource = rl.get("resource", {})
            for sl in rl.get("scopeLogs", ()):
                scope = sl.get("scope", {})
                for rec in sl.get("logRecords", ()):
                    rec = dict(rec)
                    rec["attributes"] = _attrs(rec.get("attributes", ()))
                    out.append(
                        {
                            "resource": _attrs(resource.get("attributes", ())),
                            "resource_rest": {k: v for k, v in resource.items() if k != "attributes"},
                            "resource_schema_url": rl.get("schemaUrl", ""),
                            "scope": {**scope, "attributes": _attrs(scope.get("attributes", ()))},
                            "scope_schema_url": sl.get("schemaUrl", ""),
                            "record": rec,
                        }
                    )
    return sorted(out, key=lambda d: repr(d))


PORT_ATTEMPTS = 5


@contextlib.contextmanager
def service_on_free_ports(
    make_argv: Callable[[dict[str, int]], tuple[list[str], int]], *, names: Sequence[str], **kwargs: Any
) -> Iterator[tuple[Any, dict[str, int]]]:
    """``run_service`` with fresh free ports, tried again when another process took one in between
    (free_port() releases the port before the service binds it: a race in a parallel suite)."""
    from tests.servers import free_port, run_service

    for attempt in range(PORT_ATTEMPTS):
        ports = {name: free_port() for name in names}
        argv, health_port = make_argv(ports)
        manager = run_service(argv, port=health_port, **kwargs)
        try:
            service = manager.__enter__()
        except RuntimeError as exc:
            if "cannot listen" in str(exc) and attempt + 1 < PORT_ATTEMPTS:
                continue
            raise
        try:
            yield service, ports
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
        else:
            manager.__exit__(None, None, None)
        return


def start_receiver_on_free_ports(settings: Any, **overrides: Any) -> Any:
    """An in-process Receiver on free ports (tried again if a port was taken in between)."""
    from collector.config import ReceiverSettings
    from collector.receiver import PortInUse, Receiver
    from otel_redis.embedded import free_port

    for attempt in range(PORT_ATTEMPTS):
        receiver = Receiver(settings, ReceiverSettings(http_port=free_port(), grpc_port=free_port(), **overrides))
        try:
            return receiver.start()
        except PortInUse:
            receiver.ingestor.close()
            if attempt + 1 == PORT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")
