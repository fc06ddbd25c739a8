"""otel-redis: OpenTelemetry logs to Redis, with an index schema for querying and live follow.

    from otel_redis import configure, log_info, log_error, log_event
    configure()                      # REDIS_URL, else an embedded Redis under ./.otel-redis
    log_info("Server started", component="api_server", port=8080)
"""

from __future__ import annotations

from .api import log_at, log_critical, log_debug, log_error, log_event, log_info, log_trace, log_warning
from .config import ConfigError, Settings, load_settings
from .exporter import RedisLogRecordExporter
from .instrumentation import instrument_app
from .oauth import log_oauth_activity, track_oauth_flow
from .request_log import log_request, log_response
from .levels import TRACE
from .pipeline import configure, force_flush, shutdown, stats

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "RedisLogRecordExporter",
    "Settings",
    "TRACE",
    "__version__",
    "configure",
    "force_flush",
    "instrument_app",
    "load_settings",
    "log_at",
    "log_critical",
    "log_debug",
    "log_error",
    "log_event",
    "log_info",
    "log_oauth_activity",
    "log_request",
    "log_response",
    "log_trace",
    "log_warning",
    "shutdown",
    "stats",
    "track_oauth_flow",
]
