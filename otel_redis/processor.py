"""The SDK's BatchLogRecordProcessor, composed through its public interface, with every drop counted.

The SDK's processor, when its queue is full, drops the oldest record and tells no one. So each
record passes :class:`CountingBatchLogRecordProcessor` on its way in (``handed``) and
:class:`_Arrivals`, a LogRecordExporter in front of ours, on its way out (``arrived``):
``handed - arrived`` is never less than what the SDK's queue holds (a batch the worker has popped
but not yet handed to ``export`` still counts). A record is handed on only while that difference
is below the queue size, so the SDK's queue never overflows and each refused record is counted
here, as ``dropped_queue_full``; at shutdown the difference is what never reached the exporter.

The log API's fast path (:meth:`CountingBatchLogRecordProcessor.emit_fast`) hands the SDK a
:class:`_Handoff` (a ReadWriteLogRecord without the attribute re-validation: the log API built the
attributes clean) of a record whose copy is itself (:class:`QueuedLogRecord`): that record goes to
this processor only, so the SDK's defensive copy has nothing to protect.
"""

from __future__ import annotations

import inspect
import threading
import time
from typing import Any, Callable, Sequence

from opentelemetry._logs import LogRecord as APILogRecord
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult

from . import forksafe
from .counters import PipelineCounters


class QueuedLogRecord(APILogRecord):
    """An OTel LogRecord built by the log API for one processor only: copying it returns it."""

    def __copy__(self) -> QueuedLogRecord:
        return self


class _Handoff(ReadWriteLogRecord):
    """A ReadWriteLogRecord whose attributes are already clean: the dataclass's BoundedAttributes
    copy in ``__post_init__`` (the costliest step of a log call) is skipped."""

    def __init__(self, log_record: APILogRecord, resource: Any, instrumentation_scope: Any) -> None:
        self.log_record = log_record
        self.resource = resource
        self.instrumentation_scope = instrumentation_scope
        self.limits = None  # type: ignore[assignment]


class _Arrivals(LogRecordExporter):
    """The exporter the SDK's processor sees: counts each batch that reaches ours, and refuses
    batches that arrive after shutdown counted them as never exported."""

    def __init__(self, exporter: LogRecordExporter, arrive: Callable[[int], bool]) -> None:
        self.exporter = exporter
        self._arrive = arrive
        self._stop_lock = threading.Lock()
        self._stopped = False
        self.deadline = float("inf")  # set by the processor's shutdown
        self._timed = "timeout_millis" in inspect.signature(exporter.shutdown).parameters

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if not self._arrive(len(batch)):
            return LogRecordExportResult.FAILURE
        return self.exporter.export(batch)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Shut our exporter down once, within the processor's deadline."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        left_ms = min(timeout_millis, max(0.0, (self.deadline - time.monotonic()) * 1000))
        if self._timed:
            self.exporter.shutdown(timeout_millis=int(left_ms))  # type: ignore[call-arg]
        else:
            self.exporter.shutdown()


class CountingBatchLogRecordProcessor(LogRecordProcessor):
    """The SDK's BatchLogRecordProcessor behind an admission that counts what it refuses."""

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
        self.counters = counters
        self.exporter = exporter
        self.max_queue_size = max_queue_size
        batch_size = min(max_export_batch_size, max_queue_size)
        self._lock = threading.Lock()
        self._handed = 0
        self._arrived = 0
        self._stopping = False  # shutdown has begun: new records are refused
        self._closed = False  # shutdown has counted what never arrived: later arrivals are refused
        self._arrivals = _Arrivals(exporter, self._arrive)
        self.batch_processor = BatchLogRecordProcessor(
            self._arrivals,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=batch_size,
            export_timeout_millis=export_timeout_millis,
            max_queue_size=max_queue_size,
        )
        follow = getattr(exporter, "follow_backlog", None)
        if follow is not None:  # our exporter overlaps a batch's replies with the next one's planning
            follow(self.queue_length, batch_size)
        forksafe.renew_in_child(self._after_fork)

    def _after_fork(self) -> None:
        """The SDK empties its queue in a child (the parent exports those records): so do we."""
        self._lock = threading.Lock()
        self._handed = self._arrived = 0

    def _admit(self) -> bool:
        with self._lock:
            if not self._stopping and self._handed - self._arrived < self.max_queue_size:
                self._handed += 1
                return True
            stopping = self._stopping
        if stopping:
            self.counters.add("dropped_after_shutdown")
        else:
            self.counters.add("dropped_queue_full")
            self.counters.maybe_warn("the export queue is full (Redis slow or unreachable)")
        return False

    def _arrive(self, count: int) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._arrived += count
            return True

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if self._admit():
            self.batch_processor.on_emit(log_record)

    def emit_fast(self, record: APILogRecord, resource: Any, instrumentation_scope: Any) -> None:
        """Queue a record the log API built (clean attributes, its own copy: see the module doc)."""
        if self._admit():
            self.batch_processor.on_emit(_Handoff(record, resource, instrumentation_scope))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued, then let the exporter finish (the SDK's processor does not call the
        exporter's force_flush; with a writer process, that waits for its answers)."""
        started = time.monotonic()
        flushed = self.batch_processor.force_flush(timeout_millis)
        remaining = max(0, timeout_millis - int((time.monotonic() - started) * 1000))
        done = self.exporter.force_flush(remaining) and flushed
        self.counters.maybe_warn("report at flush", force=True)
        return done

    def shutdown(self, timeout_millis: int = 30000) -> None:
        """The SDK's shutdown (export what is queued, then the exporter's), given up after
        ``timeout_millis``: what had not reached the exporter by then is counted as
        ``dropped_after_shutdown``, then every drop not yet reported is."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self._arrivals.deadline = time.monotonic() + timeout_millis / 1000
        # the SDK's shutdown takes no timeout: it runs aside, and is waited for within ours
        stopper = threading.Thread(target=self.batch_processor.shutdown, name="otel-redis-shutdown", daemon=True)
        stopper.start()
        stopper.join(timeout_millis / 1000)
        with self._lock:
            left = self._handed - self._arrived
            self._closed = True
        if left:
            self.counters.add("dropped_after_shutdown", left)
        self._arrivals.shutdown()  # done already unless the SDK's worker is still in a write
        # every drop not yet reported (the once-a-minute warning would otherwise leave the last
        # ones, often most of them, unsaid)
        self.counters.maybe_warn("report at shutdown", force=True)

    def queue_length(self) -> int:
        """Records handed to the SDK's queue that have not reached the exporter yet."""
        return self._handed - self._arrived
