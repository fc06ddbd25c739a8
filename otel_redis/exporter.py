"""RedisLogRecordExporter: the OTel LogRecordExporter that writes batches through the store.

Also the ``redis`` entry point of ``opentelemetry_logs_exporter``, so that
``OTEL_LOGS_EXPORTER=redis opentelemetry-instrument python app.py`` works: constructed with no
arguments it reads its settings from the environment (REDIS_URL, else the embedded server).

It never raises into the processor and never logs through the pipeline it feeds: failures are
counted in :class:`~otel_redis.counters.PipelineCounters` and reported on the ``otel_redis``
stdlib logger at most once a minute.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Iterator, Sequence

import redis
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from . import dns
from .config import Settings, load_settings
from .connection import make_client
from .counters import COUNTERS, PUBLISHER, PipelineCounters
from .record import LogEntry, from_readable
from .request_log import request_entry
from .store import PendingWrite, RedisStore
from .write_result import WriteResult
from .writer_process import ProcessWriter

_log = logging.getLogger("otel_redis.exporter")


class _InFlight:
    """One batch between ``RedisStore.begin`` and its completion, with what its accounting needs."""

    __slots__ = ("write", "entries", "waiting", "total", "error", "seconds")

    def __init__(self, entries: list[LogEntry], waiting: list[int], total: Callable[[], int]) -> None:
        self.write: PendingWrite | None = None
        self.entries = entries
        self.waiting = waiting
        self.total = total
        self.error: Exception | None = None
        self.seconds = 0.0


class RedisLogRecordExporter(LogRecordExporter):
    """Export OTel log records to Redis under the otel-redis schema, one round trip per batch."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        client: redis.Redis | None = None,
        settings: Settings | None = None,
        counters: PipelineCounters | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        if redis_url is not None:
            self.settings = self.settings.with_overrides(redis_url=redis_url)
        self.counters = counters or COUNTERS
        self._client = client
        self._store: RedisStore | None = None
        self._lock = threading.Lock()
        self._shutdown = False
        self._process: ProcessWriter | None = None
        # one batch may be left in flight (sent, replies unread) while the next is planned
        self._pending: _InFlight | None = None
        self._write_lock = threading.Lock()
        self._backlog: Callable[[], int] | None = None
        self._batch_size = 0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)
        if self.settings.writer_process:
            self._process = ProcessWriter(self.settings, self.counters, request_entry)

    def _after_fork(self) -> None:
        """The child writes on its own: the batch in flight is the parent's (its replies come on
        the parent's connection), and the locks and the store (its client's pool, whose lock the
        parent's exporter thread may have held at the fork, and its caches) are made anew. A
        client passed in by the caller is kept: it is the caller's."""
        self._pending = None
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        if self._client is None:
            self._store = None

    def follow_backlog(self, queued: Callable[[], int], batch_size: int) -> None:
        """Called by the processor that feeds this exporter: ``queued()`` is how many records wait
        behind the batch being exported. While at least a whole batch waits, the processor calls
        :meth:`export` again at once, so this exporter leaves each batch's last replies unread until
        the next batch is planned and sent (Redis finishes one while Python plans the other);
        otherwise a batch is finished within its own ``export``."""
        self._backlog = queued
        self._batch_size = max(1, batch_size)

    @property
    def store(self) -> RedisStore:
        """The store, connected on first use (so constructing the exporter never does I/O)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    client = self._client or make_client(
                        self.settings, on_retry=lambda _e: self.counters.add("retried")
                    )
                    self._store = RedisStore(client, self.settings)
                    if self.counters is COUNTERS and self.settings.counters_publish_s > 0:
                        # the process's counters go to Redis too, for /metrics of a prefork server
                        PUBLISHER.attach(self._store.publish_counters, self.settings.counters_publish_s)
        return self._store

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._shutdown:
            self.counters.add("dropped_after_shutdown", len(batch))
            return LogRecordExportResult.FAILURE
        if self._process is not None and self._process.export(batch):
            return LogRecordExportResult.SUCCESS  # the writer process reports the outcome
        if self._shutdown:  # the writer process was stopped meanwhile
            self.counters.add("dropped_after_shutdown", len(batch))
            return LogRecordExportResult.FAILURE
        mm, ma = self.settings.max_message_bytes, self.settings.max_attribute_bytes
        entries: list[LogEntry] = []
        waiting: list[int] = []
        unreadable = [0]

        def normalised() -> Iterator[LogEntry]:
            keep = entries.append
            for readable in batch:
                try:
                    entry = from_readable(readable, mm, ma)
                except Exception:  # noqa: BLE001 - one bad record must not lose the batch
                    self.counters.add("internal_errors")
                    self.counters.add("dropped_export_failed")
                    unreadable[0] += 1
                    continue
                keep(entry)
                yield entry

        return self._write(normalised(), entries, waiting, lambda: len(batch) - unreadable[0])

    def export_entries(self, entries: Sequence[LogEntry], *, raise_on_failure: bool = False) -> LogRecordExportResult:
        """Write already-normalised entries (the OTLP receiver's door into the same path).

        With ``raise_on_failure`` a failed write is counted as a failed batch and re-raised instead of
        dropped: the OTLP receiver answers 503 and the sender keeps the records and retries.
        """
        if not entries:
            return LogRecordExportResult.SUCCESS
        return self._write(iter(entries), list(entries), [], lambda: len(entries), raise_on_failure)

    def write_entries(self, entries: Sequence[LogEntry]) -> WriteResult:
        """Write already-normalised entries at once and return what became of each (the OTLP
        receiver's door: it answers the sender per record). Counted like every batch; a failed
        round trip is re-raised (counted as a failed batch), so the sender keeps and resends it."""
        batch = _InFlight(list(entries), [], lambda: len(entries))
        if not entries:
            return WriteResult()
        started = time.perf_counter()
        source: Iterator[LogEntry] = iter(entries)
        resolver = dns.current(self.settings)
        if resolver is not None:
            source = self._with_hostnames(source, batch.waiting, resolver)
        self._begin(batch, source, started, False)
        return self._complete(batch, True)[1]

    def _write(
        self,
        source: Iterator[LogEntry],
        entries: list[LogEntry],
        waiting: list[int],
        total: Callable[[], int],
        raise_on_failure: bool = False,
    ) -> LogRecordExportResult:
        """Write what ``source`` yields (``entries`` holds, by the end, every entry it yielded): each
        is given its cached hostname as the store reaches it, so the batch's first slice leaves for
        Redis before the rest is normalised (Redis would otherwise wait for the whole batch's
        conversion). The previous batch, if left in flight, is finished once this one is sent, and
        this one is left in flight when more batches follow at once (see :meth:`follow_backlog`)."""
        started = time.perf_counter()
        resolver = dns.current(self.settings)
        if resolver is not None:
            source = self._with_hostnames(source, waiting, resolver)
        batch = _InFlight(entries, waiting, total)
        if raise_on_failure or self._backlog is None:
            # not the processor's door (the OTLP receiver, the writer process, an SDK processor of
            # its own): written at once, concurrently with other callers, never left in flight
            self._begin(batch, source, started, False)
            return self._finish(batch, raise_on_failure)
        with self._write_lock:  # the processor's batches, one after the other: one may stay in flight
            previous, self._pending = self._pending, None
            self._begin(batch, source, started, previous is not None)
            if previous is not None:
                self._finish(previous, False)
            if batch.error is None and not self._shutdown and self._more_coming():
                batch.write.release_streams()  # type: ignore[union-attr]  # after the previous batch: streams stay in order
                self._pending = batch
                return LogRecordExportResult.SUCCESS
            return self._finish(batch, raise_on_failure)

    def _begin(self, batch: _InFlight, source: Iterator[LogEntry], started: float, hold_streams: bool) -> None:
        try:
            batch.write = self.store.begin(source, hold_streams=hold_streams)
        except Exception as exc:  # noqa: BLE001 - never raise into the processor
            batch.error = exc
        batch.seconds = time.perf_counter() - started

    def _more_coming(self) -> bool:
        queued = self._backlog
        return queued is not None and queued() >= self._batch_size

    def _finish(self, batch: _InFlight, raise_on_failure: bool) -> LogRecordExportResult:
        """Read a batch's replies and count its outcome (raises only with ``raise_on_failure``)."""
        return self._complete(batch, raise_on_failure)[0]

    def _complete(self, batch: _InFlight, raise_on_failure: bool) -> tuple[LogRecordExportResult, WriteResult]:
        """:meth:`_finish` with the batch's :class:`WriteResult`: each record counted as exported
        only when Redis accepted its own commands, else under ``dropped_redis_error_{kind}``."""
        started = time.perf_counter()
        result = WriteResult()
        exc = batch.error
        if exc is None:
            try:
                result = batch.write.complete()  # type: ignore[union-attr]
            except Exception as error:  # noqa: BLE001 - never raise into the processor
                exc = error
        self.counters.add("export_seconds_total", batch.seconds + time.perf_counter() - started)
        if exc is not None:
            self.counters.add("failed_batches")
            if raise_on_failure:
                raise exc
            self.counters.add("dropped_export_failed", batch.total())
            self.counters.maybe_warn(f"{type(exc).__name__}: {exc}")
            return LogRecordExportResult.FAILURE, result
        if not batch.entries:
            return LogRecordExportResult.SUCCESS, result
        if batch.waiting:
            self._await_hostnames(batch.waiting, batch.entries, result)
        self._count(result)
        return (LogRecordExportResult.FAILURE if result.failed else LogRecordExportResult.SUCCESS), result

    def _count(self, result: WriteResult) -> None:
        counters = self.counters
        for kind, n in result.dropped_by_kind().items():
            counters.add(f"dropped_redis_error_{kind}", n)
        if result.index_errors:
            counters.add("index_errors", result.index_errors)
        if result.failed or result.index_errors:
            counters.add("command_errors", len(result.failed) + result.index_errors)
        if result.unread_trimmed:
            counters.add("stream_unread_trimmed", result.unread_trimmed)
        counters.add("exported", result.exported)
        counters.add("export_batches")
        counters.maybe_warn(result.summary())

    def _finish_pending(self, timeout_s: float = -1) -> bool:
        """Finish the batch left in flight; False when the batch being written did not end within
        ``timeout_s`` (a stuck Redis: that batch is counted by the thread writing it, when it ends)."""
        if not self._write_lock.acquire(timeout=timeout_s):
            return False
        try:
            pending, self._pending = self._pending, None
            if pending is not None:
                self._finish(pending, False)
            return True
        finally:
            self._write_lock.release()

    @staticmethod
    def _with_hostnames(source: Iterator[LogEntry], waiting: list[int], resolver: Any) -> Iterator[LogEntry]:
        """Set ``client_hostname`` from the reverse-DNS cache; the positions of records whose name
        is still being resolved go to ``waiting``."""
        for position, entry in enumerate(source):
            req = entry.request
            if req is not None and req.client_ip and not req.client_hostname:
                name = resolver.lookup(req.client_ip)
                if name:
                    entry.request = req._replace(client_hostname=name)
                elif name is None:
                    waiting.append(position)
            yield entry

    def _await_hostnames(self, waiting: list[int], entries: Sequence[LogEntry], result: WriteResult) -> None:
        """Late answers patch the stored records (in the resolver's thread, through the store)."""
        resolver = dns.current(self.settings)
        if resolver is None:
            return
        store = self.store
        keys = result.keys
        for i in waiting:
            if i in result.failed:
                continue
            entry = entries[i]
            resolver.when_resolved(entry.request.client_ip, store.patch_hostname, (keys[i], entry.timestamp_ms))  # type: ignore[union-attr]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Finish the batch left in flight; with a writer process, wait until it has answered
        every batch."""
        started = time.monotonic()
        if not self._finish_pending(timeout_millis / 1000):
            return False
        if self._process is not None:
            done = self._process.flush(max(0.0, timeout_millis / 1000 - (time.monotonic() - started)))
        else:
            done = True
        if self._store is not None and self.counters is COUNTERS:
            PUBLISHER.publish_now()
        return done

    def shutdown(self, timeout_millis: int = 30000) -> None:
        """Finish what is in flight within ``timeout_millis`` (the SDK's processor passes what is
        left of its own). A batch still being written when it runs out is counted by the thread
        writing it, when that write ends (no batch is left in flight after shutdown); a writer
        process that has not answered by then is stopped and its unanswered records counted as
        dropped (``dropped_export_failed``)."""
        deadline = time.monotonic() + timeout_millis / 1000
        self._shutdown = True
        self._finish_pending(timeout_millis / 1000)
        if self._process is not None:
            self._process.shutdown(max(0.0, deadline - time.monotonic()))
        if self._store is not None and self.counters is COUNTERS:
            PUBLISHER.detach()  # the last figures of this process, then no more writes
        store, self._store = self._store, None
        if store is not None and self._client is None:
            try:
                store.client.close()
            except Exception:  # noqa: BLE001
                pass
