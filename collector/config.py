"""Receiver and forwarder settings from the environment, validated once: each variable's type,
default and bounds are its row of ``otel_redis.config.SETTINGS`` (docs/configuration.md)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace
from typing import Any, Mapping

from otel_redis.config import BY_NAME, ConfigError, read

DEFAULT_HTTP_PORT = 4318
DEFAULT_GRPC_PORT = 4317
DEFAULT_GROUP = "otel-redis-forwarder"


def _row(env: Mapping[str, str], name: str) -> Any:
    """The variable's value, parsed and bounded as its settings-table row says."""
    return read(BY_NAME[name], env)


@dataclass(frozen=True)
class ReceiverSettings:
    http_port: int = DEFAULT_HTTP_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    max_body_bytes: int = 16 * 1024 * 1024
    max_inflight: int = 8
    retry_after_s: int = 5
    tokens: tuple[str, ...] = ()
    grpc_workers: int = 8

    def with_overrides(self, **overrides: object) -> "ReceiverSettings":
        return replace(self, **overrides)  # type: ignore[arg-type]


def load_receiver_settings(env: Mapping[str, str] | None = None) -> ReceiverSettings:
    env = os.environ if env is None else env
    return ReceiverSettings(
        http_port=_row(env, "OTEL_REDIS_OTLP_HTTP_PORT"),
        grpc_port=_row(env, "OTEL_REDIS_OTLP_GRPC_PORT"),
        max_body_bytes=_row(env, "OTEL_REDIS_OTLP_MAX_BODY_BYTES"),
        max_inflight=_row(env, "OTEL_REDIS_OTLP_MAX_INFLIGHT"),
        retry_after_s=_row(env, "OTEL_REDIS_OTLP_RETRY_AFTER_S"),
        tokens=_row(env, "OTEL_REDIS_INGEST_TOKENS"),
        grpc_workers=_row(env, "OTEL_REDIS_OTLP_GRPC_WORKERS"),
    )


@dataclass(frozen=True)
class ForwarderSettings:
    protocol: str = "http/protobuf"
    group: str = DEFAULT_GROUP
    consumer: str = ""
    batch_size: int = 512
    block_ms: int = 1000
    claim_idle_ms: int = 60_000
    start_id: str = "0"
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 30.0
    max_retry_after_s: float = 300.0

    def with_overrides(self, **overrides: object) -> "ForwarderSettings":
        return replace(self, **overrides)  # type: ignore[arg-type]


def default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def load_forwarder_settings(env: Mapping[str, str] | None = None) -> ForwarderSettings:
    env = os.environ if env is None else env
    protocol = (env.get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "")
    protocol = protocol.strip().lower() or "http/protobuf"
    if protocol not in ("http/protobuf", "grpc"):
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL={protocol!r}: the forwarder speaks http/protobuf or grpc"
        )
    start = (env.get("OTEL_REDIS_FORWARD_START") or "0").strip()
    if start not in ("0", "$"):
        raise ConfigError(f"OTEL_REDIS_FORWARD_START={start!r} must be 0 (everything kept) or $ (new records only)")
    return ForwarderSettings(
        protocol=protocol,
        group=(env.get("OTEL_REDIS_FORWARD_GROUP") or DEFAULT_GROUP).strip(),
        consumer=(env.get("OTEL_REDIS_FORWARD_CONSUMER") or "").strip() or default_consumer(),
        batch_size=_row(env, "OTEL_REDIS_FORWARD_BATCH_SIZE"),
        block_ms=_row(env, "OTEL_REDIS_FORWARD_BLOCK_MS"),
        claim_idle_ms=_row(env, "OTEL_REDIS_FORWARD_CLAIM_IDLE_MS"),
        start_id=start,
        backoff_base_s=_row(env, "OTEL_REDIS_FORWARD_BACKOFF_BASE_S"),
        backoff_cap_s=_row(env, "OTEL_REDIS_FORWARD_BACKOFF_CAP_S"),
        max_retry_after_s=_row(env, "OTEL_REDIS_FORWARD_MAX_RETRY_AFTER_S"),
    )
