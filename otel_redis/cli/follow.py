"""Live follow over ``GET /logs/stream`` (Server-Sent Events), surviving restarts and dropped connections.

Each event carries its stream position as the SSE ``id``, and the stream opens with a
``: ready <position>`` comment and an ``id:`` line without data, both saying where the server started
reading. After a dropped connection, a server
restart or a silent stream, the follower reconnects every ``interval`` seconds with
``Last-Event-ID`` set to the last id it saw, so the server resumes exactly there: records written
while it was away arrive after it comes back. Record ids already printed are remembered (bounded),
so nothing is shown twice even if a server replays an overlap.

A first connection that fails is an error (a wrong URL or token should not hang); after that,
only authentication and argument errors end the follow.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any, Callable, Mapping

import orjson

from .api_client import ApiClient, Unreachable

STREAM_PATH = "/logs/stream"
#: the comment the server sends once its read position is fixed: ": ready <position>"
READY = "ready "
#: longest silence (no event, no keep-alive comment) before the connection is considered dead
READ_TIMEOUT_S = 45.0
#: record ids remembered to drop repeats across reconnects
SEEN_MAX = 50_000


class SeenIds:
    """A bounded set of the most recent record ids."""

    def __init__(self, max_size: int = SEEN_MAX) -> None:
        self._order: deque[str] = deque()
        self._set: set[str] = set()
        self._max = max_size

    def add(self, item: str) -> bool:
        """Remember ``item``; False when it was already there."""
        if item in self._set:
            return False
        self._set.add(item)
        self._order.append(item)
        if len(self._order) > self._max:
            self._set.discard(self._order.popleft())
        return True


def _note(message: str) -> None:
    print(f"otel-redis: {message}", file=sys.stderr, flush=True)


def follow(
    client: ApiClient,
    params: Mapping[str, Any],
    on_record: Callable[[dict[str, Any]], None],
    *,
    interval: float = 1.0,
    read_timeout: float = READ_TIMEOUT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print records as they arrive until interrupted; returns only through an exception."""
    last_id: str | None = None
    seen = SeenIds()
    connected = False
    announced = False
    outage_reported = False
    while True:
        try:
            with client.event_stream(STREAM_PATH, params, last_id, read_timeout) as events:
                if outage_reported:
                    _note("reconnected" + (f", resuming after {last_id}" if last_id else ""))
                    outage_reported = False
                connected = True
                for event in events:
                    if event.id:
                        last_id = event.id  # a record's position, or (no data) where the server started
                    if event.comment and event.comment.startswith(READY):
                        # where the server started reading: resume there even if no record came yet
                        last_id = event.comment[len(READY) :].strip() or last_id
                        if not announced:
                            _note(f"following {client.base_url} (Ctrl-C to stop)")
                            announced = True
                    record = _record_of(event)
                    if record is None:
                        continue
                    key = record.get("id")
                    if isinstance(key, str) and not seen.add(key):
                        continue
                    on_record(record)
            reason = "the server closed the stream"
        except Unreachable as exc:
            if not connected:
                raise
            reason = str(exc)
        if not outage_reported:
            _note(f"{reason}; reconnecting every {interval:g}s")
            outage_reported = True
        sleep(interval)


def _record_of(event: Any) -> dict[str, Any] | None:
    """The record carried by one SSE event, or None for keep-alives and control events."""
    if event.comment is not None or event.event not in ("", "message") or not event.data:
        return None
    try:
        value = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


__all__ = ["STREAM_PATH", "SeenIds", "follow"]
