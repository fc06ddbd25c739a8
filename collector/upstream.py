"""The forwarder's way to the upstream collector: one attempt per call, the outcome told in full.

Why not ``OTLPLogExporter.export()``: the official exporters retry inside ``export()`` for at most
their timeout (10 s) and then report a bare FAILURE, without the status, the ``Retry-After`` they
gave up on or the upstream's ``partial_success``. A durable buffer must instead keep a batch until
the upstream takes it, wait as long as the upstream asks, and know which records were refused.

So each attempt is one request through public interfaces only: a ``requests`` session for
OTLP/HTTP, and the generated ``LogsServiceStub`` on a channel of our own for OTLP/gRPC. The
standard variables are read as the official Python exporters read them (:mod:`collector.otlp_env`),
so the same environment configures either. The retry loop, with backoff and
``Retry-After``/``RetryInfo``, is the forwarder's.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Mapping, Protocol

import grpc
import requests
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub

from .otlp_env import USER_AGENT, UpstreamError, compress, otlp_settings, read_file, retry_after_s

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
    """OTLP/HTTP protobuf: one POST per attempt, on a kept-alive ``requests`` session."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.settings = otlp_settings("http/protobuf", os.environ if env is None else env)
        self._session = requests.Session()
        self._session.headers.update({"Content-Type": "application/x-protobuf", "User-Agent": USER_AGENT,
                                      **self.settings.headers})
        if self.settings.compression != "none":
            self._session.headers["Content-Encoding"] = self.settings.compression
        self._session.verify = self.settings.certificate or True
        if self.settings.client_certificate:
            self._session.cert = (self.settings.client_certificate, self.settings.client_key or None)

    def describe(self) -> str:
        return f"OTLP/HTTP {self.settings.endpoint}"

    def send(self, request: ExportLogsServiceRequest) -> SendResult:
        body = compress(request.SerializeToString(), self.settings.compression)
        try:
            result = self._session.post(self.settings.endpoint, data=body, timeout=self.settings.timeout_s)
        except requests.RequestException as exc:
            return SendResult(False, retryable=True, message=f"{type(exc).__name__}: {exc}")
        status = result.status_code
        if 200 <= status < 300:
            try:
                return _partial(ExportLogsServiceResponse.FromString(result.content))
            except (DecodeError, ValueError):  # a non-protobuf 2xx (a proxy's) still means accepted
                return SendResult(True)
        message = f"HTTP {status}"
        try:
            detail = status_pb2.Status.FromString(result.content).message
        except Exception:  # noqa: BLE001 - not every upstream sends a Status
            detail = ""
        if detail:
            message += f": {detail}"
        retryable = status in RETRYABLE_HTTP
        retry_after = retry_after_s(result.headers.get("Retry-After")) if retryable else None
        return SendResult(False, retryable=retryable, retry_after=retry_after, message=message, too_large=status == 413)

    def close(self) -> None:
        self._session.close()


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
    """OTLP/gRPC: one ``Export`` call per attempt through the generated stub, on our own channel."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.settings = otlp_settings("grpc", os.environ if env is None else env)
        self._metadata = tuple((k.lower(), v) for k, v in self.settings.headers.items())
        self._channel = self._open()
        self._stub = LogsServiceStub(self._channel)
        self._reconnected = time.monotonic()

    def _open(self) -> grpc.Channel:
        s = self.settings
        compression = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}.get(s.compression)
        options = [("grpc.primary_user_agent", USER_AGENT)]
        if s.insecure:
            return grpc.insecure_channel(s.grpc_target, options=options, compression=compression)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read_file(s.certificate), private_key=read_file(s.client_key),
            certificate_chain=read_file(s.client_certificate),
        )
        return grpc.secure_channel(s.grpc_target, credentials, options=options, compression=compression)

    def describe(self) -> str:
        return f"OTLP/gRPC {self.settings.endpoint}"

    def _reconnect(self) -> None:
        """A new channel after UNAVAILABLE, at most every RECONNECT_S: gRPC's own reconnect backoff
        grows to two minutes, too slow once the upstream is back."""
        now = time.monotonic()
        if now - self._reconnected < RECONNECT_S:
            return
        self._reconnected = now
        self._channel.close()
        self._channel = self._open()
        self._stub = LogsServiceStub(self._channel)

    def send(self, request: ExportLogsServiceRequest) -> SendResult:
        try:
            response = self._stub.Export(request, metadata=self._metadata, timeout=self.settings.timeout_s)
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
        self._channel.close()


def make_upstream(protocol: str, env: Mapping[str, str] | None = None) -> Upstream:
    """The upstream for ``OTEL_EXPORTER_OTLP_[LOGS_]PROTOCOL`` (``http/protobuf`` or ``grpc``); a bad
    ``OTEL_EXPORTER_OTLP_*`` value raises :class:`UpstreamError`. ``env``: instead of os.environ."""
    return GrpcUpstream(env) if protocol == "grpc" else HttpUpstream(env)
