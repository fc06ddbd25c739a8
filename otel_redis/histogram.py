"""Response-time histograms: log-scale buckets stored as Redis hash fields (bucket -> count).

Bucket ``b`` holds values in ``[GAMMA**b, GAMMA**(b+1))`` microseconds, so any percentile read back
is within ``(GAMMA - 1) / 2`` (1 %) of the exact value. Hash fields merge by addition, which is what
makes sliding windows cheap: a window is the sum of the minute (and hour) hashes it covers.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

GAMMA = 1.02
_LOG_GAMMA = math.log(GAMMA)
ZERO_BUCKET = -1  # values below 1 microsecond


def bucket_of(ms: float) -> int:
    us = ms * 1000.0
    if us < 1.0:
        return ZERO_BUCKET
    return int(math.log(us) / _LOG_GAMMA)


def bucket_value_ms(bucket: int) -> float:
    """Representative value of a bucket (its geometric middle), in milliseconds."""
    if bucket == ZERO_BUCKET:
        return 0.0
    return GAMMA ** (bucket + 0.5) / 1000.0


def merge(hashes: Iterable[Mapping[bytes | str, bytes | str]]) -> dict[int, int]:
    """Sum HGETALL results of several histogram hashes."""
    total: dict[int, int] = {}
    for h in hashes:
        for field, count in h.items():
            b = int(field)
            total[b] = total.get(b, 0) + int(count)
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
