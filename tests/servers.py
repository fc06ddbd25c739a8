"""Start real services for end-to-end tests: a subprocess on a free port, waited for over HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import httpx

from otel_redis.embedded import free_port
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


class Service:
    def __init__(self, proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
        self.proc = proc
        self.base_url = base_url
        self.log_path = log_path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


class PortTaken(AssertionError):
    """The service could not bind its port: another process took it after it was chosen."""


def _port_taken(output: str) -> bool:
    return "address already in use" in output.lower()


def wait_http(url: str, timeout: float = 30, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    def output() -> str:
        return log.read_text(errors="replace") if log else ""

    def answers() -> bool:
        if proc is not None and log is not None and _port_taken(output()):
            raise PortTaken(f"{url}: the port was taken by another process:\n{output()}")
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode} before answering {url}:\n{output()}")
        httpx.get(url, timeout=1.0)
        return True

    wait_until(answers, timeout=timeout, message=lambda: f"{url} to answer:\n{output()}", ignore=(httpx.HTTPError,))


@contextlib.contextmanager
def run_service(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    port: int | None = None,
    tmp_path: Path,
    health_path: str = "/healthz",
    name: str = "service",
    attempts: int = 5,
) -> Iterator[Service]:
    """Run ``argv`` (``{port}`` is substituted) with ``env`` added to the environment.

    Without ``port`` a free one is chosen, and chosen again when another process takes it before
    the service binds it (on a busy machine the ephemeral range is shared with every connection).
    """
    for attempt in range(attempts if port is None else 1):
        service = _start(argv, env, port or free_port(), tmp_path, name)
        try:
            wait_http(service.base_url + health_path, proc=service.proc, log=service.log_path)
            break
        except PortTaken:
            service.stop()
            if attempt == attempts - 1 or port is not None:
                raise
        except BaseException:
            service.stop()
            raise
    try:
        yield service
    finally:
        service.stop()


def _start(argv: Sequence[str], env: Mapping[str, str], port: int, tmp_path: Path, name: str) -> Service:
    log_path = tmp_path / f"{name}-{port}.log"
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    args = [a.replace("{port}", str(port)) for a in argv]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return Service(proc, f"http://127.0.0.1:{port}", log_path)


def uvicorn_argv(app: str = "query_api.app:app", factory: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"]
    if factory:
        argv.insert(4, "--factory")
    return argv


__all__ = ["PortTaken", "Service", "free_port", "run_service", "uvicorn_argv", "wait_http"]
