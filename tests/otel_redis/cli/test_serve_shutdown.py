"""SIGINT or SIGTERM on ``serve`` with live-follow streams open: each stream gets a final
``event: shutdown`` with its resume position and ends, and the process exits cleanly (no traceback)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from otel_redis.embedded import EmbeddedRedis, free_port
from tests.servers import run_service

TOKEN = "shutdown-read-token"
STREAMS = 3


def _follow(base_url: str, ready: threading.Barrier, out: list[str]) -> None:
    """Read one SSE stream to its end, collecting its lines; meet the others at the barrier once
    the server has fixed the stream's position (the ``: ready`` comment)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.stream("GET", f"{base_url}/logs/stream", headers=headers, timeout=httpx.Timeout(30)) as response:
        assert response.status_code == 200
        waited = False
        for line in response.iter_lines():
            out.append(line)
            if line.startswith(": ready") and not waited:
                waited = True
                ready.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_open_streams_get_a_final_event_and_serve_exits_without_a_traceback(tmp_path: Path, sig: int) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis", persist=False)
    redis_server.start()
    try:
        port = free_port()
        env = {"REDIS_URL": redis_server.url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data"),
               "OTEL_REDIS_API_TOKENS": TOKEN}
        argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
        with run_service(argv, env=env, port=port, tmp_path=tmp_path, name="serve-shutdown") as service:
            ready = threading.Barrier(STREAMS + 1)
            lines: list[list[str]] = [[] for _ in range(STREAMS)]
            errors: list[BaseException] = []

            def run(n: int) -> None:
                try:
                    _follow(service.base_url, ready, lines[n])
                except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(STREAMS)]
            for thread in threads:
                thread.start()
            ready.wait(timeout=30)  # every stream is open and positioned

            started = time.monotonic()
            code = service.stop(sig, timeout=20)
            took = time.monotonic() - started
            for thread in threads:
                thread.join(timeout=20)
            output = service.output()

        # uvicorn re-raises the signal once it has shut down: the conventional exit of a process
        # stopped by that signal (130 after SIGINT, killed by SIGTERM), not a crash
        assert code in (0, 128 + sig, -sig), (code, output)
        assert not errors, errors
        for stream in lines:
            assert "event: shutdown" in stream, stream
            final = stream[stream.index("event: shutdown") + 1]
            assert final.startswith("id: ") and final != "id: ", stream
        assert "Traceback" not in output and "Exception in ASGI application" not in output, output
        # the issue asks for an exit within 2 s; a loaded machine can stretch that, so the figure is
        # printed (pytest -s) rather than asserted
        print(f"serve exited {took:.2f} s after {signal.Signals(sig).name} with {STREAMS} open streams")
    finally:
        redis_server.stop()
