"""Response-time histograms: log-scale buckets stored as Redis hash fields (bucket -> count).

Bucket ``b`` holds values in ``[GAMMA**b, GAMMA**(b+1))`` microseconds, so any percentile read back
is within ``(GAMMA - 1) / 2`` (1 %) of the exact value. Hash fields merge by addition, which is what
makes sliding windows cheap: a window is the sum of the minute (and hour) hashes it covers.

The same hashes count error responses in the fields :data:`ERROR_FIELDS` (``4xx``, ``5xx``), so one
read gives a window's request count, error count and percentiles, per hostname and per minute.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

GAMMA = 1.02
_LOG_GAMMA = math.log(GAMMA)
ZERO_BUCKET = -1  # values below 1 microsecond, negative values and NaN
#: values from this many microseconds up (about 31 years) share the top bucket: any float, even
#: infinity or 1e306, has a bucket, so one absurd response time cannot fail its batch
MAX_US = 1e15
MAX_BUCKET = int(math.log(MAX_US) / _LOG_GAMMA)
#: status-class counters kept beside the buckets (not buckets: merge() skips them)
ERROR_FIELDS = ("4xx", "5xx")
_ERROR_FIELDS_RAW = frozenset([*ERROR_FIELDS, *(f.encode() for f in ERROR_FIELDS)])


def error_field(status_code: int) -> str | None:
    """``4xx`` or ``5xx`` for an error status, else None."""
    if 400 <= status_code < 500:
        return "4xx"
    if status_code >= 500:
        return "5xx"
    return None


def bucket_of(ms: float) -> int:
    """The bucket of a response time; total: NaN and negatives fall in the zero bucket, huge values
    and infinity in :data:`MAX_BUCKET`."""
    us = ms * 1000.0
    if not us >= 1.0:  # also NaN
        return ZERO_BUCKET
    if us >= MAX_US:
        return MAX_BUCKET
    return int(math.log(us) / _LOG_GAMMA)


def bucket_value_ms(bucket: int) -> float:
    """Representative value of a bucket (its geometric middle), in milliseconds."""
    if bucket == ZERO_BUCKET:
        return 0.0
    return GAMMA ** (bucket + 0.5) / 1000.0


def merge(hashes: Iterable[Mapping[bytes | str, bytes | str]]) -> dict[int, int]:
    """Sum HGETALL results of several histogram hashes."""
    raw: dict[bytes | str, int] = {}
    for h in hashes:
        for field, count in h.items():
            raw[field] = raw.get(field, 0) + int(count)
    total: dict[int, int] = {}
    for field, count in raw.items():  # a few hundred distinct fields, however many hashes
        if field not in _ERROR_FIELDS_RAW:
            b = int(field)
            total[b] = total.get(b, 0) + count
    return total


def percentiles(counts: Mapping[int, int], qs: Iterable[float] = (50, 95, 99)) -> dict[float, float | None]:
    """Nearest-rank percentiles (q in 0..100) from merged bucket counts; None when empty."""
    n = sum(counts.values())
    qs = list(qs)
    if n == 0:
        return {q: None for q in qs}
    ordered = sorted(counts.items())
    out: dict[float, float | None] = {}
    for q in qs:
        rank = max(1, math.ceil(q / 100.0 * n))
        seen = 0
        for b, c in ordered:
            seen += c
            if seen >= rank:
                out[q] = bucket_value_ms(b)
                break
    return out


def count(counts: Mapping[int, int]) -> int:
    return sum(counts.values())


def error_counts(hashes: Iterable[Mapping[bytes | str, bytes | str]]) -> dict[str, int]:
    """Sum the :data:`ERROR_FIELDS` of several histogram hashes."""
    out = {name: 0 for name in ERROR_FIELDS}
    for h in hashes:
        for name in ERROR_FIELDS:
            value = h.get(name)
            if value is None:
                value = h.get(name.encode())  # type: ignore[call-overload]
            if value is not None:
                out[name] += int(value)
    return out


def summary(counts: Mapping[int, int], qs: Iterable[float] = (50, 95, 99)) -> dict[str, float | None]:
    """``{"count": n, "p50": ms, ...}`` of merged counts (percentiles None when empty)."""
    out: dict[str, float | None] = {"count": count(counts)}
    for q, value in percentiles(counts, qs).items():
        out[f"p{q:g}"] = None if value is None else round(value, 3)
    return out
