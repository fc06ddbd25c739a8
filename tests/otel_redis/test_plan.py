"""The write path's planner as data, without Redis: what one batch of entries becomes.

The store's tests check what Redis holds after a write; these check the plan itself (commands,
guarded ops, record positions, shards), so a planning mistake is seen without a server.
"""

from __future__ import annotations

import time
from typing import Any

from redis.crc import key_slot

from otel_redis import schema
from otel_redis.bounds import OTHER
from otel_redis.config import load_settings
from otel_redis.plan import EARLY_SEND_RECORDS, Plan, Planner
from otel_redis.record import LogEntry, RequestFields
from otel_redis.scripts import ADD_TRIM_EXPIRE_SHA, HINCRBY_PAIRS_SHA
from otel_redis.transport_cluster import as_is

NOW_MS = int(time.time() * 1000)
MINUTE = schema.minute_bucket(NOW_MS)
HOUR = MINUTE[:-2]


def _settings(**kw: Any):
    return load_settings({}).with_overrides(console_aggregates=False, **kw)


def _planner(cluster: bool = False, shards: int = 1, **kw: Any) -> Planner:
    """A planner whose commands stay argument tuples (the cluster transport's ``pack``)."""
    planner = Planner(_settings(**kw), as_is, cluster)
    planner.shards = shards
    planner.shard_order = list(range(shards))
    return planner


def _req(status: int = 200, ip: str = "10.0.0.1", **kw: Any) -> LogEntry:
    return LogEntry(timestamp_ns=NOW_MS * 1_000_000, level="INFO", severity_number=9, body="req",
                    request=RequestFields(method="GET", path="/p", status_code=status, client_ip=ip,
                                          response_time_ms=kw.pop("rt", 12.0), **kw))


def _log(**kw: Any) -> LogEntry:
    return LogEntry(timestamp_ns=NOW_MS * 1_000_000, level=kw.pop("level", "INFO"),
                    severity_number=kw.pop("sev", 9), body="m", **kw)


def _members(plan: Plan) -> dict[str, list[str]]:
    """index key -> record keys added to it (plain ZADD or the add-trim-expire script)."""
    out: dict[str, list[str]] = {}
    for cmd in plan.args:
        if cmd[0] == "ZADD" and not cmd[1].startswith("idx:trace:"):
            out.setdefault(cmd[1], []).extend(cmd[3::2])
        elif cmd[0] == "EVALSHA" and cmd[1] == ADD_TRIM_EXPIRE_SHA:
            out.setdefault(cmd[3], []).extend(cmd[8::2])
    return out


def _ops(plan: Plan) -> list[list[Any]]:
    """The non-idempotent ops: the guarded call's (standalone) or the plain commands (Cluster)."""
    if plan.guarded is not None:
        return plan.guarded.ops()
    out: list[list[Any]] = []
    for cmd in plan.args:
        if cmd[0] == "XADD":
            out.append(["X", cmd[1], cmd[4]])
        elif cmd[0] == "HINCRBY":
            out.append(["H", *cmd[1:]])
        elif cmd[0] == "EVALSHA" and cmd[1] == HINCRBY_PAIRS_SHA:
            out.append(["P", cmd[3], len(cmd) - 4, *cmd[4:]])
    return out


def _counters(plan: Plan) -> dict[tuple[str, str], int]:
    return {(op[1], op[2]): op[3] for op in _ops(plan) if op[0] == "H"}


def _streams(plan: Plan) -> list[tuple[str, str]]:
    return [(op[1], op[2]) for op in _ops(plan) if op[0] == "X"]


def test_one_request_gives_exactly_its_record_indexes_counters_and_stream_entry():
    plan = _planner().plan([_req(proxy_hostname="api.example.com")])
    (key,) = plan.keys
    assert key.startswith("req:") and key.endswith(":10.0.0.1")
    hset, expire = plan.args[plan.record_at[0]], plan.args[plan.record_at[0] + 1]
    assert hset[:2] == ("HSET", key) and expire[:2] == ("EXPIREAT", key)
    assert _members(plan) == {index: [key] for index in (  # 12 ms: not slow
        "idx:req:all", "idx:req:status:200", "idx:req:method:GET", "idx:req:path:GET:/p",
        "idx:req:ip:10.0.0.1", "idx:req:host:api.example.com")}
    assert _streams(plan) == [("stream:requests", key)]
    assert _counters(plan) == {
        (f"stats:requests:{HOUR}", "total"): 1, (f"stats:requests:{HOUR}", "status_200"): 1,
        (f"stats:paths:{HOUR}", "GET /p"): 1,
    }
    ops = plan.guarded.ops()
    assert ["C", 3, "PFADD", f"stats:unique_ips:api.example.com:{HOUR}", "10.0.0.1"] in ops
    histograms = {op[1] for op in ops if op[0] == "P"}
    assert histograms == {schema.stats_rt_all(MINUTE), schema.stats_rt_all(HOUR),
                          schema.stats_rt("api.example.com", MINUTE), schema.stats_rt("api.example.com", HOUR)}
    assert plan.long_streams == ["stream:requests"]
    # standalone: the guarded call is the batch's last command, every key has the specification's name
    assert plan.args[-1][0] == "EVALSHA" and plan.args[-1][3].startswith("wp:batch:")
    assert not any("{" in str(cmd[1]) for cmd in plan.args[:-1] if cmd[1] != ADD_TRIM_EXPIRE_SHA)


