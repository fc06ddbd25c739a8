"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.logs.v1.LogsService/Export``.

The handler takes the raw request bytes and decodes them itself, so a malformed message is an
``INVALID_ARGUMENT`` with a reason (gRPC's own deserialiser would answer ``INTERNAL``), and so is a
request whose every record was rejected (the count and first reason in the message); when only some
were, the response's ``partial_success`` says how many and why. Retryable
refusals (``UNAVAILABLE`` when Redis cannot take the records, ``RESOURCE_EXHAUSTED`` when
overloaded) carry a ``google.rpc.RetryInfo`` both in ``grpc-status-details-bin`` (as the
Collector reads it) and in ``google.rpc.retryinfo-bin`` (as the Python exporter reads it). Messages
over ``OTEL_REDIS_OTLP_MAX_BODY_BYTES`` are refused by gRPC with ``RESOURCE_EXHAUSTED``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from .ingest import Ingestor, Overloaded, Unavailable

SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"


def _abort_retryable(context: grpc.ServicerContext, code: grpc.StatusCode, message: str, delay_s: int) -> None:
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.seconds = delay_s
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(retry)
    context.set_trailing_metadata(
        (
            ("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", retry.SerializeToString()),
        )
    )
    context.abort(code, message)


def _handler(ingestor: Ingestor):  # noqa: ANN202 - a grpc behaviour function
    counters = ingestor.counters

    def export(raw: bytes, context: grpc.ServicerContext) -> bytes:
        counters.add("requests")
        metadata = dict(context.invocation_metadata())
        if not ingestor.authorized(metadata.get("authorization")):
            counters.add("unauthorized")
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid ingest token (metadata authorization: Bearer <token>)")
        try:
            request = ExportLogsServiceRequest.FromString(raw)
        except (DecodeError, ValueError) as exc:
            counters.add("malformed")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid protobuf ExportLogsServiceRequest: {exc}")
        try:
            outcome = ingestor.ingest(request)
        except Overloaded as exc:
            _abort_retryable(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), ingestor.retry_after_s)
        except Unavailable as exc:
            _abort_retryable(context, grpc.StatusCode.UNAVAILABLE, str(exc), ingestor.retry_after_s)
        except Exception as exc:  # noqa: BLE001 - bad input is never INTERNAL or UNAVAILABLE
            counters.add("malformed")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request rejected: {type(exc).__name__}: {exc}")
        if outcome.refused_all:
            # a gRPC error carries no response message: the count and reason go in its details
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{outcome.rejected} log records rejected: {outcome.reason}",
            )
        return outcome.response().SerializeToString()

    return export


def create_grpc_server(ingestor: Ingestor) -> grpc.Server:
    """A gRPC server with the LogsService (ports are added by the caller)."""
    limit = ingestor.receiver.max_body_bytes
    server = grpc.server(
        ThreadPoolExecutor(max_workers=ingestor.receiver.grpc_workers, thread_name_prefix="otlp-grpc"),
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.so_reuseport", 0),  # a port in use is an error, not a silently shared port
        ],
    )
    method = grpc.unary_unary_rpc_method_handler(_handler(ingestor), request_deserializer=None, response_serializer=None)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": method}),))
    return server
