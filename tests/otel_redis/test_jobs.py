"""jobs.py: periodic jobs run on demand with run_once() (no waiting for a schedule), one instance
per interval through the lock key on the test's Redis, and a failing run is counted, never raised."""

from __future__ import annotations

import threading

import redis

from otel_redis import schema
from otel_redis.jobs import PeriodicJob
from tests.waiting import wait_until


def test_run_once_runs_the_job_and_keeps_its_result():
    calls: list[int] = []
    job = PeriodicJob("count", 60, lambda: calls.append(1) or len(calls))
    assert job.run_once() == 1 and job.run_once() == 2  # no client: no lock, every call runs
    assert job.status() == {"interval_s": 60, "runs": 2, "skipped": 0, "failures": 0, "last_error": ""}


def test_one_instance_per_interval_runs_a_job_on_a_shared_redis(r: redis.Redis):
    ran: list[str] = []
    first = PeriodicJob("cleanup", 60, lambda: ran.append("first"), r)
    second = PeriodicJob("cleanup", 60, lambda: ran.append("second"), r)
    first.run_once()
    assert second.run_once() is None and ran == ["first"] and second.skipped == 1
    ttl_ms = r.pttl(schema.job_lock("cleanup"))
    assert 0 < ttl_ms <= 60_000 * 0.9  # left to expire (shorter than the interval): a dead holder frees it
    r.delete(schema.job_lock("cleanup"))  # the interval is over
    second.run_once()
    assert ran == ["first", "second"]
    other = PeriodicJob("alerts", 60, lambda: ran.append("alerts"), r)
    other.run_once()  # another job's lock is its own
    assert ran[-1] == "alerts"


def test_a_failing_run_is_counted_and_the_next_one_still_runs():
    outcomes = iter([ValueError("bad data"), "ok"])

    def fn() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    job = PeriodicJob("flaky", 60, fn)
    assert job.run_once() is None
    assert job.failures == 1 and job.last_error == "ValueError: bad data"
    assert job.run_once() == "ok" and job.runs == 1


def test_the_thread_runs_after_its_first_delay_and_stops_at_once_between_runs():
    ran = threading.Event()
    job = PeriodicJob("tick", 3600, ran.set, first_delay_s=0.0).start()
    try:
        wait_until(ran.is_set, message="the first run")
    finally:
        job.stop(timeout=30)  # waiting out the hour-long interval would hang here
    assert job.runs == 1
    assert not any(t.name == "otel-redis-tick" for t in threading.enumerate())


def test_a_job_stopped_during_its_first_delay_never_runs():
    ran = threading.Event()
    job = PeriodicJob("late", 60, ran.set, first_delay_s=3600).start()
    job.stop(timeout=30)
    assert not ran.is_set() and job.runs == 0
