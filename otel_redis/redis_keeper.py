"""Keeps the shared embedded Redis of a data folder up until the last process using it is gone.

Run as a script (``python redis_keeper.py DATA_DIR URL -- redis-server ARGS...``), detached from
the process that started it, so it imports nothing from the package. Every process using the folder
holds a shared flock on ``redis.users``; this keeper waits for an exclusive one, which the kernel
grants only when no user holds its lease any more (a killed user's lock is released with it). It
then shuts the server down (SIGTERM: the append-only file is flushed) and exits. The server is its
child and is asked to die with it, so killing the keeper does not leave the server behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.2


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, not on every platform
        pass


def ping(url: str) -> bool:
    """True when the Redis at ``url`` (unix:// or redis://127.0.0.1:PORT) answers PING."""
    try:
        if url.startswith("unix://"):
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(0.5)
            conn.connect(url[len("unix://") :])
        else:
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            conn = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        with conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _try_lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _stop(proc: "subprocess.Popen[bytes]") -> None:
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def main(argv: list[str]) -> int:
    data_dir, url = Path(argv[0]), argv[1]
    server_args = argv[argv.index("--") + 1 :]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the last user's exit (or SIGTERM) ends us
    users_fd = os.open(data_dir / "redis.users", os.O_RDWR | os.O_CREAT, 0o600)
    mutex_fd = os.open(data_dir / "redis.lock", os.O_RDWR | os.O_CREAT, 0o600)
    addr_file = data_dir / "redis.addr"
    proc = subprocess.Popen(
        server_args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_set_pdeathsig if sys.platform.startswith("linux") else None,
    )
    signal.signal(signal.SIGTERM, lambda *_: (_stop(proc), sys.exit(0)))
    deadline = time.monotonic() + float(os.environ.get("OTEL_REDIS_KEEPER_START_TIMEOUT", "15"))
    while not ping(url):
        if time.monotonic() > deadline:
            _stop(proc)
            print("redis-server did not answer in time", file=sys.stderr)
            return 1
        if proc.poll() is not None:
            err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")
            print(f"redis-server exited at start: {err}", file=sys.stderr)
            return 1
        time.sleep(0.02)
    tmp = addr_file.with_suffix(".tmp")
    tmp.write_text(url)
    tmp.replace(addr_file)
    print(proc.pid, flush=True)  # the starter reads the server's pid from here
    while True:
        if proc.poll() is not None:  # the server died on its own: nothing left to keep
            break
        if _try_lock(users_fd, fcntl.LOCK_EX):
            if _try_lock(mutex_fd, fcntl.LOCK_EX):  # no user is joining right now
                break
            fcntl.flock(users_fd, fcntl.LOCK_UN)  # a user is joining: let it take its lease
        time.sleep(POLL_S)
    with contextlib.suppress(FileNotFoundError):
        addr_file.unlink()  # first: a leaving user sees the shutdown has begun
    _stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
