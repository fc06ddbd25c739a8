"""The SDK's BatchLogRecordProcessor, with every queue-full drop counted.

``emit_readable`` is the log API's fast path: it hands an already-built ReadableLogRecord to the
same batching queue that ``on_emit`` feeds, skipping the SDK's per-record copy and attribute
re-validation (the log API builds a fresh record with clean attributes, so neither is needed), and
the SDK's per-record fork check (a fork hook marks the next record for the SDK's own path).
"""

from __future__ import annotations

import os
import time

from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter

from .counters import PipelineCounters


class CountingBatchLogRecordProcessor(BatchLogRecordProcessor):
    """BatchLogRecordProcessor that counts records it accepts and records it drops."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        counters: PipelineCounters,
        *,
        schedule_delay_millis: float,
        max_queue_size: int,
        max_export_batch_size: int,
        export_timeout_millis: float = 30_000,
    ) -> None:
        super().__init__(
            exporter,
            schedule_delay_millis=schedule_delay_millis,
            export_timeout_millis=export_timeout_millis,
            max_queue_size=max_queue_size,
            max_export_batch_size=min(max_export_batch_size, max_queue_size),
        )
        self.counters = counters
        self._exporter = exporter
        self._bp = self._batch_processor
        self._max = max_queue_size
        self._batch = min(max_export_batch_size, max_queue_size)
        self._forked = False
        follow = getattr(exporter, "follow_backlog", None)
        if follow is not None:  # our exporter overlaps a batch's replies with the next one's planning
            follow(self.queue_length, self._batch)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._forked = True  # the next record takes the SDK's path, which restarts the worker if needed

    def _admit(self) -> bool:
        bp = self._bp
        if bp._shutdown:
            self.counters.add("dropped_after_shutdown")
            return False
        if len(bp._queue) >= self._max:
            # the new record is dropped and counted here (letting the SDK's full queue evict the
            # oldest one would count a loss that a worker popping in between makes untrue)
            self.counters.add("dropped_queue_full")
            self.counters.maybe_warn("the export queue is full (Redis slow or unreachable)")
            return False
        return True

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if self._admit():
            super().on_emit(log_record)

    def emit_readable(self, record: ReadableLogRecord) -> None:
        """The SDK's ``BatchProcessor.emit`` for the common case (running, not full, not just forked),
        without its per-record ``os.getpid()`` system call; anything else takes the SDK's path."""
        bp = self._bp
        queue = bp._queue
        if bp._shutdown or self._forked or len(queue) >= self._max:
            self._forked = False
            if self._admit():
                bp.emit(record)
            return
        queue.appendleft(record)
        if len(queue) >= self._batch and not bp._worker_awaken.is_set():
            bp._worker_awaken.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued, then let the exporter finish (the SDK's processor does not call the
        exporter's force_flush; with a writer process, that waits for its answers)."""
        started = time.monotonic()
        flushed = super().force_flush(timeout_millis)
        remaining = max(0, timeout_millis - int((time.monotonic() - started) * 1000))
        done = self._exporter.force_flush(remaining) and flushed
        self.counters.maybe_warn("report at flush", force=True)
        return done

    def shutdown(self, timeout_millis: int = 30000) -> None:
        """The SDK's shutdown (export what is queued, then the exporter's, within the timeout),
        the records still queued when it ran out counted as ``dropped_after_shutdown`` instead of
        vanishing, then every drop not yet reported."""
        self._bp.shutdown(timeout_millis)
        queue = self._bp._queue
        left = 0
        while True:
            try:
                queue.pop()
            except IndexError:
                break
            left += 1
        if left:
            self.counters.add("dropped_after_shutdown", left)
        # every drop not yet reported (the once-a-minute warning would otherwise leave the last
        # ones, often most of them, unsaid)
        self.counters.maybe_warn("report at shutdown", force=True)

    def queue_length(self) -> int:
        return len(self._bp._queue)
