"""The export's heavy half in a child process (``OTEL_REDIS_WRITER_PROCESS=true``).

Normalising a record, planning its ~12 commands and packing them costs about as much Python as a
minimal FastAPI request handler, and in the exporter thread it shares the application's GIL. With
this option the exporter keeps only the hand-over: each batch leaves as one compact frame (request
records as the tuples the middleware queued, other records as their normalised fields, ``marshal``
encoded) on the stdin of a writer process (``writer_child.child_main``, a fresh interpreter), which rebuilds
the entries and writes them through the same exporter and store (the one write path).

Robustness: the parent keeps at most :data:`MAX_IN_FLIGHT` unanswered batches (then the exporter
thread waits, and records wait in the processor's bounded queue, where overflow is counted). The
child answers every batch with a line of counter deltas (exported, dropped, retried, failed batches,
command errors), added to the parent's counters, so ``otel_redis.stats()`` stays the truth. When the
child dies, the records of every unanswered batch are counted as dropped (``dropped_export_failed``)
and the next batch starts a new child; a child that cannot be started leaves the batch to the
in-process path. A fork gets its own child on its first batch. When the application dies without
shutting down, the child writes the batches still in the pipe, stops answering, and exits without a
traceback (one stderr line if records could not be written); it ignores SIGINT (Ctrl-C reaches the
whole process group: the parent's shutdown, closing the pipe, ends it).
"""

from __future__ import annotations

import collections
import marshal
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from typing import IO, Any, Callable, Sequence

import orjson

from .config import Settings
from .connection import resolve_url
from .counters import PipelineCounters
from .write_result import ERROR_KINDS
from .record import EntryLogRecord, LogEntry, entry_to_row, from_readable

#: batches sent and not answered yet, at most
MAX_IN_FLIGHT = 8
#: counters the child reports per batch (deltas)
REPORTED = (
    "exported",
    "export_batches",
    "retried",
    "failed_batches",
    "command_errors",
    "dropped_export_failed",
    *(f"dropped_redis_error_{kind}" for kind in ERROR_KINDS),
    "index_errors",
    "internal_errors",
    "export_seconds_total",
)
_LENGTH = struct.Struct("!I")
#: the kind of a row in a batch frame: a request call (request_log.RequestCall) or a normalised entry
REQUEST_ROW, _ENTRY = 1, 0


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_LENGTH.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    payload = stream.read(size)
    return payload if len(payload) == size else None


