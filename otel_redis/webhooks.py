"""Webhook delivery of alert events: JSON POSTs with retries, off the evaluating thread.

A delivery is retried on connection errors, timeouts, 429 and 5xx answers, with exponential backoff
(``backoff_s * 2**attempt``, at most 30 s), up to ``attempts`` tries; any other 4xx is final.
Payloads wait in a bounded queue served by one worker thread; a full queue drops the payload and
counts it. URLs are logged by scheme and host only (a webhook URL often carries a secret).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx

_log = logging.getLogger("otel_redis.webhooks")

MAX_BACKOFF_S = 30.0
QUEUE_SIZE = 1000


def safe_url(url: str) -> str:
    """``https://hooks.example.com/...``: the URL without path, query or credentials."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."


@dataclass
class DeliveryCounters:
    delivered: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed, "retried": self.retried, "dropped": self.dropped}


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class WebhookNotifier:
    """POST each payload to every URL (see the module docstring for the retry policy)."""

    def __init__(
        self,
        urls: tuple[str, ...],
        *,
        timeout_s: float = 5.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        on_failure: Callable[[str, dict[str, Any], str], None] | None = None,
    ) -> None:
        self.urls = urls
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.counters = DeliveryCounters()
        self.on_failure = on_failure
        self._client = httpx.Client(timeout=timeout_s, transport=transport, headers={"user-agent": "otel-redis-alerts"})
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_SIZE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if urls:
            self._thread = threading.Thread(target=self._work, name="otel-redis-webhooks", daemon=True)
            self._thread.start()

    def notify(self, payload: dict[str, Any]) -> None:
        """Queue ``payload`` for every URL; never blocks, never raises."""
        if not self.urls:
            return
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self.counters.add("dropped")

    def deliver(self, url: str, payload: dict[str, Any]) -> bool:
        """One payload to one URL, with the retries; True once a 2xx answer came back."""
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                self.counters.add("retried")
                if self._stop.wait(min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1))):
                    break
            try:
                response = self._client.post(url, json=payload)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                self.counters.add("delivered")
                return True
            last = f"HTTP {response.status_code}"
            if not _retryable(response.status_code):
                break
        self.counters.add("failed")
        _log.warning("alert webhook %s failed: %s", safe_url(url), last)
        if self.on_failure is not None:
            try:
                self.on_failure(url, payload, last)
            except Exception:  # noqa: BLE001
                pass
        return False

    def _work(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            for url in self.urls:
                self.deliver(url, payload)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop."""
        if self._thread is not None:
            deadline = time.monotonic() + timeout
            while not self._queue.empty() and time.monotonic() < deadline:
                time.sleep(0.05)
            self._stop.set()
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
            self._thread.join(max(0.1, deadline - time.monotonic()))
        self._client.close()
