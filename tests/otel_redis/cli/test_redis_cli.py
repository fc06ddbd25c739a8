"""``otel-redis redis-cli`` reaches the embedded Redis of the data folder over its unix socket."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from otel_redis.embedded import EmbeddedRedis


def test_redis_cli_reaches_the_embedded_socket(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    with EmbeddedRedis(data_dir, persist=False) as server:
        assert server.url.startswith("unix://")
        redis.Redis.from_url(server.url).set("greeting", "from-the-test")
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        proc = subprocess.run(
            [sys.executable, "-m", "otel_redis.cli", "redis-cli", "GET", "greeting"],
            capture_output=True, text=True, env={**env, "OTEL_REDIS_DATA_DIR": str(data_dir)}, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "from-the-test"