def test_an_index_gets_its_trim_and_expiry_once_per_interval():
    planner = _planner()
    first, second = planner.plan([_req()]), planner.plan([_req()])
    assert {cmd[3] for cmd in first.args if cmd[0] == "EVALSHA" and cmd[1] == ADD_TRIM_EXPIRE_SHA} >= {"idx:req:all"}
    assert [cmd for cmd in second.args if cmd[1] == ADD_TRIM_EXPIRE_SHA] == []
    assert ("ZADD", "idx:req:all", str(NOW_MS), second.keys[0]) in second.args
    assert second.long_streams == []  # the stream's trim was due once, in the first batch
    planner.refresh.clear()
    assert any(cmd[1] == ADD_TRIM_EXPIRE_SHA for cmd in planner.plan([_req()]).args)


def test_error_records_go_to_the_error_indexes_with_the_error_retention():
    settings = _settings()
    plan = _planner().plan([_req(status=503, rt=settings.slow_request_ms + 1), _log(level="ERROR", sev=17), _log()])
    req, err_log, info_log = plan.keys
    members = _members(plan)
    assert members["idx:req:errors"] == [req]
    assert members["idx:req:slow"] == [req]
    assert members["idx:log:errors"] == [err_log]
    assert members["idx:log:all"] == [err_log, info_log]
    assert members["idx:log:level:ERROR"] == [err_log]
    counters = _counters(plan)
    assert counters[(f"stats:errors:{HOUR}", "503")] == 1
    assert counters[(f"stats:logs:{HOUR}", "total")] == 2
    assert counters[(f"stats:logs:{HOUR}", "level_ERROR")] == 1
    expiries = {cmd[1]: cmd[2] for cmd in plan.args if cmd[0] == "EXPIREAT"}
    assert expiries[req] == NOW_MS // 1000 + settings.retention.errors
    assert expiries[err_log] == NOW_MS // 1000 + settings.retention.errors
    assert expiries[info_log] == NOW_MS // 1000 + settings.retention.requests


def test_sender_chosen_key_parts_are_bounded():
    planner = _planner(max_components=2, max_events=1)
    plan = planner.plan([_log(component=f"c{i}", event=f"e{i}") for i in range(4)])
    members = _members(plan)
    assert {k for k in members if k.startswith("idx:log:component:")} == {
        "idx:log:component:c0", "idx:log:component:c1", f"idx:log:component:{OTHER}"}
    assert len(members[f"idx:log:component:{OTHER}"]) == 2
    assert {field for (key, field) in _counters(plan) if key.startswith("stats:events:")} == {"e0", OTHER}
    bad_ip = planner.plan([_req(ip="not-an-ip")])
    assert not any(k.startswith("idx:req:ip:") for k in _members(bad_ip))


def test_slices_leave_early_and_each_slice_adds_its_members_once():
    flushes = []
    plan = Plan()
    _planner().plan((_req() for _ in range(200)), plan, flush=lambda: flushes.append(len(plan.args)))
    slices = -(-200 // EARLY_SEND_RECORDS)
    assert len(flushes) == slices - 1
    adds = [cmd for cmd in plan.args if cmd[0] in ("ZADD", "EVALSHA") and "idx:req:all" in cmd[:4]]
    assert len(adds) == slices
    assert sorted(_members(plan)["idx:req:all"]) == sorted(plan.keys)
    assert len(set(plan.keys)) == 200
    # counters are summed over the batch, not per slice
    assert _counters(plan)[(f"stats:requests:{HOUR}", "total")] == 200


def test_cluster_mode_writes_each_slice_to_one_shard_in_one_slot():
    planner = _planner(cluster=True, shards=3)
    n = 3 * EARLY_SEND_RECORDS
    plan = planner.plan([_req(proxy_hostname="h.example") for _ in range(n)], flush=lambda: None)
    assert plan.guarded is None  # no guarded call spanning slots on a Cluster
    assert [first for first, _shard in plan.shards] == [0, EARLY_SEND_RECORDS, 2 * EARLY_SEND_RECORDS]
    assert sorted(shard for _first, shard in plan.shards) == [0, 1, 2]
    streams = _streams(plan)
    assert len(streams) == n and {key for _s, key in streams} == set(plan.keys)
    for position, (first, shard) in enumerate(plan.shards):
        last = plan.shards[position + 1][0] if position + 1 < len(plan.shards) else n
        stream = schema.shard_key(schema.STREAM_REQUESTS, shard, 3)
        assert {s for s, key in streams if plan.keys.index(key) in range(first, last)} == {stream}
    # every hot key is a hash-tagged part; the parts of one shard share one slot
    hot_writes = [cmd for cmd in plan.args if cmd[0] in ("ZADD", "XADD", "HINCRBY")]
    by_tag: dict[str, set[int]] = {}
    for cmd in hot_writes:
        key = cmd[1]
        if schema.is_hot(key.split(":{")[0]) and not key.startswith("idx:trace:"):
            assert "{" in key, key
            by_tag.setdefault(key[key.index("{"):], set()).add(key_slot(key.encode()))
    assert len(by_tag) == 3 and all(len(slots) == 1 for slots in by_tag.values())
    total = sum(amount for (key, field), amount in _counters(plan).items()
                if key.startswith("stats:requests:") and field == "total")
    assert total == n
