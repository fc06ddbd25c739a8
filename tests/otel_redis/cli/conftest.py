"""Run the real ``just`` (from the rust-just package in the venv) and the real CLI as subprocesses."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pytest

import otel_redis
from otel_redis import api, pipeline
from otel_redis.config import load_settings
from otel_redis.embedded import EmbeddedRedis, free_port
from otel_redis.exporter import RedisLogRecordExporter
from tests.servers import Service, run_service

ROOT = Path(__file__).resolve().parents[3]
JUST = Path(sys.executable).parent / "just"
#: variables of the developer's shell that would change what the CLI prints or where it connects
SCRUBBED = ("NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "OTEL_REDIS_API_URL", "OTEL_REDIS_API_TOKEN",
          "OTEL_REDIS_ADMIN_TOKEN", "OTEL_REDIS_API_TOKENS", "OTEL_REDIS_CLI_VERBOSE", "OTEL_REDIS_DATA_DIR",
          "OTEL_REDIS_COMPOSE_FILE", "REDIS_URL")


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: nothing inherited that matters, a data folder of the test's own."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["OTEL_REDIS_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def run_just(*args: str, env: Mapping[str, str], timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JUST), *args], cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=timeout,
        input=stdin if stdin is not None else "", check=False,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed run (asserting there is exactly one and no traceback)."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "cli-data"
    path.mkdir()
    return path


# ----------------------------------------------------------------------------- the real service

READ_TOKEN = "cli-read-token"
ADMIN_TOKEN = "cli-admin-token"


class Stack:
    """One redis-server, ``otel-redis serve`` on it, and the real pipeline of this process writing to it."""

    def __init__(self, tmp: Path, service_env: Mapping[str, str] | None = None) -> None:
        self.tmp = tmp
        self.service_env = dict(service_env or {})
        self.redis = EmbeddedRedis(tmp / "redis", persist=False)
        self.redis.start()
        self.settings = load_settings({}).with_overrides(redis_url=self.redis.url, data_dir=tmp / "writer", log_level="TRACE")
        self.port = free_port()
        self.service: Service | None = None
        self._service_cm: Any = None
        self.writer: pipeline.Pipeline | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_service(self) -> None:
        env = {
            "REDIS_URL": self.redis.url,
            "OTEL_REDIS_DATA_DIR": str(self.tmp / "service-data"),
            "OTEL_REDIS_API_TOKENS": READ_TOKEN,
            "OTEL_REDIS_ADMIN_TOKEN": ADMIN_TOKEN,
            **self.service_env,
        }
        argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
        self._service_cm = run_service(argv, env=env, port=self.port, tmp_path=self.tmp, name="cli-service")
        self.service = self._service_cm.__enter__()

    def stop_service(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop the service; its exit code (negative: killed by that signal)."""
        code = None
        if self._service_cm is not None:
            assert self.service is not None
            code = self.service.stop(sig)
            self._service_cm.__exit__(None, None, None)
            self._service_cm = self.service = None
        return code

    def env(self, data_dir: Path, token: str | None = READ_TOKEN, **extra: str) -> dict[str, str]:
        values = {"OTEL_REDIS_API_URL": self.base_url, **({"OTEL_REDIS_API_TOKEN": token} if token else {}), **extra}
        return cli_env(data_dir, **values)

    # the real pipeline of this process, pointed at this Redis (re-made if another test replaced it)
    def ensure_writer(self) -> pipeline.Pipeline:
        if self.writer is None or pipeline.current() is not self.writer:
            api.pending().records.clear()
            exporter = RedisLogRecordExporter(settings=self.settings)
            self.writer = otel_redis.configure(settings=self.settings, exporter=exporter, set_global_provider=False,
                                               level="TRACE")
        return self.writer

    def log(self, ts_ns: int, levelno: int, body: str, event: str | None = None, trace_id: str | None = None,
            **attributes: Any) -> None:
        """An application log record with a chosen time, through the real pipeline."""
        self.ensure_writer().emit(ts_ns, levelno, body, attributes, event, trace_id, None)

    def flush(self) -> None:
        assert otel_redis.force_flush(30_000)

    def close(self) -> None:
        self.stop_service()
        if self.writer is not None and pipeline.current() is self.writer:
            otel_redis.shutdown()
            api.pending().records.clear()
        self.redis.stop()


def module_stack(name: str, service_env: Mapping[str, str] | None = None) -> Any:
    """A module-scoped ``stack`` fixture: its own Redis and service (``service_env`` added to its environment)."""

    @pytest.fixture(scope="module")
    def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
        s = Stack(tmp_path_factory.mktemp(name), service_env)
        try:
            s.start_service()
            yield s
        finally:
            s.close()

    return stack


stack = module_stack("cli-stack")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


# ----------------------------------------------------------------------------- a real terminal

#: a deadline for things that happen within milliseconds; only reached when something is broken
DEADLINE_S = 60.0


class Terminal:
    """A command running in a pseudo-terminal, its output collected as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.chdir(ROOT)
            os.execve(argv[0], argv, env)
        self.raw = b""
        self.status: int | None = None

    @property
    def text(self) -> str:
        return strip_ansi(self.raw.decode("utf-8", "replace")).replace("\r\n", "\n")

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            self.raw += chunk
            if not chunk:
                self._reap(block=True)

    def _reap(self, block: bool) -> None:
        if self.status is None:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            if pid:
                self.status = status

    def wait_for(self, predicate: Callable[[str], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not predicate(self.text):
            if self.status is not None or time.monotonic() > deadline:
                raise AssertionError(f"never saw {what}; output so far:\n{self.text}")
            self._read(0.2)
            self._reap(block=False)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait_exit(self) -> int:
        deadline = time.monotonic() + DEADLINE_S
        while self.status is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"did not exit; output:\n{self.text}")
            self._read(0.2)
            self._reap(block=False)
        while True:  # drain what is left
            ready, _, _ = select.select([self.fd], [], [], 0)
            if not ready:
                break
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.raw += chunk
        return os.waitstatus_to_exitcode(self.status)

    def close(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            self._reap(block=True)
        os.close(self.fd)
