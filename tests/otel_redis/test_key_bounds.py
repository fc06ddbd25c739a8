"""Bounded keys: 10,000 hostile values per dimension through real doors, on the real Redis.

Each test sends 10,000 records whose key-forming value (path, status, method, user, session, OAuth
client, component, event, long User-Agent) is new every time, then counts the keys (or hash fields)
that dimension made: never more than the documented bound (otel_redis/bounds.py,
docs/configuration.md) plus the one ``_OTHER``. Every record is still stored, with its raw value in
its hash, and a query by a value seen before the bound filled still finds exactly its records.

Doors: the in-process pipeline here (log calls and ``emit_request``, what the ASGI/WSGI middleware
and the span exporter hand to the store), a real uvicorn app with ``instrument_app`` below, and the
real OTLP receiver in tests/collector/test_receiver_bounds.py.
"""

from __future__ import annotations

import random
import time
from typing import Iterator

import httpx
import pytest
import redis

import otel_redis
from otel_redis import schema
from otel_redis.bounds import OTHER, BoundedNames, PathBound
from otel_redis.config import ConfigError, Settings, load_settings
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.connection import make_client
from otel_redis.request_log import emit_request
from otel_redis.store import RedisStore
from tests.servers import run_service, uvicorn_argv
from tests.waiting import wait_until

N = 10_000
BOUND = 40
PREFIXES = 5
#: characters a hostile sender uses: separators of keys and globs, spaces, controls, non-ASCII
HOSTILE = "abcxyz019:*?[]{}%/ \t\x00é中\ud800"


def hostile(rng: random.Random, i: int, size: int = 12) -> str:
    """A value unique by ``i`` made of hostile characters."""
    return "".join(rng.choice(HOSTILE) for _ in range(size)) + f"#{i}"


def count(r: redis.Redis, pattern: str) -> int:
    return sum(1 for _ in r.scan_iter(pattern, count=5000))


def bounded(settings: Settings) -> Settings:
    return settings.with_overrides(
        max_paths=BOUND, max_path_prefixes=PREFIXES, max_components=BOUND, max_events=BOUND,
        max_users_per_hour=BOUND, max_sessions_per_hour=BOUND, max_oauth_clients_per_hour=BOUND,
        max_user_agents_per_hour=BOUND, batch_delay_ms=10,
    )


@pytest.fixture
def counters() -> PipelineCounters:
    return PipelineCounters()


@pytest.fixture
def bounded_pipeline(settings: Settings, counters: PipelineCounters) -> Iterator[None]:
    """The real pipeline (processor, exporter, store) with small bounds, on the test's Redis."""
    small = bounded(settings)
    exporter = RedisLogRecordExporter(settings=small, counters=counters)
    otel_redis.configure(settings=small, exporter=exporter, set_global_provider=False)
    yield
    otel_redis.shutdown()


def flush_and_check(r: redis.Redis, counters: PipelineCounters, expected: int) -> None:
    """Every record stored exactly once, none dropped."""
    otel_redis.force_flush()
    assert counters.dropped == 0 and counters.internal_errors == 0
    assert r.zcard("idx:log:all") + r.zcard("idx:req:all") == expected


def requests_of(r: redis.Redis, index: str) -> list[dict[str, str]]:
    return [r.hgetall(k) for k in r.zrange(index, 0, -1)]


# ---------------------------------------------------------------------------- the bounds themselves


def test_bounded_names_pass_the_first_ones_and_empty_each_window():
    now = [7200.0]
    names = BoundedNames(2, window_s=3600, clock=lambda: now[0])
    assert [names(v) for v in ("a", "b", "c", "a")] == ["a", "b", OTHER, "a"]
    now[0] += 3600  # the next hour: room again
    assert [names(v) for v in ("c", "d", "e")] == ["c", "d", OTHER]
    assert names.overflowed == 2


def test_path_bound_collapses_to_the_first_segment_then_other():
    bound = PathBound(2, 1)
    assert bound("/items/{item_id}", "/items/1", 200) == "/items/{item_id}"  # templates as they are
    assert bound("", "/nope/x", 404) == "/{unmatched}"
    assert [bound("", p, 401) for p in ("/a/1", "/a/x", "/b/y", "/a/z", "/c/q", "/b/y")] == [
        "/a/{id}", "/a/x", "/b/*", OTHER, OTHER, "/b/*"]  # /a/* finds the prefixes full


# ---------------------------------------------------------------------------- in-process doors


def test_paths_of_any_status_are_bounded(bounded_pipeline, r, counters):
    rng = random.Random(1)
    ts = time.time_ns()
    emit_request(ts, "GET", "/known/page", 200)  # seen first: stays its own key
    for i in range(N):
        path = f"/{rng.choice(['private', 'spa', 'x' + str(i % 50)])}/{hostile(rng, i)}"
        emit_request(ts + i, rng.choice(["GET", "POST"]), path, rng.choice([200, 401, 403, 500, 302]))
    flush_and_check(r, counters, N + 1)
    # per method at most BOUND paths + PREFIXES first segments + _OTHER
    assert count(r, "idx:req:path:*") <= 2 * (BOUND + PREFIXES + 1)
    fields = [f for key in r.scan_iter("stats:paths:*") for f in r.hkeys(key)]
    assert len(fields) <= 2 * (BOUND + PREFIXES + 1)
    assert "GET _OTHER" in fields
    known = requests_of(r, schema.idx_req_path("GET", "/known/page"))
    assert [rec["path"] for rec in known] == ["/known/page"]
    # the raw path is in every record: the 10,000 distinct paths all come back
    raw = {rec["path"] for key in r.scan_iter("idx:req:path:*") for rec in requests_of(r, key)}
    assert len(raw) == N + 1


