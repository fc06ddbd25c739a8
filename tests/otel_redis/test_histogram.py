"""histogram.py: log-scale response-time buckets, merged by addition, read back within 1 %."""

from __future__ import annotations

import math
import random

import pytest

from otel_redis import histogram as h


@pytest.mark.parametrize("ms", [0.001, 0.5, 1.0, 12.3, 250.0, 9_999.0, 3.6e6])
def test_a_value_read_back_from_its_bucket_is_within_one_percent(ms):
    assert h.bucket_value_ms(h.bucket_of(ms)) == pytest.approx(ms, rel=(h.GAMMA - 1) / 2 + 1e-9)


@pytest.mark.parametrize("ms", [0.0, 0.0009, -5.0, math.nan, -math.inf])
def test_tiny_negative_and_nan_values_fall_in_the_zero_bucket(ms):
    assert h.bucket_of(ms) == h.ZERO_BUCKET
    assert h.bucket_value_ms(h.ZERO_BUCKET) == 0.0


@pytest.mark.parametrize("ms", [1e12, 1e306, math.inf])
def test_absurd_values_share_the_top_bucket(ms):
    assert h.bucket_of(ms) == h.MAX_BUCKET


def test_buckets_are_ordered_like_their_values():
    values = sorted(random.Random(3).uniform(0.001, 60_000) for _ in range(500))
    buckets = [h.bucket_of(v) for v in values]
    assert buckets == sorted(buckets)


def test_merge_sums_fields_of_bytes_and_str_hashes_and_skips_the_error_counters():
    merged = h.merge([{b"10": b"2", b"4xx": b"1"}, {"10": "3", "11": "1", "5xx": "4"}])
    assert merged == {10: 5, 11: 1}
    assert h.error_counts([{b"4xx": b"1"}, {"5xx": "4", "4xx": "2"}]) == {"4xx": 3, "5xx": 4}


@pytest.mark.parametrize(("status", "field"), [(200, None), (399, None), (404, "4xx"), (500, "5xx"), (503, "5xx")])
def test_error_field(status, field):
    assert h.error_field(status) == field


def test_percentiles_are_nearest_rank_over_the_buckets():
    values = [float(v) for v in range(1, 101)]  # 1..100 ms
    counts: dict[int, int] = {}
    for v in values:
        counts[h.bucket_of(v)] = counts.get(h.bucket_of(v), 0) + 1
    got = h.percentiles(counts, (50, 95, 99, 100))
    for q, exact in ((50, 50.0), (95, 95.0), (99, 99.0), (100, 100.0)):
        assert got[q] == pytest.approx(exact, rel=0.011)
    summary = h.summary(counts)
    assert summary["count"] == 100 and summary["p50"] == pytest.approx(50.0, rel=0.011)


def test_an_empty_histogram_has_no_percentiles():
    assert h.percentiles({}) == {50: None, 95: None, 99: None}
    assert h.summary({}) == {"count": 0, "p50": None, "p95": None, "p99": None}


def test_histograms_stored_in_redis_merge_by_addition(r):
    """The point of the layout: HINCRBY per bucket in several hashes, HGETALL each, merge."""
    rng = random.Random(9)
    values = [rng.lognormvariate(3, 1) for _ in range(2000)]
    for i, v in enumerate(values):
        r.hincrby(f"hist:{i % 3}", str(h.bucket_of(v)), 1)
    merged = h.merge(r.hgetall(f"hist:{i}") for i in range(3))
    assert h.count(merged) == len(values)
    exact = sorted(values)[math.ceil(0.95 * len(values)) - 1]
    assert h.percentiles(merged, (95,))[95] == pytest.approx(exact, rel=0.011)
