"""Opt-in bridge: stdlib ``logging`` records flow into the same pipeline (component = logger name).

Records from the loggers that run inside the export path (``otel_redis``, ``opentelemetry``,
``redis``) and anything logged while OTel instrumentation is suppressed (the batch worker's export)
are skipped, so the bridge can never feed the pipeline with its own output.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from . import api
from .record import safe_str

_SKIP_PREFIXES = ("otel_redis", "opentelemetry", "redis")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class OtelRedisHandler(logging.Handler):
    """A logging.Handler that emits through :mod:`otel_redis.api`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            name = record.name
            if name.startswith(_SKIP_PREFIXES) or not is_instrumentation_enabled():
                return
            attributes: dict[str, Any] = {
                "code.file.path": record.pathname,
                "code.function.name": record.funcName,
                "code.line.number": record.lineno,
            }
            for key, value in record.__dict__.items():
                if key not in _STANDARD and not key.startswith("_"):
                    attributes[key] = value
            if record.exc_info and record.exc_info[1] is not None:
                attributes["error"] = record.exc_info[1]
            component = attributes.pop("component", name)
            api.log_at(record.levelno, record.getMessage(), safe_str(component), **attributes)
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


def install_handler(logger: logging.Logger | None = None) -> OtelRedisHandler:
    """Attach the bridge to ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    handler = OtelRedisHandler()
    target.addHandler(handler)
    if target.level > api.level_gate() or target.level == logging.NOTSET:
        target.setLevel(api.level_gate())
    return handler


def remove_handler(handler: OtelRedisHandler, logger: logging.Logger | None = None) -> None:
    (logger or logging.getLogger()).removeHandler(handler)
