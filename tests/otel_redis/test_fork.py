"""Forks taken while the parent's exporter thread is busy writing (as prefork servers do): every
child finishes its own records and exits, and every record is stored exactly once; on a standalone
Redis and on a 3-master Redis Cluster (where a child also forks the parent's per-node connections
and the cluster client's slot map)."""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
import time

from pathlib import Path

import pytest

import otel_redis
from otel_redis import schema
from otel_redis.config import Settings, load_settings
from otel_redis.connection import is_cluster_client, make_client
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


@pytest.fixture
def settings(any_redis_url: str, tmp_path: Path) -> Settings:
    """The ``pipeline`` fixture's settings on the standalone Redis, then on the 3-master cluster."""
    return load_settings({}).with_overrides(redis_url=any_redis_url, data_dir=tmp_path / "data")


def _log_bodies(settings: Settings) -> list[str]:
    """The body of every log record in ``idx:log:all`` (every part of it on a Cluster)."""
    client = make_client(settings)
    try:
        shards = settings.shards if is_cluster_client(client) else 1
        keys = [k for part in schema.sharded(schema.IDX_LOG_ALL, shards) for k in client.zrange(part, 0, -1)]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "body")
        bodies = pipe.execute()
    finally:
        client.close()
    return [b.decode() if isinstance(b, bytes) else b for b in bodies if b]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_two_hundred_forks_while_the_exporter_writes(pipeline, settings, counters):
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
    bodies = _log_bodies(settings)
    children = [b for b in bodies if b.startswith("child ")]
    assert len(children) == len(set(children)) == FORKS * PER_CHILD
    parents = [b for b in bodies if b.startswith("parent ")]
    assert len(parents) == len(set(parents))
    # the parent's own records: each stored or counted
    snap = counters.snapshot()
    assert snap["emitted"] == parent_logged[0]
    assert snap["exported"] + snap["dropped"] == parent_logged[0]
    assert len(parents) == snap["exported"]
