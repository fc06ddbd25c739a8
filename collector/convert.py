"""OTLP <-> LogEntry: the one module that converts between the wire format and the internal record.

:func:`entries_from_request` normalises every ``LogRecord`` of an ``ExportLogsServiceRequest`` into a
:class:`~otel_redis.record.LogEntry` (the receiver's door into the write path);
:func:`request_from_entries` rebuilds an ``ExportLogsServiceRequest`` from stored entries (the
forwarder's way out). The pair round-trips: what the receiver stored, the forwarder sends upstream
with the same timestamps, severity, body, attributes, trace and span ids, flags, event name,
resource and scope.

Conventions shared with the in-process exporter (otel_redis/record.py):

- A string ``component`` attribute becomes ``LogEntry.component``. Without one, the resource's
  ``service.name`` is the component, and ``otlp["component_from"] = "resource"`` remembers that the
  record had no such attribute, so the forwarder does not invent one.
- A record with ``http.request.method`` and ``http.response.status_code`` becomes a request record
  (:func:`otel_redis.record.extract_request`). When
  :func:`~otel_redis.record.restore_request_attributes` would not give back the very same
  attributes (a string status code, a lowercase method, an empty value), the originals are kept in
  ``otlp["request_attributes"]``.
- Bodies and attribute values of any ``AnyValue`` kind are stored as JSON (``body_json=1`` for a
  non-string body). JSON has no bytes and no NaN: a ``bytesValue`` is stored as base64 text and a
  non-finite double as the text ``nan``, ``inf`` or ``-inf``, and ``otlp["typed"]`` lists the paths
  of such values (``["attributes", "key", 0]``, ``["body"]``...) so they come back as bytes and doubles.
- ``otlp`` also keeps what ``LogEntry`` has no field for: unset timestamps (``"unset": ["time"]``),
  ``dropped_attributes_count`` of record, resource and scope, scope attributes and schema URLs.

What does not round-trip (documented in the README): string bodies and string attributes longer
than ``OTEL_REDIS_MAX_MESSAGE_BYTES`` / ``OTEL_REDIS_MAX_ATTRIBUTE_BYTES`` are truncated, like
in-process records; duplicate keys in an attribute list or kvlist keep the last value; an all-zero
trace or span id is stored as "no id"; the order of attributes is not kept.
"""

from __future__ import annotations

import base64
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from otel_redis.levels import severity_to_name
from otel_redis.masking import MASK, default_masker
from otel_redis.record import (
    REQUEST_ATTRIBUTES,
    LogEntry,
    RequestFields,
    extract_request,
    restore_request_attributes,
    truncate,
)
from otel_redis.scrub import SCRUBBED_ATTRIBUTE, default_scrubber, scrub_entry_parts

#: attribute that names the component (popped into LogEntry.component, as record.py does)
COMPONENT_ATTRIBUTE = "component"
SERVICE_NAME = "service.name"

_METHOD_KEY = REQUEST_ATTRIBUTES["method"]
_STATUS_KEY = REQUEST_ATTRIBUTES["status_code"]
_REQUEST_KEYS = tuple(REQUEST_ATTRIBUTES.values())
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

Path = tuple[Any, ...]


# ---------------------------------------------------------------------------- AnyValue <-> Python


