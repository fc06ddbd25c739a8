"""The forwarder: Redis streams -> OTLP LogRecords -> the upstream collector, at least once.

Each process is one consumer of a consumer group on ``stream:logs`` and ``stream:requests``
(several processes share the work). A batch is read with ``XREADGROUP ... >``, its record hashes
are fetched in one pipelined round trip, rebuilt into one ``ExportLogsServiceRequest``
(collector/convert.py) and sent. Entries are acknowledged (``XACK``) only after the upstream
accepted the batch, so a crash leaves them pending:

- a restarted forwarder with the same consumer name (``OTEL_REDIS_FORWARD_CONSUMER``) first re-sends
  its own pending entries;
- any forwarder claims (``XAUTOCLAIM``) entries another consumer left pending for longer than
  ``OTEL_REDIS_FORWARD_CLAIM_IDLE_MS``. While a batch is being retried, its owner refreshes its claim
  (``XCLAIM ... JUSTID``), so a live forwarder's batch is not taken from it.

Re-sent entries may already have reached the upstream before the crash: they are counted as
``redelivered`` (possible duplicates). Failed attempts are retried with redis-py's exponential
backoff with jitter, or after the upstream's ``Retry-After``/``RetryInfo``; for as long as it takes
(the stream is the buffer). A batch over the upstream's size limit (HTTP 413, gRPC
RESOURCE_EXHAUSTED without RetryInfo) is sent in halves. Records the upstream refuses for good (HTTP 400, ``partial_success``)
are counted as ``failed`` and acknowledged; records whose hash expired before they could be sent
are counted as ``expired``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import redis
from redis.backoff import ExponentialWithJitterBackoff

from otel_redis import schema
from otel_redis.config import Settings
from otel_redis.connection import is_cluster_client, make_client, read_layout
from otel_redis.store import RedisStore

from .config import ForwarderSettings
from .convert import request_from_entries
from .counters import FORWARDER, ForwarderCounters
from .upstream import Upstream

_log = logging.getLogger("otel_redis.forwarder")

#: seconds between two publications of the counters in Redis
PUBLISH_INTERVAL_S = 5.0

#: a consumer with nothing pending and idle this many claim intervals is removed from the group
_STALE_CONSUMER_FACTOR = 10


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Batch:
    """Stream entries to send together: (stream, entry id, record key or None when the entry is gone)."""

    rows: list[tuple[str, str, str | None]] = field(default_factory=list)

    def add_rows(self, stream: str, entries: Iterable[Any]) -> None:
        for entry_id, fields in entries:
            self.rows.append((stream, _text(entry_id), schema.stream_record_key(fields)))

    def ids_by_stream(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for stream, entry_id, _key in self.rows:
            out.setdefault(stream, []).append(entry_id)
        return out

    def __len__(self) -> int:
        return len(self.rows)


#: a cluster poll with nothing new waits this long before the next (standalone XREADGROUP blocks)
CLUSTER_POLL_S = 0.1


class Forwarder:
    """One consumer of the forwarding group; :meth:`run` until ``stop`` is set."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        config: ForwarderSettings,
        upstream: Upstream,
        counters: ForwarderCounters | None = None,
    ) -> None:
        self.client = client
        self.store = RedisStore(client, settings)
        # on a Redis Cluster layout, one consumer group on each stream part (docs/cluster.md)
        self.streams = tuple(schema.stream_parts(read_layout(client, settings.shards)))
        # a blocking read must end before the socket timeout, or it would look like a dead connection
        block_cap = max(1, int(settings.socket_timeout_s * 800))
        self.config = config.with_overrides(block_ms=min(config.block_ms, block_cap))
        self.upstream = upstream
        self.counters = counters or FORWARDER
        self._backoff = ExponentialWithJitterBackoff(cap=config.backoff_cap_s, base=config.backoff_base_s)
        self._last_claim = 0.0
        self._last_publish = 0.0

    @classmethod
    def connect(cls, settings: Settings, config: ForwarderSettings, upstream: Upstream) -> "Forwarder":
        # redis-py retries connection errors itself; the loop below also survives a longer outage
        return cls(make_client(settings), settings, config, upstream)

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        """Forward until ``stop`` is set; Redis outages are waited out, never fatal."""
        failures = 0
        started = False
        while not stop.is_set():
            try:
                if not started:
                    self.ensure_groups()
                    self.resend_own_pending(stop)
                    started = True
                self.claim_abandoned(stop)
                self.step(stop, block_ms=self.config.block_ms)
                self.publish_counters()
                failures = 0
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                failures += 1
                delay = self._backoff.compute(failures)
                _log.warning("forwarder: Redis unavailable (%s), retrying in %.1fs", exc, delay)
                stop.wait(delay)
            except Exception:  # noqa: BLE001 - keep forwarding; what was not acknowledged is re-sent
                failures += 1
                delay = self._backoff.compute(failures)
                _log.exception("forwarder: unexpected error, retrying in %.1fs", delay)
                stop.wait(delay)

    def drain(self, stop: threading.Event) -> None:
        """Forward everything there is now (own pending, abandoned, new), then return."""
        self.ensure_groups()
        self.resend_own_pending(stop)
        self.claim_abandoned(stop, force=True)
        while not stop.is_set() and self.step(stop, block_ms=None):
            pass

    def close(self) -> None:
        try:
            self.publish_counters(force=True)
        except redis.RedisError:
            pass
        self.upstream.close()
        self.client.close()

    def publish_counters(self, force: bool = False) -> None:
        """Put this process's counters in Redis (every few seconds), where /healthz and /metrics of
        any process read them (:func:`collector.counters.published_forwarders`)."""
        now = time.monotonic()
        if not force and now - self._last_publish < PUBLISH_INTERVAL_S:
            return
        self._last_publish = now
        figures: dict[str, int | float | str] = dict(self.counters.snapshot())
        figures.update(group=self.config.group, updated_ms=int(time.time() * 1000))
        self.store.publish_counters(
            schema.FORWARDERS,
            self.config.consumer,
            schema.forwarder_stats(self.config.consumer),
            figures,
            schema.FORWARDER_STATS_TTL_S,
        )

    # ------------------------------------------------------------------ reading

    def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                self.client.xgroup_create(stream, self.config.group, id=self.config.start_id, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def step(self, stop: threading.Event, block_ms: int | None) -> int:
        """Read one batch of new entries and forward it; returns how many entries were read."""
        rows = self._read_new(stop, block_ms)
        batch = Batch()
        for stream, entries in rows or ():
            batch.add_rows(_text(stream), entries)
        if batch.rows:
            self.forward(batch, stop)
        return len(batch)

    def _read_new(self, stop: threading.Event, block_ms: int | None) -> list[Any]:
        """New entries for this consumer: one blocking XREADGROUP over the two streams, or on a
        cluster layout one XREADGROUP per stream part (a multi-key read would span slots) in a
        pipeline, with a short pause when none had anything."""
        if not is_cluster_client(self.client):
            return list(self.client.xreadgroup(
                self.config.group, self.config.consumer, {stream: ">" for stream in self.streams},
                count=self.config.batch_size, block=block_ms,
            ) or [])  # fmt: skip
        pipe = self.client.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xreadgroup(self.config.group, self.config.consumer, {stream: ">"}, count=self.config.batch_size)
        rows = [row for reply in pipe.execute() for row in (reply or [])]
        if not rows and block_ms:
            stop.wait(min(block_ms / 1000, CLUSTER_POLL_S))
        return rows

    def resend_own_pending(self, stop: threading.Event) -> None:
        """Entries this consumer (same name, earlier process) read but never acknowledged."""
        for stream in self.streams:
            last = "0"
            while not stop.is_set():
                rows = self.client.xreadgroup(
                    self.config.group, self.config.consumer, {stream: last}, count=self.config.batch_size
                )
                entries = rows[0][1] if rows else []
                if not entries:
                    break
                last = _text(entries[-1][0])
                batch = Batch()
                batch.add_rows(stream, entries)
                self.counters.add("redelivered", len(batch))
                if not self.forward(batch, stop):
                    return

    def claim_abandoned(self, stop: threading.Event, force: bool = False) -> None:
        """XAUTOCLAIM what other consumers left pending too long; forget long-idle empty consumers."""
        now = time.monotonic()
        interval = self.config.claim_idle_ms / 2000
        if not force and now - self._last_claim < interval:
            return
        self._last_claim = now
        for stream in self.streams:
            start = "0-0"
            while not stop.is_set():
                reply = self.client.xautoclaim(
                    stream, self.config.group, self.config.consumer,
                    min_idle_time=self.config.claim_idle_ms, start_id=start, count=self.config.batch_size,
                )
                start = _text(reply[0])
                entries = [e for e in reply[1] if e is not None]
                if entries:
                    batch = Batch()
                    batch.add_rows(stream, entries)
                    self.counters.add("redelivered", len(batch))
                    if not self.forward(batch, stop):
                        return
                if start == "0-0":
                    break
            self._forget_stale_consumers(stream)

    def _forget_stale_consumers(self, stream: str) -> None:
        limit_ms = self.config.claim_idle_ms * _STALE_CONSUMER_FACTOR
        try:
            consumers = self.client.xinfo_consumers(stream, self.config.group)
        except redis.ResponseError:
            return
        for info in consumers:
            name = _text(info.get("name"))
            if name != self.config.consumer and int(info.get("pending") or 0) == 0 and int(info.get("idle") or 0) > limit_ms:
                self.client.xgroup_delconsumer(stream, self.config.group, name)

    # ------------------------------------------------------------------ sending

    def forward(self, batch: Batch, stop: threading.Event) -> bool:
        """Send ``batch`` until the upstream takes it (or refuses it for good), then XACK it.

        Returns False when ``stop`` was set first: the entries stay pending for a later run.
        """
        keys = [key for _s, _i, key in batch.rows if key]
        found = dict(self.store.fetch(keys))
        entries = [found[key] for key in keys if key in found]
        missing = len(batch) - len(entries)
        if entries and not self._send(batch, entries, stop):
            return False
        pipe = self.client.pipeline(transaction=False)
        for stream, ids in batch.ids_by_stream().items():
            pipe.xack(stream, self.config.group, *ids)
        pipe.execute()
        if missing:
            self.counters.add("expired", missing)
        return True

    def _request(self, entries: list[Any]) -> tuple[Any, list[Any]]:
        """The export request, and the entries it holds: one that cannot be converted is left out
        and counted as failed (it would fail every attempt)."""
        try:
            return request_from_entries(entries), entries
        except Exception:  # noqa: BLE001 - find the culprits one by one
            good = []
            for entry in entries:
                try:
                    request_from_entries([entry])
                    good.append(entry)
                except Exception as exc:  # noqa: BLE001
                    self.counters.add("failed")
                    _log.warning("forwarder: a record cannot be converted to OTLP: %s: %s", type(exc).__name__, exc)
            return request_from_entries(good), good

    def _send(self, batch: Batch, entries: list[Any], stop: threading.Event) -> bool:
        request, entries = self._request(entries)
        if not entries:
            return True
        failures = 0
        touched = time.monotonic()
        while True:
            result = self.upstream.send(request)
            if result.ok:
                self.counters.add("forwarded", len(entries) - result.rejected)
                self.counters.add("batches")
                if result.rejected:
                    self.counters.add("failed", result.rejected)
                    _log.warning("forwarder: upstream rejected %d records: %s", result.rejected, result.message)
                return True
            if result.too_large and len(entries) > 1:
                # the upstream's size limit: send the halves (each with its own retries)
                half = len(entries) // 2
                self.counters.add("split")
                return self._send(batch, entries[:half], stop) and self._send(batch, entries[half:], stop)
            if not result.retryable:
                self.counters.add("failed", len(entries))
                _log.warning("forwarder: upstream refused a batch of %d records for good: %s", len(entries), result.message)
                return True
            failures += 1
            self.counters.add("retried")
            if result.retry_after is not None:
                delay = min(result.retry_after, self.config.max_retry_after_s)
            else:
                delay = self._backoff.compute(failures)
            if failures == 1 or failures % 10 == 0:
                _log.warning("forwarder: attempt %d failed (%s), retrying in %.2fs", failures, result.message, delay)
            if time.monotonic() - touched > self.config.claim_idle_ms / 2000:
                self._keep_claim(batch)
                touched = time.monotonic()
            if stop.wait(delay):
                return False

    def _keep_claim(self, batch: Batch) -> None:
        """Reset the idle time of our pending entries so no other forwarder claims them mid-retry."""
        pipe = self.client.pipeline(transaction=False)
        for stream, ids in batch.ids_by_stream().items():
            pipe.xclaim(stream, self.config.group, self.config.consumer, 0, ids, justid=True)
        pipe.execute()
