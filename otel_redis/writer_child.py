"""The writer process itself (``OTEL_REDIS_WRITER_PROCESS=true``): what runs in the child that
:mod:`otel_redis.writer_process` starts. Settings arrive first, then batch frames; each batch is
rebuilt into entries and written through the same exporter and store as in process (the one write
path), and answered with one line of counter deltas.

A module of its own because it is the only part that needs the exporter: the exporter starts the
parent's side (``writer_process.ProcessWriter``), so the child's side here can import it without a
cycle.
"""

from __future__ import annotations

import marshal
import os
import pickle
import signal
import sys
from typing import IO

import orjson

from .config import Settings
from .counters import PipelineCounters
from .exporter import RedisLogRecordExporter
from .record import LogEntry, entry_from_row
from .request_log import request_entry
from .writer_process import REPORTED, REQUEST_ROW, read_frame


def _lower_priority(increment: int) -> None:
    """Serving requests comes first: where the app and the writer compete for a core, the writer
    yields (it catches up on idle time; its queue is bounded and overflow is counted)."""
    if increment > 0 and hasattr(os, "nice"):
        try:
            os.nice(min(increment, 19))
        except OSError:  # not permitted here: keep the parent's priority
            pass


def child_main() -> int:
    """The writer process: settings, then batches on stdin; one line of counter deltas per batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent's shutdown ends us
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    first = read_frame(stdin)
    if first is None:
        return 0
    settings: Settings = pickle.loads(first)  # from our own parent, over a private pipe
    _lower_priority(settings.writer_nice)
    counters = PipelineCounters(warn_interval_s=float("inf"))  # the parent reports; the child counts
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    limits = (settings.max_message_bytes, settings.max_attribute_bytes)
    last = {name: 0 for name in REPORTED}
    answering = True  # until the application is gone: then the batches still in the pipe are written unanswered
    while True:
        payload = read_frame(stdin)
        if payload is None:
            break
        resource, scope_name, scope_version, rows = marshal.loads(payload)
        entries: list[LogEntry] = []
        for kind, row in rows:
            try:
                if kind == REQUEST_ROW:
                    entry = request_entry(row, *limits)
                    entry.resource, entry.scope_name, entry.scope_version = resource, scope_name, scope_version
                else:
                    entry = entry_from_row(row)
                entries.append(entry)
            except Exception:  # noqa: BLE001
                counters.add("internal_errors")
                counters.add("dropped_export_failed")
        exporter.export_entries(entries)
        deltas = {}
        for name in REPORTED:
            value = getattr(counters, name)
            if value != last[name]:
                deltas[name] = value - last[name]
                last[name] = value
        if answering:
            answering = _answer(stdout, orjson.dumps(deltas) + b"\n")
    exporter.shutdown()
    if not answering and counters.dropped:  # nobody left to add these to: say it once, no traceback
        sys.stderr.write(
            f"otel-redis writer process: the application ended; {counters.dropped} records could not be written\n"
        )
    return 0


def _answer(stdout: IO[bytes], line: bytes) -> bool:
    """Send one answer; False when the application has gone (its end of the pipe closed)."""
    try:
        stdout.write(line)
        stdout.flush()
        return True
    except OSError:  # BrokenPipeError: the parent died without shutting down
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())  # the interpreter's own flush at exit must not fail again
        os.close(devnull)
        return False