def any_to_py(value: AnyValue, path: Path, typed: list[list[Any]]) -> Any:
    """One AnyValue as a JSON-compatible Python value; bytes and non-finite doubles noted in ``typed``."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        number = value.double_value
        if math.isfinite(number):
            return number
        typed.append(["double", *path])
        return "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")
    if kind == "bytes_value":
        typed.append(["bytes", *path])
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value":
        return [any_to_py(v, (*path, i), typed) for i, v in enumerate(value.array_value.values)]
    if kind == "kvlist_value":
        return {kv.key: any_to_py(kv.value, (*path, kv.key), typed) for kv in value.kvlist_value.values}
    return None


def kvs_to_dict(kvs: Iterable[KeyValue], root: str, typed: list[list[Any]]) -> dict[str, Any]:
    return {kv.key: any_to_py(kv.value, (root, kv.key), typed) for kv in kvs}


def py_to_any(value: Any, out: AnyValue, kinds: dict[Path, str] | None = None, path: Path = ()) -> None:
    """Fill ``out`` with ``value``; ``kinds`` maps paths to ``bytes``/``double`` (from ``otlp["typed"]``)."""
    if kinds:
        kind = kinds.get(path)
        if kind == "bytes" and isinstance(value, str):
            out.bytes_value = base64.b64decode(value)
            return
        if kind == "double" and isinstance(value, str):
            out.double_value = _NONFINITE.get(value, math.nan)
            return
    if value is None:
        out.SetInParent()
        return
    if isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
            out.int_value = value
        else:  # an in-process attribute beyond int64: OTLP cannot carry it as a number
            out.string_value = str(value)
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, dict):
        kvlist = out.kvlist_value
        kvlist.SetInParent()
        for key, item in value.items():
            kv = kvlist.values.add()
            kv.key = str(key)
            py_to_any(item, kv.value, kinds, (*path, key))
    elif isinstance(value, (list, tuple)):
        array = out.array_value
        array.SetInParent()
        for i, item in enumerate(value):
            py_to_any(item, array.values.add(), kinds, (*path, i))
    else:
        out.string_value = str(value)


def dict_to_kvs(values: dict[str, Any], out: Any, kinds: dict[Path, str] | None, root: str) -> None:
    for key, value in values.items():
        kv = out.add()
        kv.key = key
        py_to_any(value, kv.value, kinds, (root, key))


# ---------------------------------------------------------------------------- OTLP -> LogEntry


@dataclass
class Converted:
    """The entries of one request, and the records rejected (with the first reason)."""

    entries: list[LogEntry] = field(default_factory=list)
    rejected: int = 0
    reason: str = ""

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if not self.reason:
            self.reason = reason


def _id_hex(raw: bytes, width: int, name: str) -> str:
    if not raw:
        return ""
    if len(raw) != width:
        raise ValueError(f"{name} must be {width} bytes, got {len(raw)}")
    return "" if not any(raw) else raw.hex()


def _component_value(attributes: dict[str, Any]) -> str | None:
    value = attributes.get(COMPONENT_ATTRIBUTE)
    return value if isinstance(value, str) and value else None


def _request_attributes_kept(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """The request attributes as sent, when restoring them from RequestFields would differ."""
    if _METHOD_KEY not in attributes or _STATUS_KEY not in attributes:
        return None
    return {key: attributes[key] for key in _REQUEST_KEYS if key in attributes}


def _still_there(path: list[Any], attributes: dict[str, Any], body: Any) -> bool:
    """Whether a ``typed`` note's path still leads to a value after scrubbing (a masked one does not)."""
    node: Any = {"attributes": attributes, "body": body}
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return False
    return not (isinstance(node, str) and node == MASK)


def _mask_request(request: RequestFields, otlp: dict[str, Any]) -> RequestFields:
    """A sender's request fields carry its query and referrer as they were: mask them as ours are."""
    masker = default_masker()
    kept = otlp.get("request_attributes")
    if kept:
        otlp["request_attributes"] = default_scrubber().value(kept, "request", [])
    return request._replace(query=masker.query(request.query), referrer=masker.url(request.referrer))


def _attributes(record: LogRecord, max_attribute_bytes: int, typed: list[list[Any]]) -> dict[str, Any]:
    """The record's attributes as Python values (strings and ints inline: the common case)."""
    attributes: dict[str, Any] = {}
    for kv in record.attributes:
        value = kv.value
        key = kv.key if len(kv.key) <= 256 and kv.key.isascii() else truncate(kv.key, 256)
        kind = value.WhichOneof("value")
        if kind == "string_value":  # the common case, inline
            attributes[key] = truncate(value.string_value, max_attribute_bytes)
        elif kind == "int_value":
            attributes[key] = value.int_value
        else:
            attributes[key] = any_to_py(value, ("attributes", key), typed)
    return attributes


def _take_component(attributes: dict[str, Any], resource: dict[str, Any], otlp: dict[str, Any]) -> str:
    """The component attribute (removed from ``attributes``), else the resource's service name."""
    component = _component_value(attributes)
    if component is not None:
        del attributes[COMPONENT_ATTRIBUTE]
        return component
    service = resource.get(SERVICE_NAME)
    component = service if isinstance(service, str) else ""
    if component:
        otlp["component_from"] = "resource"
    return component


def _take_request(attributes: dict[str, Any], otlp: dict[str, Any]) -> RequestFields | None:
    """The request fields; the attributes as sent are kept in ``otlp`` when restoring would differ."""
    kept = _request_attributes_kept(attributes)
    request = extract_request(attributes)
    if request is not None and kept is not None:
        restored = restore_request_attributes(request)
        # compared with their types: 200 == 200.0 == True in Python, but not on the wire
        if restored.keys() != kept.keys() or any(
            type(restored[k]) is not type(v) or restored[k] != v for k, v in kept.items()
        ):
            otlp["request_attributes"] = kept
    return request


