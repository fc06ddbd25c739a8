"""A Server-Sent Events reader that also reports comments.

The query API's stream starts with ``: ready <position>`` (a comment, which says the server is
reading) and ``id: <position>`` without data (which standard clients keep as their last event id)
once it has fixed where it reads from, and sends ``: keepalive`` comments while idle. Generic SSE
clients drop comments, and the follower wants to know when the stream is live, hence this small
reader. Lines end at ``\\r\\n``, ``\\r`` or ``\\n`` only (as the SSE
format says; ``str.splitlines`` would also split a record at U+2028).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator


@dataclass(frozen=True)
class Event:
    """A dispatched event (``data`` set) or a comment line (``comment`` set)."""

    event: str = ""
    data: str = ""
    id: str | None = None
    comment: str | None = None


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    buf = b""
    for chunk in chunks:
        buf += chunk
        start = 0
        while True:
            lf = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, lf if lf != -1 else len(buf))
            if cr != -1:
                if cr + 1 == len(buf):
                    break  # maybe the first half of \r\n: wait for more
                end = cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
                yield buf[start:cr].decode("utf-8", "replace")
                start = end
            elif lf != -1:
                yield buf[start:lf].decode("utf-8", "replace")
                start = lf + 1
            else:
                break
        buf = buf[start:]
    if buf:
        yield buf.rstrip(b"\r").decode("utf-8", "replace")


def iter_events(lines: Iterable[str]) -> Iterator[Event]:
    """Decode lines into events, as the HTML Living Standard's event-stream interpretation."""
    event = ""
    data: list[str] = []
    last_id: str | None = None
    told_id: str | None = None
    for line in lines:
        if not line:
            if data or last_id != told_id:  # an id-only block still moves the resume position
                yield Event(event=event, data="\n".join(data), id=last_id)
                told_id = last_id
            event, data = "", []
            continue
        if line.startswith(":"):
            yield Event(comment=line[1:].strip(), id=last_id)
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value


__all__ = ["Event", "iter_events", "iter_lines"]
