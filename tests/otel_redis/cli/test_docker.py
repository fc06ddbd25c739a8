"""logs-docker and logs-service: ``docker compose logs`` for the shipped compose file, or one clear line
and a non-zero exit where Docker cannot be used (this machine has the client only, CI may have nothing)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from otel_redis.cli.docker import EXIT_NO_DOCKER

from .conftest import cli_env, one_error_line, run_just


def _docker_usable() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probes = ([docker, "compose", "version"], [docker, "info"])
    return all(subprocess.run(p, capture_output=True, timeout=20).returncode == 0 for p in probes)


@pytest.mark.parametrize("args", [("logs-docker",), ("logs-docker", "5", "false"), ("logs-service",), ("logs-service", "redis", "5")])
def test_docker_recipes(args, data_dir):
    done = run_just(*args, env=cli_env(data_dir), timeout=120)
    if _docker_usable():
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == EXIT_NO_DOCKER
        line = one_error_line(done)
        assert "Docker" in line and "not" in line
        assert done.stdout == ""


def test_without_a_docker_command(tmp_path, data_dir):
    """PATH with only what the recipe itself needs (sh, python3): the one line names the cause."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("sh") or "/bin/sh", bin_dir / "sh")
    os.symlink(sys.executable, bin_dir / "python3")
    env = cli_env(data_dir, PATH=str(bin_dir))
    for args in (("logs-docker", "10", "true"), ("logs-service", "demo")):
        done = run_just(*args, env=env)
        assert done.returncode == EXIT_NO_DOCKER
        assert one_error_line(done) == "otel-redis: Docker is not available: no `docker` command on PATH"


def test_missing_compose_file_is_one_line(tmp_path, data_dir):
    env = cli_env(data_dir, OTEL_REDIS_COMPOSE_FILE=str(Path(tmp_path) / "nope.yml"))
    done = run_just("logs-docker", env=env)
    assert done.returncode == EXIT_NO_DOCKER
    assert "compose file not found" in one_error_line(done)
