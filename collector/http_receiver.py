"""OTLP/HTTP receiver: ``POST /v1/logs`` (protobuf or JSON, optionally gzip), and ``GET /healthz``.

Statuses follow the OTLP/HTTP specification: 200 with an ``ExportLogsServiceResponse`` (its
``partial_success`` says how many records were rejected and why), 400 with that same response when
every record was rejected (one bad value fails only its own record), 400 with a ``google.rpc.Status``
for a body that cannot be decoded (nothing is stored), 401 without a valid ingest token, 413 over
``OTEL_REDIS_OTLP_MAX_BODY_BYTES`` (compressed or not), 415 for an unknown content type or encoding,
429 when overloaded and 503 when Redis cannot take the records, both with ``Retry-After``. Responses
use the request's content type (JSON for a 415).
"""

from __future__ import annotations

import grpc
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import wire
from .counters import collector_stats
from .ingest import Ingestor, Overloaded, Unavailable

_CONTENT_TYPES = {"protobuf": wire.PROTOBUF, "json": wire.JSON}
_GRPC_CODE = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
_COUNTER = {400: "malformed", 401: "unauthorized", 413: "too_large", 415: "unsupported_media_type"}


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Response:
    body = wire.encode(wire.status_message(_GRPC_CODE[status].value[0], message), kind)
    return Response(body, status_code=status, media_type=_CONTENT_TYPES[kind], headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise wire.BodyError(413, f"body of {declared} bytes is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise wire.BodyError(413, f"body larger than {limit} bytes")
    return bytes(body)


def create_receiver_app(ingestor: Ingestor) -> Starlette:
    """The OTLP/HTTP app for ``ingestor`` (which owns the Redis connection)."""
    limit = ingestor.receiver.max_body_bytes
    counters = ingestor.counters

    async def export_logs(request: Request) -> Response:
        counters.add("requests")
        kind = wire.media_type(request.headers.get("content-type"))
        reply_kind = kind or "json"
        try:
            if not ingestor.authorized(request.headers.get("authorization")):
                raise wire.BodyError(401, "missing or invalid ingest token (send 'Authorization: Bearer <token>')")
            if kind is None:
                raise wire.BodyError(
                    415,
                    f"unsupported Content-Type {request.headers.get('content-type')!r} "
                    f"(use {wire.PROTOBUF} or {wire.JSON})",
                )
            raw = await _read_body(request, limit)

            def work() -> tuple[int, bytes]:
                body = wire.decompress(raw, request.headers.get("content-encoding"), limit)
                outcome = ingestor.ingest(wire.parse(body, kind))
                # nothing stored: 400, still with partial_success saying how many and why
                return 400 if outcome.refused_all else 200, wire.encode(outcome.response(), kind)

            status, payload = await run_in_threadpool(work)
        except wire.BodyError as exc:
            counters.add(_COUNTER[exc.status])
            headers = {"WWW-Authenticate": 'Bearer realm="otel-redis-ingest"'} if exc.status == 401 else None
            return _error(exc.status, exc.message, reply_kind, headers)
        except Overloaded as exc:
            return _error(429, str(exc), reply_kind, {"Retry-After": str(ingestor.retry_after_s)})
        except Unavailable as exc:
            return _error(503, str(exc), reply_kind, {"Retry-After": str(ingestor.retry_after_s)})
        except Exception as exc:  # noqa: BLE001 - whatever the body did, bad input is never a 5xx
            counters.add("malformed")
            return _error(400, f"request rejected: {type(exc).__name__}: {exc}", reply_kind)
        return Response(payload, status_code=status, media_type=_CONTENT_TYPES[kind])

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "collector": collector_stats()})

    return Starlette(
        routes=[Route("/v1/logs", export_logs, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    )
