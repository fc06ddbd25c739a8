"""Settings from the environment, validated once; a bad value is a ConfigError naming the variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from .levels import parse_level


class ConfigError(ValueError):
    """An environment variable or configure() argument has an invalid value."""


DAY = 86400

#: name of the generated API token's file in the data folder (written by the service, read by the CLI)
API_TOKEN_FILE = "api-token"


@dataclass(frozen=True)
class Retention:
    """Retention in seconds per data class (the specification's LOG_RETENTION_DAYS table)."""

    requests: int = 7 * DAY
    errors: int = 30 * DAY
    oauth: int = 90 * DAY
    stats: int = 365 * DAY

    @property
    def longest(self) -> int:
        return max(self.requests, self.errors, self.oauth, self.stats)


@dataclass(frozen=True)
class Settings:
    """Every knob of the library. Built by :func:`load_settings`; override fields with ``replace``."""

    redis_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(".otel-redis"))
    redis_server_bin: str | None = None
    log_level: str = "INFO"
    service_name: str = "otel-redis"
    retention: Retention = field(default_factory=Retention)
    stream_maxlen: int = 1_000_000
    stream_unread_maxlen: int = 10_000_000
    max_message_bytes: int = 32 * 1024
    max_attribute_bytes: int = 8 * 1024
    batch_delay_ms: int = 100
    max_queue_size: int = 131_072
    max_export_batch_size: int = 512
    export_timeout_ms: int = 30_000
    preconfigure_buffer: int = 10_000
    retry_attempts: int = 3
    retry_backoff_cap_s: float = 2.0
    socket_timeout_s: float = 5.0
    slow_request_ms: int = 1000
    oauth_flow_ttl_s: int = 3600
    capture_stdlib: bool = False
    # request logging (instrumentation.py, client_ip.py, dns.py, masking.py)
    trusted_proxies: tuple[str, ...] = ()
    reverse_dns: bool = True
    dns_timeout_s: float = 2.0
    dns_cache_size: int = 10_000
    dns_cache_ttl_s: int = 3600
    mask_headers: tuple[str, ...] = ()
    mask_query_params: tuple[str, ...] = ()
    # secret scrubbing of every record (scrub.py, docs/security.md)
    scrub: bool = True
    scrub_patterns: tuple[str, ...] = ()
    scrub_allow: tuple[str, ...] = ()
    max_hostnames: int = 1000
    #: bounds of the other client- and sender-chosen key parts (bounds.py, docs/configuration.md)
    max_paths: int = 1000
    max_path_prefixes: int = 100
    max_components: int = 1000
    max_events: int = 1000
    max_users_per_hour: int = 10_000
    max_sessions_per_hour: int = 10_000
    max_oauth_clients_per_hour: int = 1000
    max_user_agents_per_hour: int = 1000
    max_client_hostnames_per_hour: int = 10_000
    #: distinct resource service.name values indexed in idx:service:* (later new ones as _OTHER)
    max_services: int = 1000
    max_ips_per_hour: int = 10_000
    max_ip_prefixes_per_hour: int = 10_000
    #: records an attr.<name>=<value> query walks at most, newest first (the answer says partial past it)
    attr_scan_limit: int = 10_000
    #: seconds between writes of this process's counters to Redis (summed by /metrics); 0: never
    counters_publish_s: float = 15.0
    #: the web console's bounded hourly aggregates (aggregates.py)
    console_aggregates: bool = True
    # export (writer_process.py)
    writer_process: bool = False
    writer_nice: int = 5
    # Redis Cluster (connection.py, docs/cluster.md): "auto" detects it with INFO cluster
    cluster: str = "auto"
    shards: int = 12

    def with_overrides(self, **overrides: object) -> "Settings":
        return replace(self, **overrides)  # type: ignore[arg-type]


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be >= {minimum}")
    return value


def _nice(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default, 0)
    if value > 19:
        raise ConfigError(f"{name}={env.get(name)!r} must be between 0 and 19 (a niceness increment)")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be >= {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def _redis_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get("REDIS_URL") or "").strip()
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL={raw!r} must start with redis://, rediss:// or unix://")
    return raw


