"""A real HTTP server that receives webhook POSTs, for the alert tests; it can fail the first N."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from tests.waiting import wait_until


class WebhookSink:
    def __init__(self, fail_first: int = 0, fail_status: int = 500) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.attempts = 0
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with sink._lock:
                    sink.attempts += 1
                    fail = sink.attempts <= sink.fail_first
                    if not fail:
                        sink.received.append(json.loads(body))
                self.send_response(sink.fail_status if fail else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?secret=s3cr3t"

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``n`` payloads arrived (generous timeout: a test waits, it does not time)."""
        def arrived() -> list[dict[str, Any]] | None:
            with self._lock:
                return list(self.received) if len(self.received) >= n else None

        return wait_until(arrived, timeout=timeout,
                          message=lambda: f"{n} webhook payloads (got {len(self.received)}, {self.attempts} attempts)")


@contextlib.contextmanager
def webhook_sink(fail_first: int = 0, fail_status: int = 500) -> Iterator[WebhookSink]:
    sink = WebhookSink(fail_first, fail_status)
    thread = threading.Thread(target=sink.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.server.shutdown()
        sink.server.server_close()
