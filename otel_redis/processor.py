"""The SDK's BatchLogRecordProcessor, with every queue-full drop counted.

``emit_readable`` is the log API's fast path: it hands an already-built ReadableLogRecord to the
same batching queue that ``on_emit`` feeds, skipping the SDK's per-record copy and attribute
re-validation (the log API builds a fresh record with clean attributes, so neither is needed).
"""

from __future__ import annotations

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
    ) -> None:
        super().__init__(
            exporter,
            schedule_delay_millis=schedule_delay_millis,
            max_queue_size=max_queue_size,
            max_export_batch_size=min(max_export_batch_size, max_queue_size),
        )
        self.counters = counters
        self._bp = self._batch_processor
        self._max = max_queue_size

    def _admit(self) -> bool:
        bp = self._bp
        if bp._shutdown:
            self.counters.add("dropped_after_shutdown")
            return False
        if len(bp._queue) >= self._max:
            # the SDK would evict the oldest record to make room: count that loss
            self.counters.add("dropped_queue_full")
            self.counters.maybe_warn("the export queue is full (Redis slow or unreachable)")
        return True

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if self._admit():
            super().on_emit(log_record)

    def emit_readable(self, record: ReadableLogRecord) -> None:
        if self._admit():
            self._bp.emit(record)

    def queue_length(self) -> int:
        return len(self._bp._queue)
