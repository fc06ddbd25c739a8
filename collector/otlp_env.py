"""The standard ``OTEL_EXPORTER_OTLP_*`` variables, read as the official Python exporters read them.

The forwarder talks to its upstream through public interfaces of its own (``collector.upstream``)
rather than the exporters' internals, so it reads their settings here: the logs-specific variable
(``OTEL_EXPORTER_OTLP_LOGS_X``) wins over the generic one (``OTEL_EXPORTER_OTLP_X``); a generic
HTTP endpoint gets ``/v1/logs`` appended; the timeout is in seconds (as the Python exporters take
it); a gRPC endpoint with an ``http`` scheme, or ``_INSECURE=true``, gets a plaintext channel.
"""

from __future__ import annotations

import email.utils
import gzip
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from opentelemetry.util.re import parse_env_headers

USER_AGENT = "otel-redis-forwarder"
DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}
DEFAULT_TIMEOUT_S = 10.0
COMPRESSIONS = ("gzip", "deflate", "none")


class UpstreamError(Exception):
    """The upstream cannot be set up: a bad ``OTEL_EXPORTER_OTLP_*`` value, named in the message."""


@dataclass(frozen=True)
class OtlpSettings:
    endpoint: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    compression: str = "none"
    headers: dict[str, str] = field(default_factory=dict)
    certificate: str | None = None
    client_key: str | None = None
    client_certificate: str | None = None
    insecure: bool = True

    @property
    def grpc_target(self) -> str:
        """``host:port`` for a gRPC channel: the endpoint without its scheme."""
        return urlsplit(self.endpoint).netloc or self.endpoint


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(f"OTEL_EXPORTER_OTLP_LOGS_{name}")
    if value is None or value == "":
        value = env.get(f"OTEL_EXPORTER_OTLP_{name}")
    return value if value not in (None, "") else None


def _endpoint(protocol: str, env: Mapping[str, str]) -> str:
    specific = env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
    if specific:
        return specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINTS[protocol]
    return base.rstrip("/") + "/v1/logs" if protocol == "http/protobuf" else base


def _timeout(env: Mapping[str, str]) -> float:
    raw = _get(env, "TIMEOUT")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise UpstreamError(f"OTEL_EXPORTER_OTLP_(LOGS_)TIMEOUT={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise UpstreamError(f"OTEL_EXPORTER_OTLP_(LOGS_)TIMEOUT={raw!r} must be above 0 seconds")
    return value


def _compression(env: Mapping[str, str]) -> str:
    raw = (_get(env, "COMPRESSION") or "none").strip().lower()
    if raw not in COMPRESSIONS:
        raise UpstreamError(f"OTEL_EXPORTER_OTLP_(LOGS_)COMPRESSION={raw!r}: expected one of {', '.join(COMPRESSIONS)}")
    return raw


def _file(env: Mapping[str, str], name: str) -> str | None:
    path = _get(env, name)
    if path is not None and not Path(path).is_file():
        raise UpstreamError(f"OTEL_EXPORTER_OTLP_(LOGS_){name}={path!r}: no such file")
    return path


def _insecure(protocol: str, endpoint: str, env: Mapping[str, str]) -> bool:
    scheme = urlsplit(endpoint).scheme
    if protocol == "http/protobuf" or scheme == "https":
        return scheme != "https"
    raw = _get(env, "INSECURE")
    if raw is not None:
        return raw.strip().lower() == "true"
    return scheme == "http"


def otlp_settings(protocol: str, env: Mapping[str, str]) -> OtlpSettings:
    """Settings of the upstream for ``protocol`` (``http/protobuf`` or ``grpc``) from ``env``."""
    endpoint = _endpoint(protocol, env)
    if protocol == "http/protobuf" and urlsplit(endpoint).scheme not in ("http", "https"):
        raise UpstreamError(f"OTLP/HTTP endpoint {endpoint!r} must start with http:// or https://")
    return OtlpSettings(
        endpoint=endpoint,
        timeout_s=_timeout(env),
        compression=_compression(env),
        headers=dict(parse_env_headers(_get(env, "HEADERS") or "", liberal=True)),
        certificate=_file(env, "CERTIFICATE"),
        client_key=_file(env, "CLIENT_KEY"),
        client_certificate=_file(env, "CLIENT_CERTIFICATE"),
        insecure=_insecure(protocol, endpoint, env),
    )


def compress(body: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(body, compresslevel=6)
    if compression == "deflate":
        return zlib.compress(body)
    return body


def read_file(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
