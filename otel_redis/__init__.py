"""otel-redis: OpenTelemetry logs to Redis, with an index schema for querying and live follow.

    from otel_redis import configure, log_info, log_error, log_event
    configure()                      # REDIS_URL, else an embedded Redis under ./.otel-redis
    log_info("Server started", component="api_server", port=8080)

The public names are imported on first use (module ``__getattr__``): ``import otel_redis`` and the
``otel-redis`` command do not load the OpenTelemetry SDK, redis-py and the exporter until a name
that needs them is touched, so a CLI query starts in a fraction of the time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the submodule that defines it
_SOURCES = {
    "log_at": "api",
    "log_critical": "api",
    "log_debug": "api",
    "log_error": "api",
    "log_event": "api",
    "log_info": "api",
    "log_trace": "api",
    "log_warning": "api",
    "ConfigError": "config",
    "Settings": "config",
    "load_settings": "config",
    "RedisLogRecordExporter": "exporter",
    "instrument_app": "instrumentation",
    "log_oauth_activity": "oauth",
    "track_oauth_flow": "oauth",
    "log_request": "request_log",
    "log_response": "request_log",
    "TRACE": "levels",
    "configure": "pipeline",
    "force_flush": "pipeline",
    "shutdown": "pipeline",
    "stats": "pipeline",
}

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

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from .api import log_at, log_critical, log_debug, log_error, log_event, log_info, log_trace, log_warning
    from .config import ConfigError, Settings, load_settings
    from .exporter import RedisLogRecordExporter
    from .instrumentation import instrument_app
    from .levels import TRACE
    from .oauth import log_oauth_activity, track_oauth_flow
    from .pipeline import configure, force_flush, shutdown, stats
    from .request_log import log_request, log_response


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{source}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
