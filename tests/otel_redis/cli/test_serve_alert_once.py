"""An alert that fires shows on the ``serve --demo`` console exactly once (it was reported twice)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

from tests.servers import free_port

from .conftest import cli_env
from tests.waiting import wait_until

ALERT = "<alert_fired>"


def _wait_for(path: Path, proc: subprocess.Popen[bytes], done: Callable[[str], bool], timeout: float) -> str:
    def seen() -> str | None:
        text = path.read_text(errors="replace") if path.exists() else ""
        if done(text):
            return text
        assert proc.poll() is None, f"serve exited early: {text}"
        return None

    return wait_until(seen, timeout=timeout, interval=0.2, message=lambda: path.read_text(errors="replace"))


def test_a_fired_alert_is_printed_once(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path / "data",
        OTEL_REDIS_ALERTS_ENABLED="true",  # the suite turns the alert job off elsewhere
        OTEL_REDIS_ALERT_INTERVAL_S="1",
        OTEL_REDIS_ALERT_ERROR_RATE_MIN_REQUESTS="1",
        OTEL_REDIS_ALERT_ERROR_RATE_THRESHOLD="0.0",  # the demo's 4xx requests make it fire at once
        OTEL_REDIS_ALERT_ERROR_RATE_PER_HOSTNAME="false",
        OTEL_REDIS_ALERT_LATENCY_ENABLED="false",
        OTEL_REDIS_ALERT_TRAFFIC_ENABLED="false",
    )
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    argv = [sys.executable, "-m", "otel_redis.cli", "serve", "--demo", "--demo-interval", "0.2",
            "--port", str(free_port()), "--no-otlp"]  # fmt: skip
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env, cwd=Path(__file__).resolve().parents[3])
    try:
        _wait_for(out, proc, lambda text: ALERT in text, timeout=90)
        # let the alert job run a few more intervals and the console print many more records after it
        text = _wait_for(out, proc, lambda t: t.split(ALERT, 1)[1].count("\nstored ") >= 30, timeout=90)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    console = text + err.read_text(errors="replace")
    lines = [line for line in console.splitlines() if ALERT in line]
    assert len(lines) == 1, "\n".join(lines)
