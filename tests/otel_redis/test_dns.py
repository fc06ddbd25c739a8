"""dns.py: reverse lookups off the request path, with a bounded TTL cache and bounded waiting.

The resolver function is the module's own seam (``ReverseResolver(resolve=...)``): a test passes one
it controls, so a "stuck resolver" is a real blocked thread, not a sleep.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest

from otel_redis.dns import MAX_HOSTNAME, ReverseResolver
from tests.waiting import wait_until


class Gate:
    """A resolver that answers from a table, each call held until the test opens the gate."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.open = threading.Event()
        self.calls: list[str] = []

    def __call__(self, ip: str) -> str:
        self.calls.append(ip)
        self.open.wait(60)
        if ip not in self.names:
            raise OSError("no PTR record")
        return self.names[ip]


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate({"192.0.2.1": "Client-1.Example.TEST.", "192.0.2.2": "two.test", "192.0.2.3": "three.test",
              "192.0.2.9": "x" * 400})
    yield g
    g.open.set()  # no worker thread stays blocked after the test


def resolved(resolver: ReverseResolver, ip: str) -> str:
    return wait_until(lambda: resolver.cached(ip) is not None and (resolver.cached(ip),), message=f"{ip} resolved")[0]


def test_lookup_returns_at_once_while_the_resolver_is_stuck(gate):
    resolver = ReverseResolver(gate)
    assert resolver.lookup("192.0.2.1") is None  # the resolver has not answered: no waiting for it
    wait_until(lambda: gate.calls == ["192.0.2.1"], message="the background lookup")
    assert resolver.lookup("192.0.2.1") is None  # still pending: not queued twice
    assert resolver.stats()["pending"] == 1
    gate.open.set()
    assert resolved(resolver, "192.0.2.1") == "client-1.example.test"  # lower case, no trailing dot
    assert resolver.lookup("192.0.2.1") == "client-1.example.test"  # from the cache now
    assert gate.calls == ["192.0.2.1"]


def test_a_failed_lookup_is_cached_as_empty_and_counted(gate):
    gate.open.set()
    resolver = ReverseResolver(gate)
    resolver.lookup("198.51.100.7")
    assert resolved(resolver, "198.51.100.7") == ""
    assert resolver.stats()["failed"] == 1 and resolver.stats()["resolved"] == 0
    assert resolver.lookup("") == ""  # no address, nothing to look up


def test_long_names_are_cut_to_the_dns_limit(gate):
    gate.open.set()
    resolver = ReverseResolver(gate)
    resolver.lookup("192.0.2.9")
    assert len(resolved(resolver, "192.0.2.9")) == MAX_HOSTNAME


def test_the_cache_keeps_the_most_recent_names_only(gate):
    gate.open.set()
    resolver = ReverseResolver(gate, cache_size=2)
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        resolver.lookup(ip)
        resolved(resolver, ip)
    assert resolver.stats()["cached"] == 2
    assert resolver.cached("192.0.2.1") is None and resolver.cached("192.0.2.3") == "three.test"


def test_an_expired_entry_is_looked_up_again(gate):
    gate.open.set()
    resolver = ReverseResolver(gate, ttl_s=-1.0)  # every answer is already past its time to live
    resolver.lookup("192.0.2.2")
    wait_until(lambda: resolver.stats()["resolved"] == 1, message="the first answer")
    assert resolver.cached("192.0.2.2") is None
    resolver.lookup("192.0.2.2")
    wait_until(lambda: gate.calls.count("192.0.2.2") == 2, message="a second lookup")


def test_lookups_past_the_queue_bound_are_skipped_and_counted(gate):
    resolver = ReverseResolver(gate, workers=1, max_pending=1)
    resolver.lookup("192.0.2.1")
    wait_until(lambda: gate.calls, message="the worker busy with the first address")
    assert resolver.lookup("192.0.2.2") is None
    assert resolver.stats()["skipped"] == 1 and resolver.stats()["pending"] == 1


def test_an_answer_after_the_deadline_counts_as_timed_out(gate):
    gate.open.set()
    resolver = ReverseResolver(gate, timeout_s=-1.0)  # the deadline has passed before the worker starts
    resolver.lookup("192.0.2.1")
    wait_until(lambda: resolver.stats()["timed_out"] == 1, message="the lookup given up")
    assert resolver.cached("192.0.2.1") == ""  # a negative entry, so the address is not retried at once


def test_waiters_of_one_address_get_the_late_answer_together(gate):
    resolver = ReverseResolver(gate)
    calls: list[tuple[str, list[Any]]] = []

    def patch(name: str, items: list[Any]) -> None:
        calls.append((name, items))

    resolver.lookup("192.0.2.2")
    resolver.when_resolved("192.0.2.2", patch, "record-1")
    resolver.when_resolved("192.0.2.2", patch, "record-2")
    assert calls == []
    gate.open.set()
    wait_until(lambda: calls, message="the waiters called")
    assert calls == [("two.test", ["record-1", "record-2"])] and resolver.stats()["patched"] == 2
    resolver.when_resolved("192.0.2.2", patch, "record-3")  # cached: called at once
    assert calls[-1] == ("two.test", ["record-3"])


def test_a_failing_waiter_does_not_stop_the_others(gate):
    gate.open.set()
    resolver = ReverseResolver(gate)
    got: list[Any] = []

    def broken(name: str, items: list[Any]) -> None:
        raise RuntimeError("patch failed")

    resolver.lookup("192.0.2.3")
    resolver.when_resolved("192.0.2.3", broken, 1)
    resolver.when_resolved("192.0.2.3", lambda name, items: got.extend(items), 2)
    wait_until(lambda: got, message="the second waiter")
    assert got == [2] and resolver.stats()["patched"] == 1
