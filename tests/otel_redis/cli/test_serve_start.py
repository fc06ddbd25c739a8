"""``serve`` checks Redis at start: an unreachable REDIS_URL is one line naming it, and exit code 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.servers import free_port


def test_unreachable_redis_is_one_line_and_exit_3(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {**os.environ, "REDIS_URL": url, "OTEL_REDIS_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "otel_redis.cli", "serve", "--port", str(free_port()), "--no-otlp"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "cannot reach Redis" in line]
    assert len(errors) == 1 and url in errors[0], proc.stderr
