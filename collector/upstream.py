"""The forwarder's way to the upstream collector: one attempt per call, the outcome told in full.

Why not ``OTLPLogExporter.export()``: the official exporters retry inside ``export()`` for at most
their timeout (10 s) and then report a bare FAILURE, without the status, the ``Retry-After`` they
gave up on or the upstream's ``partial_success``. A durable buffer must instead keep a batch until
the upstream takes it, wait as long as the upstream asks, and know which records were refused.

So the official exporters are used for everything but the retry policy: they are constructed as
usual, reading the standard variables (``OTEL_EXPORTER_OTLP_[LOGS_]ENDPOINT``, ``_HEADERS``,
``_TIMEOUT``, ``_COMPRESSION``, ``_CERTIFICATE``, ``_CLIENT_KEY``, ``_CLIENT_CERTIFICATE``,
``_INSECURE``), and each attempt goes through their transport (the HTTP exporter's session with its
compression and headers; the gRPC exporter's channel and stub) exactly once. The retry loop, with
backoff and ``Retry-After``/``RetryInfo``, is the forwarder's. This reaches into attributes of the
1.45 exporters (pinned in pyproject.toml); tests/collector covers both protocols.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

#: HTTP statuses worth retrying: the OTLP ones (429, 502, 503, 504), plus the ones that say the
#: forwarder is misconfigured or the upstream is not ready (401, 403, 404, 408), which waiting and
#: fixing the configuration cures; dropping records for them would lose data.
RETRYABLE_HTTP = frozenset({401, 403, 404, 408, 429, 502, 503, 504})

#: the OTLP retryable gRPC codes (RESOURCE_EXHAUSTED only with RetryInfo), plus the same configuration
#: failures as above
RETRYABLE_GRPC = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


#: shortest time between two new gRPC channels
RECONNECT_S = 5.0


class UpstreamError(Exception):
    """The upstream exporter cannot be set up (bad configuration)."""


@dataclass(frozen=True)
class SendResult:
    """One attempt: accepted (``rejected`` of them refused for good), or failed (retryable or not)."""

    ok: bool
    retryable: bool = False
    retry_after: float | None = None
    rejected: int = 0
    message: str = ""
    too_large: bool = False  # the upstream's size limit: worth sending in smaller parts


class Upstream(Protocol):
    def send(self, request: ExportLogsServiceRequest) -> SendResult: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


def _partial(response: ExportLogsServiceResponse) -> SendResult:
    partial = response.partial_success
    return SendResult(True, rejected=int(partial.rejected_log_records), message=partial.error_message)


class HttpUpstream:
    """OTLP/HTTP protobuf through the official HTTP exporter's client."""

    def __init__(self) -> None:
        from opentelemetry.exporter.otlp.common.http import _extract_retry_after
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        try:
            self._exporter = OTLPLogExporter()
        except Exception as exc:  # noqa: BLE001 - any bad OTEL_EXPORTER_OTLP_* value
            raise UpstreamError(f"OTLP/HTTP exporter: {exc}") from None
        self._client = self._exporter._client
        self._retry_after = _extract_retry_after

    def describe(self) -> str:
        return f"OTLP/HTTP {self._client._endpoint}"

    def send(self, request: ExportLogsServiceRequest) -> SendResult:
        client = self._client
        try:
            result = client._transport.request(
                "POST",
                client._endpoint,
                headers=client._headers,
                data=client._compress(request.SerializeToString()),
                timeout=client._timeout,
            )
        except Exception as exc:  # noqa: BLE001 - the transport reports most errors in the result
            return SendResult(False, retryable=True, message=f"{type(exc).__name__}: {exc}")
        status = result.status_code
        if status is None:
            return SendResult(False, retryable=True, message=f"no response: {result.error}")
        if 200 <= status < 300:
            try:
                return _partial(ExportLogsServiceResponse.FromString(result.content()))
            except (DecodeError, ValueError):  # a non-protobuf 2xx (a proxy's) still means accepted
                return SendResult(True)
        message = f"HTTP {status}"
        try:
            detail = status_pb2.Status.FromString(result.content()).message
        except Exception:  # noqa: BLE001 - not every upstream sends a Status
            detail = ""
        if detail:
            message += f": {detail}"
        retry_after = self._retry_after(result) if status in RETRYABLE_HTTP else None
        return SendResult(
            False, retryable=status in RETRYABLE_HTTP, retry_after=retry_after, message=message, too_large=status == 413
        )

    def close(self) -> None:
        self._exporter.shutdown()


def grpc_retry_delay(error: grpc.RpcError) -> float | None:
    """The RetryInfo delay of a failed call (``google.rpc.retryinfo-bin`` or the status details)."""
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    retry = error_details_pb2.RetryInfo()
    raw = trailers.get("google.rpc.retryinfo-bin")
    try:
        if raw:
            retry.ParseFromString(raw)
        else:
            details = trailers.get("grpc-status-details-bin")
            if not details:
                return None
            status = status_pb2.Status.FromString(details)
            if not any(d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR)):
                return None
    except (DecodeError, ValueError):
        return None
    return retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9


class GrpcUpstream:
    """OTLP/gRPC through the official gRPC exporter's channel and stub."""

    def __init__(self) -> None:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        try:
            self._exporter = OTLPLogExporter()
        except Exception as exc:  # noqa: BLE001 - any bad OTEL_EXPORTER_OTLP_* value
            raise UpstreamError(f"OTLP/gRPC exporter: {exc}") from None
        self._reconnected = time.monotonic()

    def describe(self) -> str:
        return f"OTLP/gRPC {self._exporter._endpoint}"

    def _reconnect(self) -> None:
        """A new channel after UNAVAILABLE (as the exporter does), at most every RECONNECT_S: gRPC's
        own reconnect backoff grows to two minutes, too slow once the upstream is back."""
        now = time.monotonic()
        if now - self._reconnected < RECONNECT_S:
            return
        self._reconnected = now
        exporter = self._exporter
        try:
            if exporter._channel is not None:
                exporter._channel.close()
        except Exception:  # noqa: BLE001 - the old channel is dropped either way
            pass
        exporter._initialize_channel_and_stub()

    def send(self, request: ExportLogsServiceRequest) -> SendResult:
        exporter = self._exporter
        try:
            response = exporter._client.Export(request, metadata=exporter._headers, timeout=exporter._timeout)
        except grpc.RpcError as error:
            code = error.code()  # type: ignore[attr-defined]
            delay = grpc_retry_delay(error)
            if code == grpc.StatusCode.UNAVAILABLE:
                self._reconnect()
            exhausted = code == grpc.StatusCode.RESOURCE_EXHAUSTED
            retryable = code in RETRYABLE_GRPC or (exhausted and delay is not None)
            message = f"gRPC {code.name}: {error.details()}"  # type: ignore[attr-defined]
            return SendResult(False, retryable, delay, message=message, too_large=exhausted and delay is None)
        return _partial(response)

    def close(self) -> None:
        self._exporter.shutdown()


def make_upstream(protocol: str) -> Upstream:
    """The upstream for ``OTEL_EXPORTER_OTLP_[LOGS_]PROTOCOL`` (``http/protobuf`` or ``grpc``)."""
    return GrpcUpstream() if protocol == "grpc" else HttpUpstream()