class ProcessWriter:
    """The parent's side: frames out, counter deltas back."""

    def __init__(self, settings: Settings, counters: PipelineCounters, request_builder: Callable[..., LogEntry]) -> None:
        self.settings = settings
        self.counters = counters
        self._request_builder = request_builder
        self._lock = threading.Condition()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = -1
        self._in_flight: collections.deque[int] = collections.deque()
        self._reader: threading.Thread | None = None
        self._spawned = 0
        #: after shutdown: no new child (a batch still coming is left to the caller to count)
        self._closed = False
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """A forked child must not hold the parent's pipe to its writer (the writer would never see
        the end of its input); it starts its own writer on its first batch."""
        proc, self._proc = self._proc, None
        self._lock = threading.Condition()
        self._in_flight = collections.deque()
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        os.close(stream.fileno())
                except (OSError, ValueError):
                    pass

    # ------------------------------------------------------------------ parent API

    @property
    def restarts(self) -> int:
        """Writers started after the first one (each after the previous one ended)."""
        return max(0, self._spawned - 1)

    def export(self, batch: Sequence[Any]) -> bool:
        """Hand ``batch`` to the child; False when no child could be started (write it in process)."""
        if self._closed:
            return False
        frame = self._frame(batch)
        if frame is None:
            return True  # nothing left to send (every record failed to convert, and was counted)
        payload, n = frame
        with self._lock:
            proc = self._running()
            if proc is None:
                return False
            while len(self._in_flight) >= MAX_IN_FLIGHT and self._proc is proc:
                self._lock.wait(1.0)
            if self._proc is not proc:  # died while we waited: the next one takes the batch
                proc = self._running()
                if proc is None:
                    return False
            self._in_flight.append(n)
        try:
            assert proc.stdin is not None
            _write_frame(proc.stdin, payload)  # blocks while the pipe is full (the child is busy)
        except (OSError, ValueError):
            self._child_gone(proc)  # counts this batch (already in flight) and the others as dropped
        return True

    def flush(self, timeout_s: float) -> bool:
        """Wait until every batch sent has been answered (written, or failed and counted)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._in_flight and self._pid == os.getpid():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 1.0))
        return True

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Let the child finish what it has within ``timeout_s``, then stop it; the batches it has
        not answered by then are counted as dropped (``dropped_export_failed``)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            proc, mine = self._proc, self._pid == os.getpid()
            self._closed = mine
        if proc is None or not mine:
            return
        # end of input: the child writes what it has and exits. Closing waits for a frame being
        # written to a full pipe (a child stuck on Redis), so it runs aside, within the deadline.
        closer = threading.Thread(target=_close_quietly, args=(proc.stdin,), daemon=True)
        closer.start()
        closer.join(timeout_s)
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()  # gives up on what it has not answered: counted below
            proc.wait()
        reader = self._reader
        if reader is not None:  # the last answers are still in the pipe when the child has exited
            reader.join(max(0.5, deadline - time.monotonic()))
        self._child_gone(proc)

    # ------------------------------------------------------------------ internals

    def _frame(self, batch: Sequence[Any]) -> tuple[bytes, int] | None:
        """``(resource, scope name, scope version, rows)`` marshalled; ``rows`` are request tuples
        (``(1, fields)``) or normalised entries (``(0, row)``)."""
        limits = (self.settings.max_message_bytes, self.settings.max_attribute_bytes)
        rows: list[tuple[int, Any]] = []
        head: Any = None
        for readable in batch:
            try:
                record = readable.log_record
                if record.__class__ is EntryLogRecord and record.build is self._request_builder:
                    if head is None:
                        head = readable
                    rows.append((REQUEST_ROW, tuple(record.fields)))  # marshal carries plain tuples
                else:
                    rows.append((_ENTRY, entry_to_row(from_readable(readable, *limits))))
            except Exception:  # noqa: BLE001 - one bad record must not lose the batch
                self.counters.add("internal_errors")
                self.counters.add("dropped_export_failed")
        if not rows:
            return None
        if head is not None:
            entry = from_readable(head, *limits)  # the resource and scope every request record shares
            meta: tuple[Any, ...] = (entry.resource, entry.scope_name, entry.scope_version)
        else:
            meta = ({}, "", "")
        try:
            return marshal.dumps((*meta, rows)), len(rows)
        except ValueError:  # a value marshal cannot carry: send the rows that can go
            good = []
            for row in rows:
                try:
                    marshal.dumps(row)
                    good.append(row)
                except ValueError:
                    self.counters.add("internal_errors")
                    self.counters.add("dropped_export_failed")
            return (marshal.dumps((*meta, good)), len(good)) if good else None

    def _running(self) -> subprocess.Popen[bytes] | None:
        """The child, started when there is none (or after a fork). Called with the lock held."""
        if self._pid != os.getpid():
            self._proc = None  # a forked process starts its own writer
            self._in_flight.clear()
            self._spawned = 0
            self._pid = os.getpid()
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        try:
            self._proc = self._spawn()
            self._spawned += 1
        except Exception as exc:  # noqa: BLE001 - fall back to writing in process
            self.counters.maybe_warn(f"cannot start the writer process: {type(exc).__name__}: {exc}")
            self._proc = None
        return self._proc

    def _spawn(self) -> subprocess.Popen[bytes]:
        settings = self.settings.with_overrides(redis_url=resolve_url(self.settings), writer_process=False)
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from otel_redis.writer_child import child_main; sys.exit(child_main())"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            env=env,
        )
        assert proc.stdin is not None
        _write_frame(proc.stdin, pickle.dumps(settings))
        self._reader = threading.Thread(
            target=self._read_answers, args=(proc,), name="otel-redis-writer-answers", daemon=True
        )
        self._reader.start()
        return proc

    def _read_answers(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                deltas = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            for name in REPORTED:
                value = deltas.get(name)
                if value:
                    self.counters.add(name, value)
            with self._lock:
                if self._proc is proc and self._in_flight:
                    self._in_flight.popleft()
                self._lock.notify_all()
            self.counters.maybe_warn()
        proc.wait()
        self._child_gone(proc)

    def _child_gone(self, proc: subprocess.Popen[bytes]) -> None:
        """Count the unanswered batches of a child that ended as dropped; the next batch starts another."""
        with self._lock:
            if self._proc is not proc:
                return
            lost = sum(self._in_flight)
            batches = len(self._in_flight)
            self._in_flight.clear()
            self._proc = None
            self._lock.notify_all()
        if lost:
            self.counters.add("failed_batches", batches)
            self.counters.add("dropped_export_failed", lost)
            self.counters.maybe_warn("the writer process ended with batches unwritten")


def _close_quietly(stream: IO[bytes] | None) -> None:
    try:
        if stream is not None:
            stream.close()
    except (OSError, ValueError):
        pass
