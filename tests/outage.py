"""Records logged through the real pipeline while a server is stopped or killed, and the checks
that every record then counts exactly (the idempotent-retry tests, standalone and on a Cluster)."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from otel_redis import stats
from otel_redis.pipeline import Pipeline


def _log_while(stop: threading.Event, sent: list[int], log_one: Callable[[int], None]) -> None:
    n = 0
    while not stop.is_set():
        log_one(n)
        n += 1
        if n % 200 == 0:
            time.sleep(0.01)
    sent.append(n)


def log_through(pipe: Pipeline, log_one: Callable[[int], None], outage: Callable[[], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Log records (``log_one(n)``) in a thread, with ``outage()`` run a second in; flush. Returns
    the counters' change over the run (the process's counters may hold earlier tests' figures),
    with ``sent``, the records logged, and the counters themselves."""
    base = stats()
    stop = threading.Event()
    sent: list[int] = []
    worker = threading.Thread(target=_log_while, args=(stop, sent, log_one))
    worker.start()
    try:
        time.sleep(1.0)
        outage()
        time.sleep(1.0)
    finally:
        stop.set()
        worker.join()
    assert pipe.force_flush(120_000)
    now = stats()
    counts = {name: now[name] - base[name] for name in ("emitted", "exported", "dropped", "dropped_queue_full")}
    counts["sent"] = sent[0]
    return counts, now


def assert_every_record_counted(counts: dict[str, Any], now: dict[str, Any], stored: int) -> None:
    """Every record logged is exported or counted, and ``stored`` (distinct stream entries) is
    exactly what was exported. The client's retries outlast the outage: no batch given up; what the
    full queue refused while Redis was stopped is the designed back-pressure, under its own name."""
    assert counts["emitted"] == counts["sent"]
    assert counts["emitted"] == counts["exported"] + counts["dropped"], counts
    assert counts["exported"] == stored  # each record confirmed is in the stream once
    assert counts["dropped"] - counts["dropped_queue_full"] == 0, now
