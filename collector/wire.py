"""OTLP/HTTP bodies: content types, compression, protobuf and JSON decoding, response encoding.

OTLP/JSON differs from the protobuf JSON mapping in one place: ``traceId`` and ``spanId`` are hex
strings, not base64. :func:`parse_json` rewrites them to the base64 that ``json_format`` expects
before parsing (and rejects anything that is not hex of the right length), so the ids are never
misread. Unknown fields are ignored, as the OTLP specification asks of receivers.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class BodyError(Exception):
    """A request body that cannot be accepted: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(content_type: str | None) -> str | None:
    """``protobuf`` or ``json`` for the OTLP content types (parameters such as charset ignored)."""
    value = (content_type or "").split(";", 1)[0].strip().lower()
    if value in (PROTOBUF, "application/protobuf"):
        return "protobuf"
    if value == JSON:
        return "json"
    return None


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, identity) without inflating past ``limit`` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise BodyError(415, f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or identity)")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit:
            raise BodyError(413, f"decompressed body larger than {limit} bytes")
        if not inflater.eof:
            raise BodyError(400, f"truncated {encoding} body")
    except zlib.error as exc:
        raise BodyError(400, f"invalid {encoding} body: {exc}") from None
    return out


def _hex_to_b64(value: Any, width: int, where: str) -> str:
    if not isinstance(value, str):
        raise BodyError(400, f"{where}: expected a hex string")
    if value == "":
        return ""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise BodyError(400, f"{where}: {value!r} is not hex") from None
    if len(raw) != width:
        raise BodyError(400, f"{where}: expected {width * 2} hex digits, got {len(value)}")
    return base64.b64encode(raw).decode("ascii")


def _children(obj: Any, *names: str) -> list[Any]:
    """The list under the first of ``names`` present (anything else is left for ParseDict to refuse)."""
    if not isinstance(obj, dict):
        return []
    for name in names:
        if name in obj:
            value = obj[name]
            return value if isinstance(value, list) else []
    return []


def _fix_ids(doc: Any) -> None:
    """Rewrite hex ``traceId``/``spanId`` (either spelling) to base64, in place."""
    if not isinstance(doc, dict):
        raise BodyError(400, "the body must be a JSON object (ExportLogsServiceRequest)")
    for r, resource_logs in enumerate(_children(doc, "resourceLogs", "resource_logs")):
        for s, scope_logs in enumerate(_children(resource_logs, "scopeLogs", "scope_logs")):
            for i, record in enumerate(_children(scope_logs, "logRecords", "log_records")):
                if not isinstance(record, dict):
                    continue
                where = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}]"
                for names, width in ((("traceId", "trace_id"), 16), (("spanId", "span_id"), 8)):
                    for name in names:
                        if name in record:
                            record[name] = _hex_to_b64(record[name], width, f"{where}.{name}")


def parse_json(body: bytes) -> ExportLogsServiceRequest:
    try:
        doc = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"invalid JSON: {exc}") from None
    request = ExportLogsServiceRequest()
    try:
        _fix_ids(doc)
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:
        raise BodyError(400, f"not an OTLP ExportLogsServiceRequest: {exc}") from None
    return request


def parse_protobuf(body: bytes) -> ExportLogsServiceRequest:
    try:
        return ExportLogsServiceRequest.FromString(body)
    except (DecodeError, ValueError) as exc:
        raise BodyError(400, f"invalid protobuf ExportLogsServiceRequest: {exc}") from None


def parse(body: bytes, kind: str) -> ExportLogsServiceRequest:
    return parse_json(body) if kind == "json" else parse_protobuf(body)


def encode(message: Message, kind: str) -> bytes:
    """A response message in the request's encoding."""
    if kind == "json":
        return json_format.MessageToJson(message, indent=None).encode("utf-8")
    return message.SerializeToString()


def status_message(code: int, message: str) -> status_pb2.Status:
    """A ``google.rpc.Status`` (code is a gRPC status code number)."""
    return status_pb2.Status(code=code, message=message)
