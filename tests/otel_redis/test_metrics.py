"""Window metrics, unique visitors and path ranking, checked against a direct computation over the
records written (real store, real Redis)."""

from __future__ import annotations

import math
import random
import time

import pytest
import redis

from otel_redis import histogram, metrics, schema
from otel_redis.path_ranking import rank_paths
from otel_redis.store import RedisStore
from tests.traffic import HOUR_MS, MINUTE_MS, request_entry, write

HOSTS = ("api.example.com", "auth.example.com")


def exact_percentile(values: list[float], q: float) -> float:
    """Nearest rank, the definition histogram.percentiles uses."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def assert_close(got: float | None, want: float) -> None:
    """Within the histogram's documented 1 % bucket error."""
    assert got is not None
    assert abs(got - want) <= 0.01 * want + 1e-9, (got, want)


@pytest.fixture
def store(settings) -> RedisStore:
    return RedisStore(redis.Redis.from_url(settings.redis_url), settings)


def _traffic(now: int, span_ms: int, n: int, seed: int = 7) -> list:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = now - rng.randrange(1, span_ms)
        host = HOSTS[i % 2]
        status = rng.choice([200] * 16 + [201, 404, 500, 503])
        rt = round(rng.lognormvariate(3.5, 0.9), 3)  # median ~33 ms, long tail
        ip = f"10.{i % 3}.{rng.randrange(40)}.{rng.randrange(5)}"
        out.append(request_entry(ts, status=status, rt_ms=rt, host=host, ip=ip, path=f"/items/{rng.randrange(9)}"))
    return out


@pytest.mark.parametrize("span_min,window_s", [(9, 600), (170, 3 * 3600)])
def test_window_metrics_match_a_direct_computation(store, r, span_min, window_s):
    """Short windows read minute hashes; long ones hour hashes inside and minutes at the edges."""
    now = int(time.time() * 1000)
    entries = _traffic(now, span_min * MINUTE_MS, 1500)
    write(store, entries)
    got = metrics.compute(r, window_s, end_ms=now)
    assert got.window.start_ms == (now - window_s * 1000) // MINUTE_MS * MINUTE_MS
    for host in (None, *HOSTS):
        mine = [e.request for e in entries if host is None or e.request.proxy_hostname == host]
        scope = got.overall if host is None else got.hostnames[host]
        assert scope.requests == len(mine)
        assert scope.errors == sum(q.status_code >= 400 for q in mine)
        assert scope.server_errors == sum(q.status_code >= 500 for q in mine)
        assert scope.error_rate == pytest.approx(scope.errors / len(mine))
        assert scope.requests_per_second == pytest.approx(len(mine) / ((now - got.window.start_ms) / 1000))
        times = [q.response_time_ms for q in mine]
        for q, value in ((50, scope.p50_ms), (95, scope.p95_ms), (99, scope.p99_ms)):
            assert_close(value, exact_percentile(times, q))
        ips = {q.client_ip for q in mine}
        assert abs(scope.unique_visitors - len(ips)) <= max(1, 0.02 * len(ips))
    assert set(got.hostnames) == set(HOSTS)


def test_window_excludes_requests_before_it(store, r):
    now = int(time.time() * 1000)
    write(store, [request_entry(now - 2 * HOUR_MS, rt_ms=900.0)] * 3 + [request_entry(now - 1000, rt_ms=10.0)])
    got = metrics.compute(r, 300, end_ms=now)
    assert got.overall.requests == 1
    assert_close(got.overall.p99_ms, 10.0)
    empty = metrics.compute(r, 60, end_ms=now - 10 * HOUR_MS)
    assert empty.overall.requests == 0 and empty.overall.p50_ms is None and empty.overall.error_rate == 0.0
    one = metrics.compute(r, 300, end_ms=now, hostname="api.example.com")
    assert list(one.hostnames) == ["api.example.com"] and one.hostnames["api.example.com"].requests == 1


def test_union_of_many_hyperloglogs_is_counted_in_chunks(r):
    keys = [schema.stats_unique_ips(f"h{i}.example.com", "20260101:00") for i in range(metrics.MERGE_CHUNK * 2 + 5)]
    expected = set()
    for i, key in enumerate(keys):
        ips = [f"10.0.{i % 4}.{j}" for j in range(30)]  # heavy overlap between keys
        expected.update(ips)
        r.pfadd(key, *ips)
    assert abs(metrics.count_union(r, keys) - len(expected)) <= max(1, 0.02 * len(expected))
    assert metrics.count_union(r, keys[:1]) == 30
    assert metrics.count_union(r, [*keys[:2], "stats:unique_ips:none:20260101:00"]) == 60
    assert metrics.count_union(r, []) == 0
    assert not list(r.scan_iter(match="tmp:*"))  # scratch copies are gone


def test_paths_are_ranked_by_count_over_the_window(store, r):
    now = int(time.time() * 1000)
    entries = (
        [request_entry(now - 1000, path=f"/users/{i}/orders") for i in range(7)]
        + [request_entry(now - 1000, path="/users/550e8400-e29b-41d4-a716-446655440000") for _ in range(3)]
        + [request_entry(now - 1000, method="POST", path="/login", route="/login") for _ in range(5)]
        + [request_entry(now - 1000, path=f"/nope/{i}", status=404) for i in range(2)]
        + [request_entry(now - 30 * HOUR_MS, path="/old") for _ in range(50)]
    )
    write(store, entries)
    ranked = rank_paths(r, metrics.Window.ending(3600, now), limit=3)
    assert ranked["total"] == 17
    assert [(p["method"], p["pattern"], p["count"]) for p in ranked["patterns"]] == [
        ("GET", "/users/{id}/orders", 7),
        ("POST", "/login", 5),
        ("GET", "/users/{uuid}", 3),
    ]
    only_post = rank_paths(r, metrics.Window.ending(3600, now), method="post")
    assert only_post["total"] == 5
    assert ranked["patterns"][0]["share"] == pytest.approx(7 / 17)


def test_histogram_error_fields_do_not_disturb_percentiles(store, r):
    now = int(time.time() * 1000)
    write(store, [request_entry(now - 10, status=500, rt_ms=100.0), request_entry(now - 10, status=404, rt_ms=100.0)])
    h = r.hgetall(schema.stats_rt_all(schema.minute_bucket(now - 10)))
    assert histogram.error_counts([h]) == {"4xx": 1, "5xx": 1}
    assert histogram.count(histogram.merge([h])) == 2


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("5m", 300), ("2h", 7200), ("7d", 604800), ("1.5h", 5400)])
def test_parse_duration(text, seconds):
    assert metrics.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "0", "400d", "5x", "Inf", "nan", "-inf", "1e400h"])
def test_parse_duration_rejects_bad_values(text):
    with pytest.raises(ValueError, match="invalid duration"):
        metrics.parse_duration(text)
