"""Periodic background jobs of the service (retention cleanup, alert evaluation).

Each job runs in its own daemon thread with a sync Redis client, so a slow run never stalls the
query API's event loop. With several service instances (or uvicorn workers) on one Redis, a lock key
(``SET lock:job:{name} NX PX interval``, see :func:`schema.job_lock`) lets one instance run each job
per interval; the lock is left to expire, so a crashed instance never holds it for long.
A failing run is counted and reported on the ``otel_redis.jobs`` stdlib logger; it never stops the
thread.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any, Callable

import redis

from . import schema

_log = logging.getLogger("otel_redis.jobs")


class PeriodicJob:
    """Run ``fn()`` every ``interval_s`` seconds (first run after ``first_delay_s``) until stopped."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        fn: Callable[[], Any],
        client: redis.Redis | None = None,
        *,
        first_delay_s: float = 0.0,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.fn = fn
        self.client = client
        self.first_delay_s = first_delay_s
        self.runs = 0
        self.skipped = 0
        self.failures = 0
        self.last_result: Any = None
        self.last_error: str = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._token = secrets.token_hex(8)

    def start(self) -> "PeriodicJob":
        self._thread = threading.Thread(target=self._loop, name=f"otel-redis-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _acquire(self) -> bool:
        if self.client is None:
            return True
        ttl_ms = max(1, int(self.interval_s * 1000 * 0.9))
        return bool(self.client.set(schema.job_lock(self.name), self._token, nx=True, px=ttl_ms))

    def run_once(self) -> Any:
        """One run (when this instance gets the lock); errors are counted, never raised."""
        try:
            if not self._acquire():
                self.skipped += 1
                return None
            started = time.perf_counter()
            self.last_result = self.fn()
            self.runs += 1
            _log.debug("job %s finished in %.3f s", self.name, time.perf_counter() - started)
            return self.last_result
        except Exception as exc:  # noqa: BLE001 - a periodic job never dies of one bad run
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            _log.warning("otel-redis job %s failed: %s", self.name, self.last_error)
            return None

    def _loop(self) -> None:
        if self._stop.wait(self.first_delay_s):
            return
        while not self._stop.is_set():
            self.run_once()
            if self._stop.wait(self.interval_s):
                return

    def status(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval_s,
            "runs": self.runs,
            "skipped": self.skipped,
            "failures": self.failures,
            "last_error": self.last_error,
        }
