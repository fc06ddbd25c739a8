"""The Dockerfile builds an image whose service answers, and the compose file is valid and builds.

Runs only where a Docker engine answers and the base images can be had; otherwise each test is
skipped with the exact reason (this machine, for example, has the docker client but no engine).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGES = ("python:3.11-slim", "redis:7-alpine")


def _docker(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def _why_not() -> str | None:
    """None when the tests can run, else the reason they cannot."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    info = _docker("info", timeout=30)
    if info.returncode != 0:
        first = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"no Docker engine answers (docker info: {first})"
    if _docker("compose", "version", timeout=30).returncode != 0:
        return "docker compose is not installed"
    for image in BASE_IMAGES:
        if _docker("image", "inspect", image, timeout=30).returncode != 0 and _docker("pull", image).returncode != 0:
            return f"the base image {image} is neither present nor pullable (no registry access)"
    return None


@pytest.fixture(scope="module")
def docker_ready() -> None:
    reason = _why_not()
    if reason is not None:
        pytest.skip(reason)


def test_the_image_builds_and_its_service_answers(docker_ready: None) -> None:
    tag = f"otel-redis-test:{uuid.uuid4().hex[:8]}"
    built = _docker("build", "-t", tag, ".", timeout=1200)
    assert built.returncode == 0, built.stderr[-3000:]
    port = free_port()
    name = f"otel-redis-test-{uuid.uuid4().hex[:8]}"
    run = _docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", tag, timeout=120)
    assert run.returncode == 0, run.stderr
    try:
        # the embedded Redis of the image, then the API
        response = wait_until(lambda: (a := httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)).status_code == 200
                              and a, timeout=90, interval=0.5, ignore=(httpx.HTTPError,),
                              message=lambda: _docker("logs", name).stdout[-3000:])
        assert response.json()["status"] in ("ok", "degraded")
        assert "Traceback" not in _docker("logs", name).stderr
    finally:
        _docker("rm", "-f", name, timeout=60)
        _docker("rmi", "-f", tag, timeout=60)


def test_the_compose_file_is_valid_and_builds(docker_ready: None) -> None:
    project = f"otelredistest{uuid.uuid4().hex[:8]}"
    config = _docker("compose", "-p", project, "config", "-q", timeout=60)
    assert config.returncode == 0, config.stderr
    built = _docker("compose", "-p", project, "build", timeout=1800)
    try:
        assert built.returncode == 0, built.stderr[-3000:]
    finally:
        _docker("compose", "-p", project, "down", "--rmi", "local", "-v", timeout=300)
