"""Forks taken while the parent's exporter thread is busy writing (as prefork servers do): every
child finishes its own records and exits, and every record is stored exactly once."""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
import time

import pytest

import otel_redis
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

FORKS = 200
PER_CHILD = 5


def _child(i: int) -> None:  # pragma: no cover - runs in the forked child
    code = 1
    faulthandler.dump_traceback_later(8, exit=True)  # a hung child says where it hangs, then exits
    try:
        for j in range(PER_CHILD):
            otel_redis.log_info(f"child {i} {j}")
        code = 0 if otel_redis.force_flush(10_000) else 2
    finally:
        os._exit(code)


def _wait(pid: int, deadline_s: float) -> int | None:
    """The child's exit code, or None (and the child killed) if it did not exit in time."""
    def exited() -> tuple[int, int] | None:
        done, status = os.waitpid(pid, os.WNOHANG)
        return (done, status) if done else None

    try:
        return os.waitstatus_to_exitcode(wait_until(exited, timeout=deadline_s, interval=0.005)[1])
    except AssertionError:
        pass
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_two_hundred_forks_while_the_exporter_writes(pipeline, r, counters):
    stop = threading.Event()
    parent_logged = [0]

    def busy() -> None:
        while not stop.is_set():
            otel_redis.log_info(f"parent {parent_logged[0]}")
            parent_logged[0] += 1
            if parent_logged[0] % 20 == 0:
                time.sleep(0.001)  # busy, but not a flood that only fills the queue

    writer = threading.Thread(target=busy, daemon=True)
    writer.start()
    codes = []
    try:
        for i in range(FORKS):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                _child(i)
            codes.append(_wait(pid, 15))
    finally:
        stop.set()
        writer.join(10)
    assert otel_redis.force_flush(30_000)
    assert codes == [0] * FORKS  # every child flushed and exited (None: hung and killed)
    bodies = [b for b in (r.hget(k, "body") for k in r.zrange("idx:log:all", 0, -1)) if b]
    children = [b for b in bodies if b.startswith("child ")]
    assert len(children) == len(set(children)) == FORKS * PER_CHILD
    parents = [b for b in bodies if b.startswith("parent ")]
    assert len(parents) == len(set(parents))
    # the parent's own records: each stored or counted
    snap = counters.snapshot()
    assert snap["emitted"] == parent_logged[0]
    assert snap["exported"] + snap["dropped"] == parent_logged[0]
    assert len(parents) == snap["exported"]