def _body(record: LogRecord, max_message_bytes: int, typed: list[list[Any]], otlp: dict[str, Any]) -> Any:
    """The body (a string inline, else a Python value); an unset or empty one is noted in ``otlp``."""
    if not record.HasField("body"):
        otlp["body"] = "unset"
        return ""
    raw_body = record.body
    if raw_body.WhichOneof("value") == "string_value":
        return truncate(raw_body.string_value, max_message_bytes)
    body = any_to_py(raw_body, ("body",), typed)
    if body is None:
        otlp["body"] = "empty"
        return ""
    return body


def _note_wire_details(record: LogRecord, otlp: dict[str, Any]) -> None:
    """What the record says that LogEntry has no field for: unset times, dropped counts, high flag bits."""
    time_ns = record.time_unix_nano
    observed_ns = record.observed_time_unix_nano
    if not time_ns or not observed_ns:
        otlp["unset"] = [name for name, v in (("time", time_ns), ("observed", observed_ns)) if not v]
    if record.dropped_attributes_count:
        otlp["dropped_attributes_count"] = record.dropped_attributes_count
    if record.flags & ~0xFF:
        otlp["flags"] = record.flags


def entry_from_record(
    record: LogRecord,
    resource: dict[str, Any],
    scope_name: str,
    scope_version: str,
    shared: dict[str, Any],
    now_ns: int,
    max_message_bytes: int,
    max_attribute_bytes: int,
) -> LogEntry:
    """Normalise one OTLP LogRecord (``shared`` holds the resource- and scope-level ``otlp`` keys)."""
    trace_id = _id_hex(record.trace_id, 16, "trace_id")
    span_id = _id_hex(record.span_id, 8, "span_id")
    inherited = shared.get("typed")
    typed: list[list[Any]] = list(inherited) if inherited else []
    attributes = _attributes(record, max_attribute_bytes, typed)
    otlp: dict[str, Any] = {k: v for k, v in shared.items() if k != "typed"} if shared else {}
    component = _take_component(attributes, resource, otlp)
    request = _take_request(attributes, otlp)
    body = _body(record, max_message_bytes, typed, otlp)
    _note_wire_details(record, otlp)
    observed_ns = record.observed_time_unix_nano
    timestamp = record.time_unix_nano or observed_ns or now_ns
    attributes, body = scrub_entry_parts(attributes, body)
    if SCRUBBED_ATTRIBUTE in attributes:
        typed = [t for t in typed if _still_there(t[1:], attributes, body)]
    if request is not None:
        request = _mask_request(request, otlp)
    if typed:
        otlp["typed"] = typed
    severity = int(record.severity_number)
    return LogEntry(
        timestamp_ns=timestamp,
        observed_ns=observed_ns or timestamp,
        level=severity_to_name(severity),
        severity_number=severity,
        severity_text=truncate(record.severity_text, 256),
        body=body,
        component=truncate(component, max_attribute_bytes),
        event=truncate(record.event_name, max_attribute_bytes),
        trace_id=trace_id,
        span_id=span_id,
        trace_flags=record.flags & 0xFF,
        attributes=attributes,
        resource=resource,
        scope_name=scope_name,
        scope_version=scope_version,
        request=request,
        otlp=otlp,
    )


def entries_from_request(
    request: ExportLogsServiceRequest, max_message_bytes: int, max_attribute_bytes: int
) -> Converted:
    """Every LogRecord of ``request`` as a LogEntry; invalid records are counted, not raised."""
    out = Converted()
    now_ns = time.time_ns()
    for resource_logs in request.resource_logs:
        typed_resource: list[list[Any]] = []
        resource = kvs_to_dict(resource_logs.resource.attributes, "resource", typed_resource)
        resource_shared: dict[str, Any] = {}
        if resource_logs.schema_url:
            resource_shared["resource_schema_url"] = resource_logs.schema_url
        if resource_logs.resource.dropped_attributes_count:
            resource_shared["resource_dropped_attributes_count"] = resource_logs.resource.dropped_attributes_count
        for scope_logs in resource_logs.scope_logs:
            shared = dict(resource_shared)
            typed_scope = list(typed_resource)
            scope = scope_logs.scope
            if scope.attributes:
                shared["scope_attributes"] = kvs_to_dict(scope.attributes, "scope_attributes", typed_scope)
            if scope.dropped_attributes_count:
                shared["scope_dropped_attributes_count"] = scope.dropped_attributes_count
            if scope_logs.schema_url:
                shared["scope_schema_url"] = scope_logs.schema_url
            if typed_scope:
                shared["typed"] = typed_scope
            for record in scope_logs.log_records:
                try:
                    out.entries.append(
                        entry_from_record(
                            record, resource, truncate(scope.name, 256), truncate(scope.version, 256), shared, now_ns,
                            max_message_bytes, max_attribute_bytes,
                        )
                    )
                except Exception as exc:  # noqa: BLE001 - one bad record is rejected, the rest stored
                    out.reject(f"log record rejected: {exc}")
    return out


