"""The console's hourly aggregates through the real write path (RedisStore.write) on a real Redis."""

from __future__ import annotations

import time

import orjson
import pytest
from redis.cluster import RedisCluster

from otel_redis import aggregates, schema
from otel_redis.config import load_settings
from otel_redis.connection import make_client
from otel_redis.paths import index_path
from otel_redis.record import LogEntry, RequestFields
from otel_redis.store import RedisStore


def _req(ts_ms: int, status: int = 200, **kw) -> LogEntry:
    fields = {"method": "GET", "path": "/p", "status_code": status, "client_ip": "10.0.0.1", **kw}
    return LogEntry(timestamp_ns=ts_ms * 1_000_000, level="INFO", severity_number=9, body="req",
                    request=RequestFields(**fields))


def _error(ts_ms: int, message: str, kind: str = "ValueError") -> LogEntry:
    return LogEntry(timestamp_ns=ts_ms * 1_000_000, level="ERROR", severity_number=17, body=message,
                    attributes={"exception.type": kind, "exception.message": message})


def test_agents_referrers_ips_bytes_and_routes_are_counted_per_hour(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    store.write([
        _req(now, user_agent="curl/8", referrer="https://a.example/", bytes_sent=100, proxy_hostname="api.example",
             route="/items/{id}", path="/items/1", response_time_ms=10.0),
        _req(now, user_agent="curl/8", bytes_sent=50, proxy_hostname="api.example", route="/items/{id}",
             path="/items/2", response_time_ms=30.0, client_ip="10.0.0.2"),
        _req(now, status=404, path="/wp-login.php?x=1", user_agent="scanner"),
    ])
    assert r.hgetall(schema.stats_agents(hour)) == {"curl/8": "2", "scanner": "1"}
    assert r.hgetall(schema.stats_referrers(hour)) == {"https://a.example/": "1"}
    assert r.hgetall(schema.stats_client_ips(hour)) == {"10.0.0.1": "2", "10.0.0.2": "1"}
    assert r.hgetall(schema.stats_bytes(hour)) == {"_all": "150", "api.example": "150"}
    assert r.hgetall(schema.stats_not_found(hour)) == {"/wp-login.php": "1"}
    assert r.hgetall(schema.stats_route_count(hour)) == {"GET /items/{id}": "2"}
    assert r.hgetall(schema.stats_route_time(hour)) == {"GET /items/{id}": "40000"}
    for key in (schema.stats_agents(hour), schema.stats_bytes(hour)):
        assert settings.retention.stats < r.ttl(key) <= settings.retention.stats + 60


def test_10000_distinct_user_agents_and_referrers_stay_within_the_cap_and_every_request_is_counted(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    n = 10_000
    for start in range(0, n, 1000):  # several batches, as the exporter sends them
        store.write([
            _req(now, user_agent=f"agent-{i}", referrer=f"https://ref{i}.example/", client_ip=f"10.1.{i // 250}.{i % 250}")
            for i in range(start, start + 1000)
        ])
    for key in (schema.stats_agents(hour), schema.stats_referrers(hour), schema.stats_client_ips(hour)):
        counts = {k: int(v) for k, v in r.hgetall(key).items()}
        assert len(counts) == schema.AGG_CAP + 1, key  # the capped fields and _OTHER
        assert counts[schema.AGG_OTHER] == n - schema.AGG_CAP
        assert sum(counts.values()) == n
    assert not [k for k in r.scan_iter("stats:*agent-*")], "a client value became a key"


def test_long_values_are_cut_to_the_field_bound(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    store.write([_req(now, user_agent="x" * 5000)])
    (field,) = r.hkeys(schema.stats_agents(schema.hour_bucket(now)))
    assert field == "x" * schema.AGG_FIELD_MAX


def test_errors_are_grouped_by_type_and_normalised_message_with_the_latest_occurrence(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    store.write([
        _error(now, "user 17 not found"),
        _error(now + 1, "user 4242 not found"),
        _error(now + 2, "user 5 not found", kind="KeyError"),
        _req(now + 3, status=503, error="upstream timeout"),
        LogEntry(timestamp_ns=now * 1_000_000, level="INFO", severity_number=9, body="fine"),
    ])
    groups = {k: int(v) for k, v in r.hgetall(schema.stats_error_groups(hour)).items()}
    value_error = aggregates.fingerprint("ValueError", "user 1 not found")
    assert groups == {
        value_error: 2,
        aggregates.fingerprint("KeyError", "user 1 not found"): 1,
        aggregates.fingerprint("HTTP 503", "upstream timeout"): 1,
    }
    latest = orjson.loads(r.hget(schema.stats_error_latest(hour), value_error))
    assert latest["message"] == "user 4242 not found" and latest["ts"] == now + 1 and latest["type"] == "ValueError"


def test_aggregates_can_be_turned_off(settings, r):
    store = RedisStore(make_client(settings), settings.with_overrides(console_aggregates=False))
    now = int(time.time() * 1000)
    store.write([_req(now, user_agent="curl/8"), _error(now, "boom")])
    assert not [k for k in r.scan_iter("stats:*") if k.startswith(tuple(p[:-1] for p in schema.AGGREGATE_PATTERNS))]
    assert r.exists(schema.stats_requests(schema.hour_bucket(now)))


def test_plan_is_pure_and_counts_what_it_is_given():
    now = int(time.time() * 1000)
    entries = [_req(now, user_agent="a"), _req(now, user_agent="a"), _req(now, user_agent="b")]
    out = aggregates.plan(entries)
    assert out.counts[schema.stats_agents(schema.hour_bucket(now))] == {"a": 2, "b": 1}
    assert aggregates.plan(entries).counts == out.counts


def _counts(r, key: str) -> dict[str, int]:
    return {k: int(v) for k, v in r.hgetall(key).items()}


def test_a_batch_is_folded_into_one_script_call_per_hash_with_summed_increments():
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    entries = [_req(now, user_agent=f"agent-{i % 3}", bytes_sent=10, proxy_hostname="h") for i in range(300)]
    calls = aggregates.commands(entries, 60)
    agents = [c for c in calls if c[3] == schema.stats_agents(hour)]
    assert len(agents) == 1 and {c[0] for c in calls} == {"EVALSHA"} and {c[2] for c in calls} == {1}
    (call,) = agents
    assert dict(zip(call[6::2], call[7::2])) == {"agent-0": 100, "agent-1": 100, "agent-2": 100}
    (sent,) = [c for c in calls if c[3] == schema.stats_bytes(hour)]
    assert dict(zip(sent[6::2], sent[7::2])) == {"_all": 3000, "h": 3000}


def test_repeated_fields_in_one_batch_give_exact_totals(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    store.write([_req(now, user_agent=f"agent-{i % 7}", bytes_sent=3, proxy_hostname="h") for i in range(700)])
    store.write([_req(now, user_agent=f"agent-{i % 7}", bytes_sent=3, proxy_hostname="h") for i in range(70)])
    assert _counts(r, schema.stats_agents(hour)) == {f"agent-{i}": 110 for i in range(7)}
    assert _counts(r, schema.stats_bytes(hour)) == {"_all": 770 * 3, "h": 770 * 3}


def test_a_batch_crossing_the_cap_fills_it_in_order_and_sends_the_rest_to_other(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    cap = schema.AGG_CAP
    store.write([_req(now, user_agent=f"agent-{i}") for i in range(cap - 100)])
    # the next batch: each of 300 new agents twice, and every known agent once more
    batch = [_req(now, user_agent=f"agent-{i}") for i in range(cap - 100, cap + 200) for _ in range(2)]
    batch += [_req(now, user_agent=f"agent-{i}") for i in range(cap - 100)]
    store.write(batch)
    counts = _counts(r, schema.stats_agents(hour))
    assert len(counts) == cap + 1
    assert {counts[f"agent-{i}"] for i in range(cap - 100)} == {2}
    assert {counts[f"agent-{i}"] for i in range(cap - 100, cap)} == {2}  # the first new ones got a field
    assert not [i for i in range(cap, cap + 200) if f"agent-{i}" in counts]
    assert counts[schema.AGG_OTHER] == 400
    assert sum(counts.values()) == (cap - 100) + len(batch)


def test_a_full_hash_counts_known_fields_and_sends_new_ones_to_other_with_their_amounts(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    cap = schema.AGG_CAP
    store.write([_req(now, proxy_hostname=f"h{i}", bytes_sent=1) for i in range(cap + 10)])
    full = _counts(r, schema.stats_bytes(hour))  # "_all" takes one of the fields
    assert len(full) == cap + 1 and full[schema.AGG_OTHER] == 11 and full["_all"] == cap + 10
    store.write([_req(now, proxy_hostname="h0", bytes_sent=5), _req(now, proxy_hostname="h0", bytes_sent=5),
                 _req(now, proxy_hostname="new-a", bytes_sent=7), _req(now, proxy_hostname="new-b", bytes_sent=100)])
    counts = _counts(r, schema.stats_bytes(hour))
    assert len(counts) == cap + 1 and "new-a" not in counts
    assert counts["h0"] == 11 and counts["_all"] == cap + 10 + 117
    assert counts[schema.AGG_OTHER] == 11 + 107
    assert sum(v for k, v in counts.items() if k != "_all") == counts["_all"]


def test_latest_error_of_a_full_hash_is_kept_for_known_groups_only(r):
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    for script in aggregates.SCRIPTS:
        r.script_load(script)
    kinds = [f"Error{i}" for i in range(4)]
    for command in aggregates.commands([_error(now, "boom", kind) for kind in kinds[:3]], 60, cap=3):
        r.execute_command(*command)
    for command in aggregates.commands([_error(now + 5, "boom", kind) for kind in kinds], 60, cap=3):
        r.execute_command(*command)
    latest = {k: orjson.loads(v) for k, v in r.hgetall(schema.stats_error_latest(hour)).items()}
    assert set(latest) == {aggregates.fingerprint(k, "boom") for k in kinds[:3]}
    assert {v["ts"] for v in latest.values()} == {now + 5}
    groups = _counts(r, schema.stats_error_groups(hour))
    assert groups == {**{aggregates.fingerprint(k, "boom"): 2 for k in kinds[:3]}, schema.AGG_OTHER: 1}


def test_the_write_path_keeps_the_latest_error_of_a_full_hash_for_known_groups_only(settings, r):
    """The guarded batch's capped HSET (standalone server): a later batch crossing the cap."""
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    cap = schema.AGG_CAP
    store.write([_error(now, "boom", f"Error{i}") for i in range(cap - 2)])
    store.write([_error(now + 5, "boom", f"Error{i}") for i in (0, cap - 2, cap - 1, cap, cap + 1)])
    latest = {k: orjson.loads(v) for k, v in r.hgetall(schema.stats_error_latest(hour)).items()}
    assert len(latest) == cap
    assert latest[aggregates.fingerprint("Error0", "boom")]["ts"] == now + 5
    assert {latest[aggregates.fingerprint(f"Error{i}", "boom")]["ts"] for i in (cap - 2, cap - 1)} == {now + 5}
    assert not {aggregates.fingerprint(f"Error{i}", "boom") for i in (cap, cap + 1)} & set(latest)
    assert latest[aggregates.fingerprint("Error1", "boom")]["ts"] == now


def test_thousands_of_new_fields_in_one_batch_are_counted_exactly(r):
    """More distinct values in one call than one HSET chunk or Lua unpack takes."""
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    for script in aggregates.SCRIPTS:
        r.script_load(script)
    entries = [_req(now, user_agent=f"a{i}") for i in range(5000)]
    for command in aggregates.commands(entries, 60, cap=1200):
        r.execute_command(*command)
    counts = _counts(r, schema.stats_agents(hour))
    assert len(counts) == 1201 and counts[schema.AGG_OTHER] == 3800
    assert all(f"a{i}" in counts for i in range(1200))
    errors = [_error(now, "boom", f"Kind{i}") for i in range(1200)]
    for command in aggregates.commands(errors, 60, cap=5000):  # all fit: set in chunks
        r.execute_command(*command)
    assert r.hlen(schema.stats_error_latest(hour)) == 1200


def test_scripts_lost_by_redis_are_loaded_again_and_nothing_is_counted_twice(settings, r):
    store = RedisStore(make_client(settings), settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    store.write([_req(now, user_agent="curl/8", bytes_sent=2) for _ in range(5)])
    r.script_flush()
    result = store.write_batch([_req(now, user_agent="curl/8", bytes_sent=2) for _ in range(5)])
    assert not result.failed and result.index_errors == 0 and result.resent > 0
    assert _counts(r, schema.stats_agents(hour)) == {"curl/8": 10}
    assert _counts(r, schema.stats_bytes(hour)) == {"_all": 20}


@pytest.mark.cluster
def test_on_a_cluster_each_hash_is_capped_exactly_and_lost_scripts_are_loaded_again(redis_cluster_url, tmp_path):
    settings = load_settings({}).with_overrides(redis_url=redis_cluster_url, data_dir=tmp_path / "data")
    client = make_client(settings)
    store = RedisStore(client, settings)
    now = int(time.time() * 1000)
    hour = schema.hour_bucket(now)
    n = schema.AGG_CAP + 300
    store.write([_req(now, user_agent=f"agent-{i}", client_ip=f"10.2.{i // 250}.{i % 250}") for i in range(n)])
    reader = RedisCluster.from_url(redis_cluster_url, decode_responses=True)
    reader.execute_command("SCRIPT FLUSH", target_nodes=RedisCluster.ALL_NODES)
    result = store.write_batch([_req(now, user_agent=f"agent-{i}") for i in range(n)])
    assert not result.failed and result.index_errors == 0
    agents = _counts(reader, schema.stats_agents(hour))
    assert len(agents) == schema.AGG_CAP + 1 and sum(agents.values()) == 2 * n
    assert agents[schema.AGG_OTHER] == 2 * (n - schema.AGG_CAP)
    ips = _counts(reader, schema.stats_client_ips(hour))
    assert len(ips) == schema.AGG_CAP + 1 and "10.0.0.1" not in ips  # new when the hash was full
    assert ips[schema.AGG_OTHER] == (n - schema.AGG_CAP) + n and sum(ips.values()) == 2 * n
    client.close()
    reader.close()


def _capped_model(batches: list[list[str]], cap: int) -> dict[str, int]:
    """What the capped hash should hold after ``batches`` (each a list of values, one per request),
    applied in order: a batch's distinct values in first-seen order, a new one getting a field
    while the hash has fewer than ``cap`` (``_OTHER`` included), the rest summed into ``_OTHER``."""
    counts: dict[str, int] = {}
    for batch in batches:
        row: dict[str, int] = {}
        for value in batch:
            row[value] = row.get(value, 0) + 1
        other = 0
        for value, n in row.items():
            if value in counts or len(counts) < cap:
                counts[value] = counts.get(value, 0) + n
            else:
                other += n
        if other:
            counts[schema.AGG_OTHER] = counts.get(schema.AGG_OTHER, 0) + other
    return counts


_CHILD = """
import sys, time
from otel_redis.config import load_settings
from otel_redis.connection import make_client
from otel_redis.paths import index_path
from otel_redis.record import LogEntry, RequestFields
from otel_redis.store import RedisStore
settings = load_settings({}).with_overrides(redis_url=sys.argv[1], data_dir=sys.argv[2])
store = RedisStore(make_client(settings), settings)
now = int(sys.argv[3])
for line in sys.stdin.read().split("\\n--\\n"):
    store.write([LogEntry(timestamp_ns=now * 1_000_000, level="INFO", severity_number=9, body="req",
                          request=RequestFields(method="GET", path="/p", status_code=200, client_ip="10.0.0.1",
                                                user_agent=agent)) for agent in line.split("\\n")])
print(len(store.planner.known_fields))
"""


@pytest.mark.e2e
def test_other_counts_stay_exact_across_batches_and_writers_once_a_hash_is_known_full(settings, r, tmp_path):
    """Two stores in this process and one in a child process write batches of user agents in turn,
    across the cap: each writer learns the full hash's names from the capped script's reply and then
    folds into ``_OTHER`` itself. The hash must hold exactly what the capped script alone gives."""
    import subprocess
    import sys

    now = int(time.time() * 1000)
    key = schema.stats_agents(schema.hour_bucket(now))
    cap = schema.AGG_CAP
    a = RedisStore(make_client(settings), settings)
    b = RedisStore(make_client(settings), settings)

    def batch(seed: int) -> list[str]:  # known and new values, repeated, in a varied order
        return [f"agent-{(seed * 37 + i * 11) % (cap + 400)}" for i in range(300)] + [f"new-{seed}-{i % 5}" for i in range(20)]

    batches = [batch(s) for s in range(12)]
    writers = ["a", "b", "a", "child", "a", "b", "child", "a", "b", "a", "child", "b"]
    written: list[list[str]] = []  # the batches as written, in order
    for writer, values in zip(writers, batches):
        if writer == "child":  # the child's batches run at their turn: one child run per turn
            # two batches in one child run: the first learns the full hash's names, the second folds
            halves = [values[:160], values[160:]]
            written.extend(halves)
            out = subprocess.run([sys.executable, "-c", _CHILD, settings.redis_url, str(tmp_path / "child"), str(now)],
                                 input="\n--\n".join("\n".join(h) for h in halves), capture_output=True, text=True,
                                 check=True)
            assert out.stdout.strip() == "1"  # the child too learnt the hash's names (it was full)
            continue
        written.append(values)
        store = a if writer == "a" else b
        store.write([_req(now, user_agent=v) for v in values])
    assert a.planner.known_fields.get(key, time.time()) is not None  # the plain, folded path was taken
    assert b.planner.known_fields.get(key, time.time()) is not None
    counts = _counts(r, key)
    assert counts == _capped_model(written, cap)
    assert sum(counts.values()) == sum(map(len, batches)) and len(counts) == cap + 1


def _model(entries: list[LogEntry]) -> list[tuple[str, list[tuple[str, int]]]]:
    """plan()'s request counts, request by request: (key, [(field, amount)...]) in the order the
    keys and fields are first seen (it decides which values get a field of a nearly full hash)."""
    rows: dict[str, dict[str, int]] = {}

    def add(key: str, name: str, amount: int) -> None:
        row = rows.setdefault(key, {})
        row[name[: schema.AGG_FIELD_MAX]] = row.get(name[: schema.AGG_FIELD_MAX], 0) + amount

    hours: dict[str, list[RequestFields]] = {}
    for e in entries:
        if e.request is not None:
            hours.setdefault(schema.hour_bucket(e.timestamp_ns // 1_000_000), []).append(e.request)
    for hour, reqs in hours.items():
        groups: dict[str, list[RequestFields]] = {"": reqs}
        for q in reqs:
            if q.proxy_hostname:
                groups.setdefault(q.proxy_hostname, []).append(q)
        for host, group in groups.items():
            def key(kind: str, overall) -> str:
                return overall(hour) if not host else schema.stats_host_top(kind, host, hour)
            for kind, overall, value in (
                ("agents", schema.stats_agents, lambda q: q.user_agent),
                ("referrers", schema.stats_referrers, lambda q: q.referrer),
                ("ips", schema.stats_client_ips, lambda q: q.client_ip),
                ("not_found", schema.stats_not_found, lambda q: q.path.partition("?")[0] if q.status_code == 404 else None),
            ):
                for q in group:
                    v = value(q)
                    if v or (kind == "not_found" and v is not None):
                        add(key(kind, overall), v, 1)
            for q in group:
                if q.status_code not in (404, 405):
                    route = f"{q.method} {q.route or index_path(q.route, q.path, q.status_code)}"
                    add(key("route_n", schema.stats_route_count), route, 1)
                    add(key("route_us", schema.stats_route_time), route, int(q.response_time_ms * 1000))
        for q in reqs:
            if q.bytes_sent:
                add(schema.stats_bytes(hour), "_all", q.bytes_sent)
        for q in reqs:
            if q.bytes_sent and q.proxy_hostname:
                add(schema.stats_bytes(hour), q.proxy_hostname, q.bytes_sent)
    return sorted((k, list(row.items())) for k, row in rows.items())


@pytest.mark.parametrize("hosts", [0, 3, 12])
@pytest.mark.parametrize("hours", [1, 3])
def test_plan_counts_like_a_request_by_request_model_in_first_seen_order(hosts, hours):
    """plan() reads the requests as columns and groups them per hostname; its counts, and the order
    of each hash's fields, must be those of the plain per-request model (also with more hostnames
    than the per-hostname pass in C takes, batches over several hours, and log entries between)."""
    import random

    rng = random.Random(hosts * 10 + hours)
    base = (int(time.time() * 1000) // 3_600_000) * 3_600_000
    entries = []
    for i in range(600):
        ts = base + rng.randrange(hours) * 3_600_000 + i
        if rng.random() < 0.1:
            entries.append(_error(ts, f"boom {i % 4}"))
            continue
        entries.append(_req(
            ts, status=rng.choice([200, 200, 301, 404, 405, 500]),
            method=rng.choice(["GET", "POST"]), path=rng.choice(["", "?q=1", "/a?x=1", "/b/7", "/c/" + "x" * 300]),
            route=rng.choice(["", "/a", "/b/{n}", "/" + "r" * 300]), client_ip=rng.choice(["", "10.0.0.1", "10.0.0.2"]),
            proxy_hostname=rng.choice([""] + [f"h{n}.example" for n in range(hosts)]),
            user_agent=rng.choice(["", "curl/8", "u" * 400]), referrer=rng.choice(["", "https://a.example/"]),
            response_time_ms=rng.choice([0.0, 1.5, 2, rng.random() * 100]), bytes_sent=rng.choice([0, 0, 10, 100]),
        ))
    counts = aggregates.plan(entries).counts
    got = sorted((k, list(row.items())) for k, row in counts.items() if not k.startswith("stats:error"))
    assert got == _model(entries)
    assert any(k.startswith("stats:host_top") for k, _ in got) == bool(hosts)
