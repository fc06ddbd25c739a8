"""Distinct timestamps without sleeping: log calls made inside :func:`distinct_milliseconds` are
stamped at least 1 ms apart, strictly increasing, so the newest-first order of their records is fully
defined (records of one millisecond are ordered by their sequence within it, see the README)."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

import pytest

from otel_redis import api

MS = 1_000_000


@contextlib.contextmanager
def distinct_milliseconds() -> Iterator[None]:
    """Stamp each log call with the current time, or 1 ms after the previous call when that is later
    (so a burst of N calls runs at most N ms ahead of the clock)."""
    last = [0]

    def clock() -> int:
        last[0] = max(time.time_ns(), last[0] + MS)
        return last[0]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api, "time_ns", clock)
        yield
