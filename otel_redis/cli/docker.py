"""Container logs of the shipped compose project (``docker compose logs``), for ``logs docker`` and ``logs service``.

The compose file is the repository's ``docker-compose.yml`` (``OTEL_REDIS_COMPOSE_FILE`` overrides).
Where Docker cannot be used (no ``docker`` binary, no compose plugin, no reachable engine) the
command says so in one line and exits with :data:`EXIT_NO_DOCKER`, before running anything else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from . import CliError
from .api_client import one_line

EXIT_NO_DOCKER = 69  # EX_UNAVAILABLE (sysexits.h)
PROBE_TIMEOUT_S = 20.0
#: services of docker-compose.yml
SERVICES = ("redis", "otel-redis", "demo")


def compose_file() -> Path:
    explicit = os.environ.get("OTEL_REDIS_COMPOSE_FILE")
    if explicit:
        return Path(explicit)
    return Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _probe(argv: Sequence[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CliError(f"{what}: `{' '.join(argv)}` did not answer within {PROBE_TIMEOUT_S:g}s", EXIT_NO_DOCKER) from None
    except OSError as exc:
        raise CliError(f"{what}: {exc.strerror or exc}", EXIT_NO_DOCKER) from None
    if done.returncode != 0:
        first = next((line for line in (done.stderr or done.stdout).splitlines() if line.strip()), "")
        raise CliError(f"{what}: {one_line(first, 200) or f'exit code {done.returncode}'}", EXIT_NO_DOCKER)


def compose_command() -> list[str]:
    """``docker compose`` (or the standalone ``docker-compose``), once it and the engine are known to work."""
    docker = shutil.which("docker")
    standalone = shutil.which("docker-compose")
    if docker is None and standalone is None:
        raise CliError("Docker is not available: no `docker` command on PATH", EXIT_NO_DOCKER)
    if docker is not None:
        try:
            _probe([docker, "compose", "version"], "Docker Compose is not available")
            command = [docker, "compose"]
        except CliError:
            if standalone is None:
                raise
            command = [standalone]
        _probe([docker, "info", "--format", "{{.ServerVersion}}"], "the Docker engine is not reachable")
    else:
        command = [str(standalone)]
    return command


def compose_logs(services: Sequence[str], lines: int, follow: bool) -> int:
    """Run ``docker compose logs`` for the shipped compose file; its exit code."""
    path = compose_file()
    if not path.is_file():
        raise CliError(f"compose file not found: {path}", EXIT_NO_DOCKER)
    argv = [*compose_command(), "-f", str(path), "logs", "--tail", str(lines)]
    if len(services) == 1:
        argv.append("--no-log-prefix")
    if follow:
        argv.append("--follow")
    argv += list(services)
    try:
        return subprocess.call(argv)
    except KeyboardInterrupt:
        return 130


__all__ = ["EXIT_NO_DOCKER", "SERVICES", "compose_file", "compose_command", "compose_logs"]
