"""The W3C ``traceparent`` header, as every web door continues a caller's trace from it."""

from __future__ import annotations

import re

_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def parse_traceparent(value: bytes) -> tuple[int, int, int] | None:
    """``(trace_id, parent_span_id, flags)`` of a W3C traceparent header, None when invalid."""
    m = _TRACEPARENT.fullmatch(value.strip())
    if m is None or m.group(1) == b"ff" or (m.group(1) == b"00" and m.group(5)):
        return None
    tid, sid = int(m.group(2), 16), int(m.group(3), 16)
    if not tid or not sid:
        return None
    return tid, sid, int(m.group(4), 16)