def test_status_codes_are_bounded_to_http_range(bounded_pipeline, r, counters):
    ts = time.time_ns()
    for i in range(N):
        emit_request(ts + i, "GET", "/s", i)  # 0..9999: 500 of them in 100-599
    flush_and_check(r, counters, N)
    assert count(r, "idx:req:status:*") == 500 + 1
    assert r.zcard(f"idx:req:status:{OTHER}") == N - 500
    assert r.zcard("idx:req:status:404") == 1
    fields = [f for key in r.scan_iter("stats:requests:*") for f in r.hkeys(key)]
    assert len(fields) <= 500 + 2 and f"status_{OTHER}" in fields
    odd = {rec["status_code"] for rec in requests_of(r, f"idx:req:status:{OTHER}")}
    assert len(odd) == N - 500 and "9999" in odd  # the raw code stays in the record


def test_methods_are_bounded_to_the_standard_ones(bounded_pipeline, r, counters):
    rng = random.Random(2)
    ts = time.time_ns()
    for i in range(N):
        emit_request(ts + i, "GET" if i == 0 else hostile(rng, i, 6), "/m", 200)
    flush_and_check(r, counters, N)
    assert sorted(r.scan_iter("idx:req:method:*")) == ["idx:req:method:GET", f"idx:req:method:{OTHER}"]
    assert len({rec["method"] for rec in requests_of(r, f"idx:req:method:{OTHER}")}) == N - 1


