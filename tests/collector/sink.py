"""An upstream OTLP sink for the forwarder tests: a real OTLP/HTTP server and a real OTLP/gRPC server.

It keeps every request it accepted, can refuse a share of requests (HTTP 503 with ``Retry-After``,
gRPC UNAVAILABLE with RetryInfo), and can hold one request open until released (to kill the
forwarder while its batch is in flight).
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from otel_redis.embedded import free_port


class Sink:
    def __init__(self, fail_ratio: float = 0.0, retry_after: str = "0", seed: int = 7) -> None:
        self.fail_ratio = fail_ratio
        self.retry_after = retry_after
        self.fail_status = 503  # HTTP status of a refusal (400: refused for good)
        self.max_records: int | None = None  # more records in one request: 413 / RESOURCE_EXHAUSTED
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests: list[ExportLogsServiceRequest] = []
        self.attempts = 0
        self.refused = 0
        self.arrivals: list[float] = []
        self.headers: list[dict[str, str]] = []  # each attempt's HTTP headers or gRPC metadata, lower-cased
        self.hold_after: int | None = None  # hold the request that arrives after this many accepted ones
        self.holding = threading.Event()
        self.release = threading.Event()
        self.http_port = free_port()
        self.grpc_port = free_port()
        self._http: ThreadingHTTPServer | None = None
        self._grpc: grpc.Server | None = None

    # ------------------------------------------------------------------ shared decision

    def _decide(self, raw: bytes) -> bool | None:
        """True: accept (and keep) the request; False: refuse it as unavailable; None: too large."""
        import time

        request = ExportLogsServiceRequest.FromString(raw)
        size = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
        with self._lock:
            self.attempts += 1
            self.arrivals.append(time.monotonic())
            if self.max_records is not None and size > self.max_records:
                self.refused += 1
                return None
            if self._rng.random() < self.fail_ratio:
                self.refused += 1
                return False
            hold = self.hold_after is not None and len(self.requests) == self.hold_after
        if hold:
            self.holding.set()
            self.release.wait(60)
        with self._lock:
            self.requests.append(request)
        return True

    def record_ids(self) -> list[str]:
        """The ``id`` attribute of every record received (duplicates included)."""
        with self._lock:
            requests = list(self.requests)
        out = []
        for request in requests:
            for rl in request.resource_logs:
                for sl in rl.scope_logs:
                    for rec in sl.log_records:
                        for kv in rec.attributes:
                            if kv.key == "id":
                                out.append(kv.value.string_value)
        return out

    # ------------------------------------------------------------------ servers

    def start(self) -> "Sink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                sink.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.headers.get("content-encoding") == "gzip":
                    import gzip

                    raw = gzip.decompress(raw)
                decision = sink._decide(raw)
                if decision:
                    body, status, extra = ExportLogsServiceResponse().SerializeToString(), 200, {}
                elif decision is None:
                    body, status, extra = status_pb2.Status(code=8, message="too large").SerializeToString(), 413, {}
                else:
                    body = status_pb2.Status(code=14, message="sink says: try later").SerializeToString()
                    status, extra = sink.fail_status, {"Retry-After": sink.retry_after}
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        for _attempt in range(5):  # free_port() releases the port: another process may take it first
            try:
                self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), Handler)
                break
            except OSError:
                self.http_port = free_port()
        assert self._http is not None
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

        def export(raw: bytes, context: grpc.ServicerContext) -> bytes:
            sink.headers.append({k.lower(): str(v) for k, v in context.invocation_metadata()})
            decision = sink._decide(raw)
            if decision:
                return ExportLogsServiceResponse().SerializeToString()
            if decision is None:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too large")
            retry = error_details_pb2.RetryInfo()
            retry.retry_delay.seconds = int(float(sink.retry_after))
            context.set_trailing_metadata((("google.rpc.retryinfo-bin", retry.SerializeToString()),))
            context.abort(grpc.StatusCode.UNAVAILABLE, "sink says: try later")

        self._grpc = grpc.server(ThreadPoolExecutor(4), options=[("grpc.so_reuseport", 0)])
        handler = grpc.unary_unary_rpc_method_handler(export, request_deserializer=None, response_serializer=None)
        self._grpc.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("opentelemetry.proto.collector.logs.v1.LogsService", {"Export": handler}),)
        )
        for _attempt in range(5):
            try:
                self._grpc.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
                break
            except RuntimeError:
                self.grpc_port = free_port()
        self._grpc.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._grpc is not None:
            self._grpc.stop(0)

    def env(self, protocol: str) -> dict[str, str]:
        """The standard variables that point an OTLP exporter at this sink."""
        if protocol == "grpc":
            return {
                "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://127.0.0.1:{self.grpc_port}",
                "OTEL_EXPORTER_OTLP_LOGS_INSECURE": "true",
            }
        return {
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://127.0.0.1:{self.http_port}/v1/logs",
        }
