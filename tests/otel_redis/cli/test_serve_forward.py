"""``serve`` also runs the forwarder when an upstream is configured: records logged reach a real
OTLP sink, and /healthz shows the forwarder's counters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from otel_redis.embedded import EmbeddedRedis, free_port
from tests.collector.sink import Sink
from tests.servers import run_service
from tests.waiting import wait_until

from .conftest import READ_TOKEN

ROOT = Path(__file__).resolve().parents[3]

_LOG = """
import sys, otel_redis
otel_redis.configure()
for rid in sys.argv[1:]:
    otel_redis.log_info(f"forward me {rid}", component="forward-test", id=rid)
assert otel_redis.force_flush(30_000)
"""


@pytest.fixture
def sink() -> Sink:
    s = Sink().start()
    try:
        yield s
    finally:
        s.stop()


def _serve(tmp: Path, redis_url: str, *extra: str, env: dict[str, str] | None = None):
    argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp", *extra]
    full = {"REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp / "svc"), "OTEL_REDIS_API_TOKENS": READ_TOKEN,
            **(env or {})}  # fmt: skip
    return run_service(argv, env=full, tmp_path=tmp, name="forward-serve")


def _log(redis_url: str, tmp: Path, ids: list[str]) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp / "app")}
    done = subprocess.run([sys.executable, "-c", _LOG, *ids], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_forwards_to_the_upstream_and_reports_it(tmp_path: Path, sink: Sink, how: str) -> None:
    upstream = f"http://127.0.0.1:{sink.http_port}"
    extra, env = (("--forward", upstream), None) if how == "flag" else ((), {"OTEL_EXPORTER_OTLP_ENDPOINT": upstream})
    with EmbeddedRedis(tmp_path / "redis", persist=False) as server:
        with _serve(tmp_path, server.url, *extra, env=env) as service:
            ids = [f"{how}-{i}" for i in range(5)]
            _log(server.url, tmp_path, ids)
            wait_until(lambda: set(ids) <= set(sink.record_ids()))
            assert sorted(r for r in sink.record_ids() if r in ids) == sorted(ids)  # each once
            health = wait_until(lambda: (h := httpx.get(f"{service.base_url}/healthz").json())["collector"]
                           .get("forwarder", {}).get("forwarded", 0) >= len(ids) and h)  # fmt: skip
            assert health["collector"]["forwarders"], health  # published under its consumer name
            metrics = httpx.get(f"{service.base_url}/metrics", headers={"Authorization": f"Bearer {READ_TOKEN}"})
            assert metrics.status_code == 200 and "forward" in metrics.text
        assert "forwarding stored records to" in service.output()


def test_serve_without_an_upstream_does_not_forward(tmp_path: Path, sink: Sink) -> None:
    with EmbeddedRedis(tmp_path / "redis", persist=False) as server:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": ""}
        with _serve(tmp_path, server.url, env=env) as service:
            _log(server.url, tmp_path, ["quiet-0"])
            health = httpx.get(f"{service.base_url}/healthz").json()
            assert health["collector"]["forwarder"]["forwarded"] == 0
        assert "forwarding" not in service.output()
    assert sink.attempts == 0


def test_a_bad_forward_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "otel_redis.cli", "serve", "--port", str(free_port()), "--no-otlp",
            "--forward", "collector:4318"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "OTEL_REDIS_DATA_DIR": str(tmp_path)})  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--forward 'collector:4318'" in done.stderr
