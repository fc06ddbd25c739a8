"""One polling helper for the whole suite: wait until something that happens asynchronously is true.

The timeout is a hang guard, not a timing threshold: it is generous on purpose (a shared, loaded
machine may be slow), and a test never asserts how fast something happened. Speed is measured in
benchmarks/ only.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")

HANG_GUARD_S = 60.0


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = HANG_GUARD_S,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    ``message`` (a string, or a callable for output read only on failure, such as a service's log)
    says what never happened. Exceptions of the ``ignore`` types count as "not yet".
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except ignore:
            value = None  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g}s waiting for {text}")
        time.sleep(interval)


__all__ = ["HANG_GUARD_S", "wait_until"]