def _cluster_mode(env: Mapping[str, str]) -> str:
    raw = (env.get("OTEL_REDIS_CLUSTER") or "auto").strip().lower()
    modes = {"auto": "auto", "true": "true", "1": "true", "yes": "true", "false": "false", "0": "false", "no": "false"}
    if raw not in modes:
        raise ConfigError(f"OTEL_REDIS_CLUSTER={env.get('OTEL_REDIS_CLUSTER')!r} must be auto, true or false")
    return modes[raw]


def _shards(env: Mapping[str, str]) -> int:
    value = _int(env, "OTEL_REDIS_SHARDS", 12, 1)
    if value > 256:
        raise ConfigError(f"OTEL_REDIS_SHARDS={env.get('OTEL_REDIS_SHARDS')!r} must be between 1 and 256")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name) or ""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks, validated (stored normalised)."""
    import ipaddress

    out = []
    for item in _list(env, name):
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not an IP address or CIDR network") from None
    return tuple(out)


#: the SDK's attribute limit variables (read by its LogRecordLimits when any is set)
LIMIT_VARIABLES = (
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
)
LOGS_EXPORTERS = ("redis", "console", "otlp", "none")


def sdk_disabled(env: Mapping[str, str] | None = None) -> bool:
    """``OTEL_SDK_DISABLED=true``: the SDK's switch, honoured as a no-op pipeline."""
    env = os.environ if env is None else env
    return (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true"


def logs_exporters(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``OTEL_LOGS_EXPORTER`` as a comma list (default ``redis``); an unknown name is a ConfigError."""
    env = os.environ if env is None else env
    names = _list(env, "OTEL_LOGS_EXPORTER") or ("redis",)
    for name in names:
        if name not in LOGS_EXPORTERS:
            raise ConfigError(
                f"OTEL_LOGS_EXPORTER: unknown exporter {name!r} (use a comma list of {', '.join(LOGS_EXPORTERS)})"
            )
    return tuple(n for n in names if n != "none")


def limits_set(env: Mapping[str, str] | None = None) -> bool:
    """Whether any attribute limit variable is set (then records go through the SDK's limits)."""
    env = os.environ if env is None else env
    for name in LIMIT_VARIABLES:
        raw = (env.get(name) or "").strip()
        if raw:
            _int(env, name, 0, 0)
            return True
    return False


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every variable; see the README's configuration table."""
    env = os.environ if env is None else env
    try:
        level = parse_level(env.get("LOG_LEVEL"))
    except ValueError as exc:
        raise ConfigError(f"LOG_LEVEL: {exc}") from None
    retention = Retention(
        requests=_int(env, "LOG_RETENTION_REQUESTS_DAYS", 7, 1) * DAY,
        errors=_int(env, "LOG_RETENTION_ERRORS_DAYS", 30, 1) * DAY,
        oauth=_int(env, "LOG_RETENTION_OAUTH_DAYS", 90, 1) * DAY,
        stats=_int(env, "LOG_RETENTION_STATS_DAYS", 365, 1) * DAY,
    )
    batch_delay = _int(env, "OTEL_REDIS_BATCH_DELAY_MS", _int(env, "OTEL_BLRP_SCHEDULE_DELAY", 100, 1), 1)
    return Settings(
        redis_url=_redis_url(env),
        data_dir=Path(env.get("OTEL_REDIS_DATA_DIR") or ".otel-redis"),
        redis_server_bin=(env.get("OTEL_REDIS_SERVER_BIN") or None),
        log_level=level,
        service_name=(env.get("OTEL_SERVICE_NAME") or "otel-redis"),
        retention=retention,
        stream_maxlen=_int(env, "OTEL_REDIS_STREAM_MAXLEN", 1_000_000, 1000),
        stream_unread_maxlen=_int(env, "OTEL_REDIS_STREAM_UNREAD_MAXLEN", 10_000_000, 1000),
        max_message_bytes=_int(env, "OTEL_REDIS_MAX_MESSAGE_BYTES", 32 * 1024, 64),
        max_attribute_bytes=_int(env, "OTEL_REDIS_MAX_ATTRIBUTE_BYTES", 8 * 1024, 64),
        batch_delay_ms=batch_delay,
        max_queue_size=_int(env, "OTEL_REDIS_MAX_QUEUE_SIZE", _int(env, "OTEL_BLRP_MAX_QUEUE_SIZE", 131_072, 1), 1),
        max_export_batch_size=_int(
            env, "OTEL_REDIS_MAX_EXPORT_BATCH_SIZE", _int(env, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512, 1), 1
        ),
        export_timeout_ms=_int(env, "OTEL_BLRP_EXPORT_TIMEOUT", 30_000, 1),
        preconfigure_buffer=_int(env, "OTEL_REDIS_PRECONFIGURE_BUFFER", 10_000, 0),
        retry_attempts=_int(env, "OTEL_REDIS_RETRY_ATTEMPTS", 3, 0),
        retry_backoff_cap_s=_float(env, "OTEL_REDIS_RETRY_BACKOFF_CAP_S", 2.0, 0.0),
        socket_timeout_s=_float(env, "OTEL_REDIS_SOCKET_TIMEOUT_S", 5.0, 0.05),
        slow_request_ms=_int(env, "OTEL_REDIS_SLOW_REQUEST_MS", 1000, 1),
        oauth_flow_ttl_s=_int(env, "OTEL_REDIS_OAUTH_FLOW_TTL_S", 3600, 1),
        capture_stdlib=_bool(env, "OTEL_REDIS_CAPTURE_STDLIB", False),
        trusted_proxies=_networks(env, "OTEL_REDIS_TRUSTED_PROXIES"),
        reverse_dns=_bool(env, "OTEL_REDIS_REVERSE_DNS", True),
        dns_timeout_s=_float(env, "OTEL_REDIS_DNS_TIMEOUT_S", 2.0, 0.01),
        dns_cache_size=_int(env, "OTEL_REDIS_DNS_CACHE_SIZE", 10_000, 1),
        dns_cache_ttl_s=_int(env, "OTEL_REDIS_DNS_CACHE_TTL_S", 3600, 1),
        mask_headers=tuple(h.lower() for h in _list(env, "OTEL_REDIS_MASK_HEADERS")),
        mask_query_params=tuple(q.lower() for q in _list(env, "OTEL_REDIS_MASK_QUERY_PARAMS")),
        scrub=_bool(env, "OTEL_REDIS_SCRUB", True),
        scrub_patterns=_list(env, "OTEL_REDIS_SCRUB_PATTERNS"),
        scrub_allow=_list(env, "OTEL_REDIS_SCRUB_ALLOW"),
        max_hostnames=_int(env, "OTEL_REDIS_MAX_HOSTNAMES", 1000, 1),
        max_paths=_int(env, "OTEL_REDIS_MAX_PATHS", 1000, 1),
        max_path_prefixes=_int(env, "OTEL_REDIS_MAX_PATH_PREFIXES", 100, 1),
        max_components=_int(env, "OTEL_REDIS_MAX_COMPONENTS", 1000, 1),
        max_events=_int(env, "OTEL_REDIS_MAX_EVENTS", 1000, 1),
        max_users_per_hour=_int(env, "OTEL_REDIS_MAX_USERS_PER_HOUR", 10_000, 1),
        max_sessions_per_hour=_int(env, "OTEL_REDIS_MAX_SESSIONS_PER_HOUR", 10_000, 1),
        max_oauth_clients_per_hour=_int(env, "OTEL_REDIS_MAX_OAUTH_CLIENTS_PER_HOUR", 1000, 1),
        max_user_agents_per_hour=_int(env, "OTEL_REDIS_MAX_USER_AGENTS_PER_HOUR", 1000, 0),
        max_client_hostnames_per_hour=_int(env, "OTEL_REDIS_MAX_CLIENT_HOSTNAMES_PER_HOUR", 10_000, 1),
        max_services=_int(env, "OTEL_REDIS_MAX_SERVICES", 1000, 1),
        max_ips_per_hour=_int(env, "OTEL_REDIS_MAX_IPS_PER_HOUR", 10_000, 1),
        max_ip_prefixes_per_hour=_int(env, "OTEL_REDIS_MAX_IP_PREFIXES_PER_HOUR", 10_000, 1),
        attr_scan_limit=_int(env, "OTEL_REDIS_ATTR_SCAN_LIMIT", 10_000, 1),
        counters_publish_s=_float(env, "OTEL_REDIS_COUNTERS_PUBLISH_S", 15.0, 0.0),
        console_aggregates=_bool(env, "OTEL_REDIS_CONSOLE_AGGREGATES", True),
        writer_process=_bool(env, "OTEL_REDIS_WRITER_PROCESS", False),
        writer_nice=_nice(env, "OTEL_REDIS_WRITER_NICE", 5),
        cluster=_cluster_mode(env),
        shards=_shards(env),
    )
