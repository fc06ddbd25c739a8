"""Reverse DNS for ``client_hostname``, never on the request path.

:meth:`ReverseResolver.lookup` answers from a bounded TTL cache or queues the address for a small
pool of background threads and returns at once. A lookup that has not finished within the timeout
counts as failed (cached negatively for a short while); a failure leaves the hostname empty. Blocking
resolver calls cannot be cancelled, so a stuck one keeps its thread: the pool and the queue are
bounded, and lookups that do not fit are skipped and counted.

How records learn their hostname without a second write path: the exporter worker asks the cache
just before writing (most lookups finish within the batch window); for the rest it registers a
waiter with :meth:`ReverseResolver.when_resolved`, and a late answer patches the stored records
through :meth:`otel_redis.store.RedisStore.patch_hostname`.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

Resolve = Callable[[str], str]
Waiter = Callable[[str, list[Any]], None]

MAX_HOSTNAME = 253


def socket_resolve(ip: str) -> str:
    """The system resolver (``/etc/hosts``, then DNS): the PTR name of ``ip``."""
    return socket.gethostbyaddr(ip)[0]


class ReverseResolver:
    """Background reverse lookups with a bounded TTL cache; every method returns without waiting."""

    def __init__(
        self,
        resolve: Resolve = socket_resolve,
        *,
        timeout_s: float = 2.0,
        cache_size: int = 10_000,
        ttl_s: float = 3600.0,
        negative_ttl_s: float = 60.0,
        workers: int = 2,
        max_pending: int = 1000,
        max_waiters: int = 10_000,
    ) -> None:
        self._resolve = resolve
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.workers = workers
        self.max_pending = max_pending
        self.max_waiters = max_waiters
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._pending: dict[str, float] = {}  # ip -> deadline
        self._waiters: dict[str, list[tuple[Waiter, Any]]] = {}
        self._n_waiters = 0
        self._queue: queue.Queue[str] = queue.Queue(maxsize=max_pending)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._next_reap = 0.0
        self.counters = {"resolved": 0, "failed": 0, "timed_out": 0, "skipped": 0, "patched": 0}

    # ------------------------------------------------------------------ reading

    def cached(self, ip: str) -> str | None:
        """The cached name ("" for a known failure), or None when unknown or expired."""
        hit = self._cache.get(ip)
        if hit is None:
            return None
        if hit[1] < time.monotonic():
            with self._lock:
                self._cache.pop(ip, None)
            return None
        return hit[0]

    def lookup(self, ip: str) -> str | None:
        """The cached name, else None after queueing a background lookup (never blocks)."""
        hit = self.cached(ip)
        if hit is not None:
            return hit
        if not ip:
            return ""
        now = time.monotonic()
        with self._lock:
            if now >= self._next_reap:
                self._reap_locked(now)
            if ip in self._pending:
                return None
            if len(self._pending) >= self.max_pending:
                self.counters["skipped"] += 1
                return None
            try:
                self._queue.put_nowait(ip)
            except queue.Full:
                self.counters["skipped"] += 1
                return None
            self._pending[ip] = now + self.timeout_s
            self._start_workers_locked()
        return None

    def when_resolved(self, ip: str, waiter: Waiter, item: Any) -> None:
        """Call ``waiter(name, [item, ...])`` once ``ip`` resolves within the timeout.

        Called at once (in this thread) when the name is already cached; dropped on failure or timeout.
        Waiters of one address are handed over together, so one late answer patches many records in
        one call.
        """
        with self._lock:
            pending = ip in self._pending and self._n_waiters < self.max_waiters
            if pending:
                self._waiters.setdefault(ip, []).append((waiter, item))
                self._n_waiters += 1
        if not pending:
            name = self.cached(ip)
            if name:
                self._call(name, [(waiter, item)])

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self.counters, "cached": len(self._cache), "pending": len(self._pending)}

    # ------------------------------------------------------------------ background side

    def _start_workers_locked(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self.workers:
            t = threading.Thread(target=self._work, name="otel-redis-dns", daemon=True)
            t.start()
            self._threads.append(t)

    def _work(self) -> None:
        while True:
            ip = self._queue.get()
            with self._lock:
                deadline = self._pending.get(ip)
            if deadline is None:
                continue  # given up on by the reaper
            if deadline < time.monotonic():
                self._finish(ip, "", timed_out=True)
                continue
            try:
                name = self._resolve(ip) or ""
            except Exception:  # noqa: BLE001 - any failure leaves the hostname empty
                name = ""
            name = name.strip().lower().rstrip(".")[:MAX_HOSTNAME]
            self._finish(ip, name, timed_out=deadline < time.monotonic())

    def _finish(self, ip: str, name: str, timed_out: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self._pending.pop(ip, None)
            waiters = self._waiters.pop(ip, [])
            self._n_waiters -= len(waiters)
            if timed_out:
                self.counters["timed_out"] += 1
            self.counters["resolved" if name else "failed"] += 1
            self._cache[ip] = (name, now + (self.ttl_s if name else self.negative_ttl_s))
            self._cache.move_to_end(ip)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        if name and waiters:
            self._call(name, waiters)

    def _call(self, name: str, waiters: list[tuple[Waiter, Any]]) -> None:
        groups: dict[Waiter, list[Any]] = {}
        for waiter, item in waiters:
            groups.setdefault(waiter, []).append(item)  # equal bound methods group together
        for waiter, items in groups.items():
            try:
                waiter(name, items)
                self.counters["patched"] += len(items)
            except Exception:  # noqa: BLE001 - a failed patch leaves the hostname empty
                pass

    def _reap_locked(self, now: float) -> None:
        """Give up on lookups past their deadline (their threads may still be stuck in the resolver)."""
        self._next_reap = now + 1.0
        for ip in [ip for ip, deadline in self._pending.items() if deadline < now]:
            del self._pending[ip]
            self._n_waiters -= len(self._waiters.pop(ip, []))
            self.counters["timed_out"] += 1
            self._cache[ip] = ("", now + self.negative_ttl_s)


_current: ReverseResolver | None = None
_install_lock = threading.Lock()


def install(resolver: ReverseResolver | None) -> None:
    """Make ``resolver`` the process's resolver (shared by the middleware and the exporter)."""
    global _current
    _current = resolver


def current(settings: Any = None) -> ReverseResolver | None:
    """The process's resolver, created from ``settings`` on first use; None when reverse DNS is off."""
    global _current
    if _current is None and settings is not None and settings.reverse_dns:
        with _install_lock:
            if _current is None:
                _current = ReverseResolver(
                    timeout_s=settings.dns_timeout_s,
                    cache_size=settings.dns_cache_size,
                    ttl_s=settings.dns_cache_ttl_s,
                )
    if settings is not None and not settings.reverse_dns:
        return None
    return _current
