"""The service's periodic jobs, started and stopped by the app's lifespan.

- retention cleanup every ``OTEL_REDIS_CLEANUP_INTERVAL_S`` (default 3600; 0 turns it off), first
  run a few seconds after start; each run that removed something is logged through the pipeline
  (event ``retention_cleanup``).
Jobs use their own sync Redis client in daemon threads (see otel_redis/jobs.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis

from otel_redis import api
from otel_redis.config import Settings
from otel_redis.connection import make_client
from otel_redis.jobs import PeriodicJob
from otel_redis.retention import CleanupSettings, run_cleanup

FIRST_RUN_DELAY_S = 2.0


@dataclass
class Background:
    client: redis.Redis
    jobs: dict[str, PeriodicJob] = field(default_factory=dict)

    def stop(self) -> None:
        for job in self.jobs.values():
            job.stop()
        self.client.close()

    def status(self) -> dict[str, Any]:
        return {name: job.status() for name, job in self.jobs.items()}


def _cleanup_fn(client: redis.Redis, settings: Settings, cfg: CleanupSettings) -> Any:
    def run() -> dict[str, Any]:
        report = run_cleanup(client, settings, cfg).to_dict()
        if report["removed"]:
            api.log_event("retention_cleanup", report, component="retention")
        return report

    return run


def start_background(settings: Settings, url: str) -> Background:
    """Start every enabled job (configuration errors raise here, at startup)."""
    cleanup = CleanupSettings.from_env()
    bg = Background(client=make_client(settings, url))
    if cleanup.interval_s > 0:
        bg.jobs["cleanup"] = PeriodicJob(
            "cleanup",
            cleanup.interval_s,
            _cleanup_fn(bg.client, settings, cleanup),
            bg.client,
            first_delay_s=min(FIRST_RUN_DELAY_S, cleanup.interval_s),
        ).start()
    return bg
