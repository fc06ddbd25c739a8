"""The service's periodic jobs, started and stopped by the app's lifespan.

- retention cleanup every ``OTEL_REDIS_CLEANUP_INTERVAL_S`` (default 3600; 0 turns it off), first
  run a few seconds after start; each run that removed something is logged through the pipeline
  (event ``retention_cleanup``);
- alert evaluation every ``OTEL_REDIS_ALERT_INTERVAL_S`` (default 30) unless
  ``OTEL_REDIS_ALERTS_ENABLED=false``; rules, webhooks and cool-down: otel_redis/alert_rules.py.
Jobs use their own sync Redis client in daemon threads (see otel_redis/jobs.py); the same client
serves the sync endpoints (/metrics, /logs/metrics, /logs/paths, /logs/alerts) in FastAPI's
worker threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import redis

from otel_redis import api
from otel_redis.alert_rules import AlertConfig, load_alert_config
from otel_redis.alerts import AlertEngine, active, delivery_failed
from otel_redis.config import ConfigError, Settings
from otel_redis.connection import make_client
from otel_redis.jobs import PeriodicJob
from otel_redis.retention import CleanupSettings, run_cleanup
from otel_redis.webhooks import WebhookNotifier

FIRST_RUN_DELAY_S = 2.0


@dataclass
class Background:
    client: redis.Redis
    alert_config: AlertConfig | None = None
    notifier: WebhookNotifier | None = None
    jobs: dict[str, PeriodicJob] = field(default_factory=dict)

    def stop(self) -> None:
        for job in self.jobs.values():
            job.stop()
        if self.notifier is not None:
            self.notifier.close()
        self.client.close()

    def status(self) -> dict[str, Any]:
        return {name: job.status() for name, job in self.jobs.items()}

    def firing(self) -> list[tuple[str, str]]:
        if self.alert_config is None:
            return []
        return [(a["rule"], a["scope"]) for a in active(self.client)]


def _cleanup_fn(client: redis.Redis, settings: Settings, cfg: CleanupSettings) -> Any:
    def run() -> dict[str, Any]:
        report = run_cleanup(client, settings, cfg).to_dict()
        if report["removed"]:
            api.log_event("retention_cleanup", report, component="retention")
        return report

    return run


def _alerts_enabled(env: dict[str, str] | os._Environ[str]) -> bool:
    raw = (env.get("OTEL_REDIS_ALERTS_ENABLED") or "true").strip().lower()
    if raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"OTEL_REDIS_ALERTS_ENABLED={raw!r} is not a boolean (use true or false)")
    return raw in ("1", "true", "yes", "on")


def check_config() -> None:
    """Read every setting of the background jobs and /metrics now, so a bad value stops
    ``otel-redis serve`` with one line before anything starts (ConfigError)."""
    from .prometheus import MetricsSettings

    CleanupSettings.from_env()
    if _alerts_enabled(os.environ):
        load_alert_config()
    MetricsSettings.from_env()


def start_background(settings: Settings, url: str) -> Background:
    """Start every enabled job (configuration errors raise here, at startup)."""
    cleanup = CleanupSettings.from_env()
    alerts = load_alert_config() if _alerts_enabled(os.environ) else None
    bg = Background(client=make_client(settings, url), alert_config=alerts)
    if cleanup.interval_s > 0:
        bg.jobs["cleanup"] = PeriodicJob(
            "cleanup",
            cleanup.interval_s,
            _cleanup_fn(bg.client, settings, cleanup),
            bg.client,
            first_delay_s=min(FIRST_RUN_DELAY_S, cleanup.interval_s),
        ).start()
    if alerts is not None:
        bg.notifier = WebhookNotifier(
            alerts.webhooks,
            timeout_s=alerts.webhook_timeout_s,
            attempts=alerts.webhook_attempts,
            backoff_s=alerts.webhook_backoff_s,
            on_failure=delivery_failed,
        )
        engine = AlertEngine(bg.client, alerts, bg.notifier)
        bg.jobs["alerts"] = PeriodicJob(
            "alerts", alerts.interval_s, engine.evaluate, bg.client, first_delay_s=min(1.0, alerts.interval_s)
        ).start()
    return bg