# ---------------------------------------------------------------------------- LogEntry -> OTLP


def original_attributes(entry: LogEntry) -> dict[str, Any]:
    """The attributes as the sender sent them: component and request attributes put back."""
    attributes = dict(entry.attributes)
    otlp = entry.otlp
    if entry.request is not None:
        attributes.update(otlp.get("request_attributes") or restore_request_attributes(entry.request))
    if entry.component and otlp.get("component_from") != "resource":
        attributes[COMPONENT_ATTRIBUTE] = entry.component
    return attributes


def _kinds(otlp: dict[str, Any]) -> dict[Path, str] | None:
    typed = otlp.get("typed")
    if not typed:
        return None
    return {tuple(item[1:]): item[0] for item in typed}


def record_from_entry(entry: LogEntry, out: LogRecord, kinds: dict[Path, str] | None) -> None:
    """Fill ``out`` with the OTLP LogRecord that ``entry`` was made from."""
    otlp = entry.otlp
    unset = otlp.get("unset", ())
    if "time" not in unset:
        out.time_unix_nano = entry.timestamp_ns
    if "observed" not in unset:
        out.observed_time_unix_nano = entry.observed_ns or entry.timestamp_ns
    out.severity_number = entry.severity_number  # type: ignore[assignment]
    if entry.severity_text:
        out.severity_text = entry.severity_text
    body_state = otlp.get("body")
    if body_state == "empty":
        out.body.SetInParent()
    elif body_state != "unset":
        py_to_any(entry.body, out.body, kinds, ("body",))
    dict_to_kvs(original_attributes(entry), out.attributes, kinds, "attributes")
    if otlp.get("dropped_attributes_count"):
        out.dropped_attributes_count = otlp["dropped_attributes_count"]
    out.flags = otlp.get("flags") or entry.trace_flags
    if entry.trace_id:
        out.trace_id = bytes.fromhex(entry.trace_id)
    if entry.span_id:
        out.span_id = bytes.fromhex(entry.span_id)
    if entry.event:
        out.event_name = entry.event


def _resource_key(entry: LogEntry) -> bytes:
    otlp = entry.otlp
    return orjson.dumps(
        [entry.resource, otlp.get("resource_schema_url", ""), otlp.get("resource_dropped_attributes_count", 0),
         [t for t in otlp.get("typed", ()) if t[1] == "resource"]],
        default=str,
    )


def _scope_key(entry: LogEntry) -> bytes:
    otlp = entry.otlp
    return orjson.dumps(
        [entry.scope_name, entry.scope_version, otlp.get("scope_attributes"), otlp.get("scope_schema_url", ""),
         otlp.get("scope_dropped_attributes_count", 0)],
        default=str,
    )


def request_from_entries(entries: Sequence[LogEntry]) -> ExportLogsServiceRequest:
    """One ExportLogsServiceRequest, records grouped by resource and scope as the OTLP senders do."""
    request = ExportLogsServiceRequest()
    resources: dict[bytes, tuple[ResourceLogs, dict[bytes, ScopeLogs]]] = {}
    for entry in entries:
        otlp = entry.otlp
        kinds = _kinds(otlp)
        rkey = _resource_key(entry)
        slot = resources.get(rkey)
        if slot is None:
            resource_logs = request.resource_logs.add()
            dict_to_kvs(entry.resource, resource_logs.resource.attributes, kinds, "resource")
            if otlp.get("resource_dropped_attributes_count"):
                resource_logs.resource.dropped_attributes_count = otlp["resource_dropped_attributes_count"]
            if otlp.get("resource_schema_url"):
                resource_logs.schema_url = otlp["resource_schema_url"]
            slot = resources[rkey] = (resource_logs, {})
        resource_logs, scopes = slot
        skey = _scope_key(entry)
        scope_logs = scopes.get(skey)
        if scope_logs is None:
            scope_logs = resource_logs.scope_logs.add()
            scope_logs.scope.name = entry.scope_name
            scope_logs.scope.version = entry.scope_version
            if otlp.get("scope_attributes"):
                dict_to_kvs(otlp["scope_attributes"], scope_logs.scope.attributes, kinds, "scope_attributes")
            if otlp.get("scope_dropped_attributes_count"):
                scope_logs.scope.dropped_attributes_count = otlp["scope_dropped_attributes_count"]
            if otlp.get("scope_schema_url"):
                scope_logs.schema_url = otlp["scope_schema_url"]
            scopes[skey] = scope_logs
        record_from_entry(entry, scope_logs.log_records.add(), kinds)
    return request
