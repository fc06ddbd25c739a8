"""A round trip resent after lost replies applies its stream entries and counters once.

Redis is stopped (SIGSTOP) or killed and restarted while records are logged through the real
pipeline: the copies of a batch the client sent before giving up on a connection still reach Redis
(a stopped server reads them when it resumes), and so do the resends. Afterwards every stream entry
is a distinct record, the hourly totals equal the records stored, and the counters add up.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis

from otel_redis import configure, log_info, schema
from otel_redis import pipeline as pipeline_mod
from otel_redis.config import load_settings
from otel_redis.embedded import EmbeddedRedis
from tests.outage import assert_every_record_counted, log_through

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_redis(tmp_path: Path):
    """A Redis of its own on a TCP port (restartable on the same port and folder), AOF on."""
    server = EmbeddedRedis(tmp_path / "redis", persist=True, use_unix_socket=False,
                           extra_args=("--appendfsync", "always"))
    server.start()
    yield server
    server.stop()


def _run(own_redis: EmbeddedRedis, tmp_path: Path, outage) -> None:
    settings = load_settings({}).with_overrides(
        redis_url=own_redis.url, data_dir=tmp_path / "data", socket_timeout_s=0.5,
        retry_attempts=200, retry_backoff_cap_s=0.2, capture_stdlib=False,
    )
    pipe = configure(settings=settings)
    counts, now = log_through(pipe, lambda n: log_info(f"record {n}"), outage)
    pipeline_mod.shutdown()
    client = redis.Redis.from_url(own_redis.url)
    entries = client.xrange(schema.STREAM_LOGS)
    keys = [fields[b"k"] for _id, fields in entries]
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} duplicate stream entries"
    totals = sum(int(client.hget(k, "total") or 0) for k in client.scan_iter(match="stats:logs:*")
                 if client.type(k) == b"hash")
    assert totals == len(keys)
    assert_every_record_counted(counts, now, len(keys))


def test_stopped_redis_resends_apply_once(own_redis, tmp_path):
    pid = own_redis.process.pid

    def outage() -> None:
        os.kill(pid, signal.SIGSTOP)
        time.sleep(10)
        os.kill(pid, signal.SIGCONT)

    _run(own_redis, tmp_path, outage)


def test_killed_and_restarted_redis_resends_apply_once(own_redis, tmp_path):
    def outage() -> None:
        own_redis.process.send_signal(signal.SIGKILL)
        own_redis.process.wait()
        own_redis.stop()  # releases the folder (the process is gone already)
        time.sleep(2)
        own_redis.start()  # same port, same folder: the AOF is read back

    _run(own_redis, tmp_path, outage)


def _requests_and_logs(now_ms: int, n: int):
    from otel_redis.record import LogEntry

    return [LogEntry(timestamp_ns=(now_ms + i) * 1_000_000, level="ERROR" if i % 4 == 0 else "INFO",
                     severity_number=17 if i % 4 == 0 else 9, body=f"r {i}", component="worker",
                     event="signup" if i % 3 == 0 else None) for i in range(n)]


def test_the_same_round_trip_sent_again_is_a_replay_that_applies_nothing(settings, r):
    """The bytes of a batch, sent again on another connection after the first copy ran (what the
    client's retry sends after lost replies): the second copy finds the batch's marker."""
    from otel_redis import guard, resp
    from otel_redis.store import RedisStore

    store = RedisStore(redis.Redis.from_url(settings.redis_url), settings)
    entries = _requests_and_logs(int(time.time() * 1000), 300)
    pending = store.begin(entries)
    first = pending.complete()
    assert first.exported == 300 and not first.replayed
    before = {k: r.hgetall(k) for k in r.scan_iter(match="stats:*") if r.type(k) == "hash"}
    assert sum(int(v.get("total", 0)) for k, v in before.items() if k.startswith("stats:logs:")) == 300

    again = resp.EarlySend(store.client, packed=True)
    again.args.extend(pending.send.args)  # every command of the batch, the guarded call last
    replies = again.finish()
    ops, replayed = guard.expand(replies[-1], pending.guarded.count)
    assert replayed and len(ops) == pending.guarded.count
    assert r.xlen(schema.STREAM_LOGS) == 300
    after = {k: r.hgetall(k) for k in r.scan_iter(match="stats:*") if r.type(k) == "hash"}
    assert after == before  # no counter moved
    markers = list(r.scan_iter(match=schema.BATCH_MARKER_PREFIX + "*"))
    assert len(markers) == 1 and 0 < r.ttl(markers[0]) <= store._marker_ttl()


def test_an_op_refused_inside_the_guarded_call_is_an_index_error_and_the_rest_applies(settings, r):
    from otel_redis.store import RedisStore

    now_ms = int(time.time() * 1000) // schema.HOUR_MS * schema.HOUR_MS + 1000  # one hour for all 50
    r.set(schema.stats_logs(schema.hour_bucket(now_ms)), "not a hash")  # its HINCRBYs fail: WRONGTYPE
    store = RedisStore(redis.Redis.from_url(settings.redis_url), settings)
    result = store.write_batch(_requests_and_logs(now_ms, 50))
    assert result.exported == 50 and not result.failed
    assert result.index_errors > 0 and "wrongtype" in result.error_texts
    assert result.resent > 0  # sent once more, under a new marker
    assert r.xlen(schema.STREAM_LOGS) == 50  # the stream entries of the same call were applied once
    assert int(r.hget(schema.stats_events(schema.hour_bucket(now_ms)), "signup")) == 17
