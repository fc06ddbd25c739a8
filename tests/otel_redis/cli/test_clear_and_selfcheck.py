"""``just logs-clear`` in a real terminal (the question, the answer, the admin token) and ``just
logs-test`` when the records do not come back (a Redis that refuses writes but still answers reads)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis

from otel_redis.levels import INFO

from .conftest import ADMIN_TOKEN, JUST, READ_TOKEN, Stack, Terminal, module_stack, one_error_line, run_just

pytestmark = pytest.mark.xdist_group("cli-clear")


# the service gives up on a failing write at once, so the self-check failure below is quick
stack = module_stack("cli-clear", {"OTEL_REDIS_RETRY_ATTEMPTS": "0"})


@pytest.fixture
def r(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis.url, decode_responses=True)
    yield client
    client.close()


def _write(stack: Stack) -> None:
    stack.log(time.time_ns(), INFO, "to be cleared", component="clear-test")
    stack.flush()


def _clear_in_terminal(stack: Stack, data_dir: Path, token: str, answer: bytes) -> tuple[int, str]:
    term = Terminal([str(JUST), "logs-clear", token], stack.env(data_dir, token=None))
    try:
        term.wait_for(lambda t: "[y/N]" in t, "the confirmation question")
        term.send(answer)
        return term.wait_exit(), term.text
    finally:
        term.close()


def test_clear_asks_and_no_keeps_everything(stack, r, data_dir):
    _write(stack)
    code, out = _clear_in_terminal(stack, data_dir, ADMIN_TOKEN, b"n\r")
    assert code == 1
    assert "cancelled, nothing was deleted" in out
    assert r.zcard("idx:log:all") >= 1


def test_clear_with_a_read_token_is_forbidden(stack, r, data_dir):
    _write(stack)
    code, out = _clear_in_terminal(stack, data_dir, READ_TOKEN, b"y\r")
    assert code == 4
    assert "forbidden (403)" in out and "Traceback" not in out
    assert r.zcard("idx:log:all") >= 1


def test_clear_yes_removes_log_data_and_nothing_else(stack, r, data_dir):
    _write(stack)
    r.set("not-ours", "kept")
    code, out = _clear_in_terminal(stack, data_dir, ADMIN_TOKEN, b"y\r")
    assert code == 0, out
    assert "removed: " in out and "by_pattern:" in out
    assert r.zcard("idx:log:all") == 0 and r.get("not-ours") == "kept"


def test_clear_without_a_terminal_needs_yes(stack, r, data_dir):
    _write(stack)
    done = run_just("logs-clear", ADMIN_TOKEN, env=stack.env(data_dir))
    assert done.returncode == 2
    assert "refusing to clear without confirmation" in one_error_line(done)
    assert r.zcard("idx:log:all") >= 1
    cli = str(Path(sys.executable).parent / "otel-redis")
    done = subprocess.run([cli, "logs", "clear", "--yes"], env=stack.env(data_dir, OTEL_REDIS_ADMIN_TOKEN=ADMIN_TOKEN),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert r.zcard("idx:log:all") == 0


def test_a_limit_above_the_api_page_size_is_fetched_page_by_page(stack, r, data_dir):
    r.flushall()
    start = time.time_ns() - 3_000 * 1_000_000
    for i in range(1205):
        stack.log(start + i * 1_000_000, INFO, f"record-{i:04d}", component="paging")
    stack.flush()
    lines = run_just("logs", "1", "", "", "", "1203", env=stack.env(data_dir)).stdout.splitlines()
    assert [line.split()[-1] for line in lines] == [f"record-{i:04d}" for i in range(2, 1205)]


def test_logs_test_fails_when_the_records_do_not_come_back(stack, r, data_dir):
    assert run_just("logs-test", env=stack.env(data_dir)).returncode == 0
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", "1")  # every write is refused (OOM); reads still work
    try:
        done = run_just("logs-test", env=stack.env(data_dir))
    finally:
        r.config_set("maxmemory", "0")
    assert done.returncode == 1
    assert one_error_line(done) == "otel-redis: self-check failed: the test records did not come back"
    assert "ok: no" in done.stdout and "found: 0" in done.stdout
