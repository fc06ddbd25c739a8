"""The receiver's core, shared by OTLP/HTTP and OTLP/gRPC: authorise, convert, write, account.

Records go through :func:`collector.convert.entries_from_request` and then the in-process
exporter's :meth:`~otel_redis.exporter.RedisLogRecordExporter.export_entries`, so they take the one
write path (``RedisStore.write``) and share the pipeline counters with in-process records.

Back-pressure: at most ``max_inflight`` requests are converted and written at once; one more waits
at most :data:`QUEUE_WAIT_S` for a slot and is then refused with :class:`Overloaded` (HTTP 429 / gRPC RESOURCE_EXHAUSTED, with a retry delay)
instead of queueing without bound. A failed write (Redis down, out of memory, read-only replica)
raises :class:`Unavailable` (HTTP 503 / gRPC UNAVAILABLE): nothing is acknowledged, so the sender
keeps the records and retries. A retried request may store records twice (at-least-once).
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass

import redis
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from otel_redis.config import Settings
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.record import iter_chunks
from otel_redis.write_result import WriteResult

from .config import ReceiverSettings
from .convert import entries_from_request
from .counters import RECEIVER, ReceiverCounters

#: Redis replies that mean "try again later", not "this record is bad"


#: how long a request waits for a free slot before it is refused as overloaded
QUEUE_WAIT_S = 0.25


class Overloaded(Exception):
    """Too many requests in flight: refuse now, the sender retries after ``retry_after_s``."""


class Unavailable(Exception):
    """The store could not take the records; the sender retries after ``retry_after_s``."""


@dataclass(frozen=True)
class Outcome:
    accepted: int
    rejected: int
    reason: str

    @property
    def refused_all(self) -> bool:
        """Every record was rejected: bad input as a whole (HTTP 400, gRPC INVALID_ARGUMENT)."""
        return self.rejected > 0 and self.accepted == 0

    def response(self) -> ExportLogsServiceResponse:
        """The OTLP response: ``partial_success`` only when something was rejected."""
        response = ExportLogsServiceResponse()
        if self.rejected:
            response.partial_success.rejected_log_records = self.rejected
            response.partial_success.error_message = self.reason
        return response


class Ingestor:
    """Thread-safe; one per process, shared by the HTTP and gRPC servers."""

    def __init__(
        self,
        settings: Settings,
        receiver: ReceiverSettings,
        *,
        exporter: RedisLogRecordExporter | None = None,
        counters: ReceiverCounters | None = None,
    ) -> None:
        self.settings = settings
        self.receiver = receiver
        self.exporter = exporter or RedisLogRecordExporter(settings=settings)
        self.counters = counters or RECEIVER
        self._slots = threading.BoundedSemaphore(receiver.max_inflight)

    @property
    def retry_after_s(self) -> int:
        return self.receiver.retry_after_s

    def authorized(self, authorization: str | None) -> bool:
        """True when no ingest token is configured, or ``Authorization: Bearer <token>`` matches one."""
        tokens = self.receiver.tokens
        if not tokens:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        token_bytes = token.strip().encode()
        found = False
        for candidate in tokens:  # constant time per candidate, all compared
            found |= hmac.compare_digest(token_bytes, candidate.encode())
        return found

    def ingest(self, request: ExportLogsServiceRequest) -> Outcome:
        """Convert and store every valid record of ``request``; raises Overloaded or Unavailable."""
        if not self._slots.acquire(timeout=QUEUE_WAIT_S):
            self.counters.add("overloaded")
            raise Overloaded(f"more than {self.receiver.max_inflight} export requests in flight")
        try:
            converted = entries_from_request(
                request, self.settings.max_message_bytes, self.settings.max_attribute_bytes
            )
            # written in pipelines of the usual batch size, so a 16 MiB request is not one huge round trip
            dropped = 0
            reasons: list[str] = []
            for chunk in iter_chunks(converted.entries, self.settings.max_export_batch_size):
                result = self._write(chunk)
                if isinstance(result, str):  # the records themselves could not be encoded: bad input
                    dropped += len(chunk)
                    reasons.append(result)
                elif result.failed:  # counted as dropped by the exporter; the sender is told per record
                    dropped += len(result.failed)
                    reasons.append(result.summary())
            stored = len(converted.entries) - dropped
            self.counters.add("accepted_records", stored)
            rejected = converted.rejected + dropped
            if rejected:
                self.counters.add("rejected_records", rejected)
            reason = "; ".join(filter(None, [converted.reason, *reasons]))
            return Outcome(stored, rejected, reason)
        finally:
            self._slots.release()

    def _write(self, entries: list) -> WriteResult | str:
        """One chunk through the exporter. A round trip that failed whole raises Unavailable (the
        sender keeps and resends the request); records Redis refused one by one are reported
        back as rejected in the partial success (resending them would repeat the stored ones).
        An error that is not the store's (a value the write path could not encode) is bad input:
        its text is returned, and the sender is told not to retry those records."""
        try:
            return self.exporter.write_entries(entries)
        except (redis.RedisError, OSError) as exc:  # reported to the sender, who retries
            self.counters.add("unavailable")
            raise Unavailable(f"log store unavailable: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - bad input, never a 5xx
            return f"log records rejected: {type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.exporter.shutdown()