@pytest.mark.parametrize("dimension", ["user", "session", "client"])
def test_ids_of_requests_and_logs_are_bounded_per_hour(bounded_pipeline, r, counters, dimension):
    rng = random.Random(3)
    ts = time.time_ns()
    attribute = {"user": "user_id", "session": "session.id", "client": "oauth.client_id"}[dimension]
    log_attribute = {"user": "user_id", "session": "session_id", "client": "client_id"}[dimension]
    request_index = {"user": schema.idx_req_user, "session": schema.idx_req_session,
                     "client": schema.idx_req_client}[dimension]
    for i in range(N // 2):
        value = "known" if i == 0 else hostile(rng, i)
        if dimension == "user":
            emit_request(ts + i, "GET", "/u", 200, user_id=value)
        else:
            emit_request(ts + i, "GET", "/u", 200, extra={attribute: value})
        otel_redis.log_info("hello", component="c", **{log_attribute: value})
    flush_and_check(r, counters, N)
    assert count(r, f"idx:req:{dimension}:*") <= BOUND + 1
    assert count(r, f"idx:log:{dimension}:*") <= BOUND + 1
    assert r.zcard(request_index("known")) == 1 and r.zcard(schema.idx_log_field(dimension, "known")) == 1
    assert r.zcard(request_index(OTHER)) == N // 2 - BOUND


def test_components_and_events_from_log_calls_are_bounded(bounded_pipeline, r, counters):
    rng = random.Random(4)
    for i in range(N // 2):
        otel_redis.log_info("x", component="known" if i == 0 else hostile(rng, i))
        otel_redis.log_event("known" if i == 0 else hostile(rng, i))
    flush_and_check(r, counters, N)
    assert count(r, "idx:log:component:*") <= BOUND + 1
    assert count(r, "idx:log:event:*") <= BOUND + 1
    events = [f for key in r.scan_iter("stats:events:*") for f in r.hkeys(key)]
    assert len(events) <= BOUND + 1 and OTHER in events
    assert r.zcard(schema.idx_log_component("known")) == 1
    (key,) = r.zrange(schema.idx_log_event("known"), 0, -1)
    assert r.hget(key, "event") == "known"
    raw = {r.hget(k, "component") for k in r.zrange(schema.idx_log_component(OTHER), 0, -1)}
    assert len(raw) >= N // 2 - BOUND  # each record keeps its own component


def test_long_user_agents_are_shared_only_up_to_the_hourly_bound(bounded_pipeline, r, counters, settings):
    rng = random.Random(5)
    ts = time.time_ns()
    agents = [f"Mozilla/5.0 ({hostile(rng, i, 60)})" for i in range(N)]
    for i, ua in enumerate(agents):
        emit_request(ts + i, "GET", "/ua", 200, user_agent=ua)
    flush_and_check(r, counters, N)
    assert count(r, "val:*") <= BOUND + 1  # the resource may be one shared value too
    records = requests_of(r, "idx:req:all")
    assert sum("user_agent_ref" in rec for rec in records) == BOUND
    assert sum("user_agent" in rec for rec in records) == N - BOUND  # kept inline, not externalised
    store = RedisStore(make_client(settings), settings)
    got = {entry.request.user_agent for _k, entry in store.fetch(r.zrange("idx:req:all", 0, -1))}
    assert len(got) == N  # every record reads back its own User-Agent


# ---------------------------------------------------------------------------- a real uvicorn app


@pytest.fixture(scope="module")
def bounds_app(redis_server, tmp_path_factory):
    env = {
        "REDIS_URL": redis_server.url,
        "OTEL_REDIS_BATCH_DELAY_MS": "10",
        "OTEL_REDIS_REVERSE_DNS": "false",
        "OTEL_REDIS_MAX_PATHS": str(BOUND),
        "OTEL_REDIS_MAX_PATH_PREFIXES": str(PREFIXES),
    }
    with run_service(uvicorn_argv("tests.otel_redis.bounds_app:app"), env=env,
                     tmp_path=tmp_path_factory.mktemp("bounds-app"), name="bounds-app") as svc:
        yield svc


@pytest.fixture(scope="module")
def query_service(redis_server, tmp_path_factory):
    """The real query API (``otel-redis serve``) on the same Redis."""
    import sys
    from pathlib import Path

    tmp = tmp_path_factory.mktemp("bounds-query")
    env = {
        "REDIS_URL": redis_server.url,
        "OTEL_REDIS_DATA_DIR": str(tmp / "data"),
        "OTEL_REDIS_API_TOKENS": "bounds-read-token",
        "OTEL_REDIS_CLEANUP_INTERVAL_S": "0",
        "OTEL_REDIS_ALERTS_ENABLED": "false",
    }
    argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
    with run_service(argv, env=env, tmp_path=tmp, name="bounds-query") as svc:
        yield svc


@pytest.mark.e2e
def test_uvicorn_app_paths_refused_by_middleware_or_served_by_a_mount_are_bounded(bounds_app, query_service, r):
    rng = random.Random(6)
    letters = "abcdefghijklmnopqrstuvwxyz"
    with httpx.Client(base_url=bounds_app.base_url, timeout=30) as c:
        assert c.get("/items/42").status_code == 200
        statuses = set()
        for i in range(N):
            last = f"/{'private' if i % 2 else 'spa'}/" + "".join(rng.choice(letters) for _ in range(10)) + str(i)
            statuses.add(c.get(last).status_code)
    assert statuses == {200, 401}
    wait_until(lambda: r.zcard("idx:req:all") >= N + 1, interval=0.1, message=f"{N + 1} request records")
    assert r.zcard("idx:req:all") == N + 1
    assert count(r, "idx:req:path:*") <= BOUND + PREFIXES + 1 + 1  # + the route template
    fields = [f for key in r.scan_iter("stats:paths:*") for f in r.hkeys(key)]
    assert len(fields) <= BOUND + PREFIXES + 2
    assert {"GET /private/*", "GET /spa/*"} <= set(fields)
    assert len({rec["path"] for rec in requests_of(r, schema.idx_req_path("GET", "/private/*"))}) > N // 2 - BOUND
    # queries by a known route and by status still work, through the real query API
    auth = {"authorization": "Bearer bounds-read-token"}
    with httpx.Client(base_url=query_service.base_url, headers=auth, timeout=30) as q:
        by_route = q.get("/logs/path", params={"pattern": "/items/42"}).json()["records"]
        assert [rec["path"] for rec in by_route] == ["/items/42"]
        one = q.get("/logs/path", params={"pattern": last}).json()["records"]  # a path under /private/*
        assert [rec["path"] for rec in one] == [last]
        refused = q.get("/logs/status/401", params={"limit": 10}).json()["records"]
        assert len(refused) == 10 and all(rec["status_code"] == 401 for rec in refused)


def test_bounds_are_settings_read_from_the_environment():
    env = {"OTEL_REDIS_MAX_PATHS": "5", "OTEL_REDIS_MAX_PATH_PREFIXES": "6", "OTEL_REDIS_MAX_COMPONENTS": "7",
           "OTEL_REDIS_MAX_EVENTS": "8", "OTEL_REDIS_MAX_USERS_PER_HOUR": "9",
           "OTEL_REDIS_MAX_SESSIONS_PER_HOUR": "10", "OTEL_REDIS_MAX_OAUTH_CLIENTS_PER_HOUR": "11",
           "OTEL_REDIS_MAX_USER_AGENTS_PER_HOUR": "0", "OTEL_REDIS_MAX_CLIENT_HOSTNAMES_PER_HOUR": "12"}
    s = load_settings(env)
    assert (s.max_paths, s.max_path_prefixes, s.max_components, s.max_events, s.max_users_per_hour,
            s.max_sessions_per_hour, s.max_oauth_clients_per_hour, s.max_user_agents_per_hour,
            s.max_client_hostnames_per_hour) == (5, 6, 7, 8, 9, 10, 11, 0, 12)
    with pytest.raises(ConfigError, match="OTEL_REDIS_MAX_PATHS"):
        load_settings({"OTEL_REDIS_MAX_PATHS": "0"})
