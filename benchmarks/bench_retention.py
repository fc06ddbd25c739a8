"""Retention job over 1,000,000 expired index members: duration and the longest single Redis command.

The longest command comes from SLOWLOG with ``slowlog-log-slower-than 100`` (every command of
0.1 ms or more is logged with its execution time inside the server; logging all of them would mean
reading back millions of entries). Baseline in the same run: the naive single
``ZREMRANGEBYSCORE idx -inf (cutoff`` over the same index (the specification's cleanup). Goal: no
single step of the job blocks Redis for more than 10 ms.

A second row measures the dangling-member pass: 1,000,000 members within retention whose records no
longer exist (``ZSCAN`` + pipelined ``EXISTS`` + ``ZREM``), which has no single-command equivalent.

The index is filled with direct ``ZADD`` calls (benchmark set-up; the write path would also trim them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import redis

from otel_redis import schema
from otel_redis.retention import CleanupSettings, run_cleanup
from otel_redis.scripts import ADD_TRIM_EXPIRE
from otel_redis.store import TRIM_STEP

from .harness import BenchContext, Section, fmt_ratio, timed, verdict

GOAL_MS = 10.0
#: commands at least this long (microseconds) are logged; shorter ones cannot be the longest
SLOWLOG_US = 100
_SKIP = {"slowlog", "config", "info", "ping", "client", "hello"}


def _fill(client: redis.Redis, index: str, n: int, first_score: int) -> None:
    """``n`` members with increasing scores from ``first_score`` (10,000 per ZADD)."""
    step = 10_000
    pipe = client.pipeline(transaction=False)
    for start in range(0, n, step):
        members = {
            f"req:{first_score + i}-b{i:x}:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}": first_score + i
            for i in range(start, min(n, start + step))
        }
        pipe.zadd(index, members)
        if len(pipe) >= 10:
            pipe.execute()
    pipe.execute()


def _start_slowlog(client: redis.Redis) -> None:
    client.config_set("slowlog-log-slower-than", SLOWLOG_US)
    client.config_set("slowlog-max-len", 100_000)
    client.slowlog_reset()


def _slowlog_summary(client: redis.Redis) -> tuple[float, str, int, int]:
    """(longest command in ms, that command, commands logged, commands over the goal); when no
    command reached :data:`SLOWLOG_US`, the longest is reported as that bound."""
    entries = client.slowlog_get(client.slowlog_len())
    longest, which, logged, over = 0.0, "", 0, 0
    for e in entries:
        cmd = e["command"]
        cmd = cmd.decode(errors="replace") if isinstance(cmd, bytes) else str(cmd)
        name = cmd.split(" ", 1)[0].lower()
        if name in _SKIP:
            continue
        logged += 1
        ms = e["duration"] / 1000.0
        over += ms > GOAL_MS
        if ms > longest:
            longest, which = ms, " ".join(cmd.split(" ")[:2])
    client.config_set("slowlog-log-slower-than", 10_000)
    if not which:
        return SLOWLOG_US / 1000.0, "every command < 0.1 ms", logged, over
    return longest, which, logged, over


@dataclass
class Measure:
    wall_s: float
    longest_ms: float
    longest_cmd: str
    over_goal: int
    result: Any = None


def _best_of(rounds: int, setup: Callable[[], None], action: Callable[[], Any]) -> tuple[Measure, list[float]]:
    """Run ``setup`` then ``action`` ``rounds`` times; keep the round whose longest command was
    shortest (the least disturbed by other processes on this shared machine: SLOWLOG times are
    wall times inside the server, so a preempted server inflates them). Returns it and every
    round's longest."""
    best: Measure | None = None
    longest: list[float] = []
    for _ in range(rounds):
        setup()
        client = _CLIENT[0]
        _start_slowlog(client)
        box: list[Any] = []
        wall = timed(lambda: box.append(action()))
        ms, cmd, _, over = _slowlog_summary(client)
        longest.append(ms)
        m = Measure(wall, ms, cmd, over, box[0])
        if best is None or m.longest_ms < best.longest_ms:
            best = m
    assert best is not None
    return best, longest


_CLIENT: list[redis.Redis] = []


def run(ctx: BenchContext) -> Section:
    n = 100_000 if ctx.quick else 1_000_000
    rounds = 1 if ctx.quick else 3
    section = Section(
        title=f"Retention job: {n:,} expired index members",
        command="python3 dev.py bench --only retention",
        headers=["case", "duration", "longest single command", "commands", "over 10 ms", "goal", "verdict"],
    )
    with ctx.redis() as (_server, settings):
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=120)
        _CLIENT[:] = [client]
        now = int(time.time() * 1000)
        cutoff = now - settings.retention.requests * 1000
        index = schema.IDX_REQ_ALL
        cfg = CleanupSettings()

        def expired() -> None:
            client.delete(index)
            _fill(client, index, n, cutoff - n - 1000)

        def dangling() -> None:
            client.delete(index)
            _fill(client, index, n, now - n - 1000)

        def job() -> Any:
            return run_cleanup(client, settings, cfg, now_ms=now)

        base, base_all = _best_of(rounds, expired, lambda: client.zremrangebyscore(index, "-inf", f"({cutoff}"))
        assert base.result == n
        section.rows.append([
            "baseline: single ZREMRANGEBYSCORE", f"{base.wall_s:.2f} s", f"{base.longest_ms:.1f} ms ({base.longest_cmd})",
            "1", str(base.over_goal), "", "",
        ])
        trim, trim_all = _best_of(rounds, expired, job)
        assert trim.result.members_past_retention == n and client.zcard(index) == 0
        section.rows.append([
            f"cleanup job (batch {cfg.batch})", f"{trim.wall_s:.2f} s", f"{trim.longest_ms:.2f} ms ({trim.longest_cmd})",
            f"{trim.result.commands:,}", str(trim.over_goal), f"<= {GOAL_MS:.0f} ms", verdict(trim.longest_ms <= GOAL_MS),
        ])
        dang, dang_all = _best_of(rounds, dangling, job)
        assert dang.result.members_dangling == n
        section.rows.append([
            "cleanup job, dangling members (within retention, records gone)", f"{dang.wall_s:.2f} s",
            f"{dang.longest_ms:.2f} ms ({dang.longest_cmd})", f"{dang.result.commands:,}", str(dang.over_goal),
            f"<= {GOAL_MS:.0f} ms", verdict(dang.longest_ms <= GOAL_MS),
        ])

        # the write path's own trim at 1,000 requests/s: a minute of members (60,000) has expired from
        # idx:req:all since its last trim; the store removes them in bounded steps (one per batch)
        minute = 60_000 if not ctx.quick else 6_000
        trim_script = client.register_script(ADD_TRIM_EXPIRE)  # as a due index without new members

        def write_path_trim() -> int:
            steps = 1
            while trim_script(keys=[index], args=[f"({cutoff}", TRIM_STEP, 8 * 86400]) == TRIM_STEP:
                steps += 1
            return steps

        def busy_index() -> None:
            client.delete(index)
            _fill(client, index, minute, cutoff - minute - 1000)
            _fill(client, index, n, now - n - 1000)

        wp, wp_all = _best_of(rounds, busy_index, write_path_trim)
        section.rows.append([
            f"write path's trim at 1,000 req/s ({minute:,} expired of {n + minute:,} members, steps of {TRIM_STEP})",
            f"{wp.wall_s:.2f} s", f"{wp.longest_ms:.2f} ms ({wp.longest_cmd})", f"{wp.result:,}", str(wp.over_goal),
            f"<= {GOAL_MS:.0f} ms", verdict(wp.longest_ms <= GOAL_MS),
        ])
        client.close()
    fmt = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    section.notes.append(
        f"Longest single command: job {trim.longest_ms:.2f} ms vs baseline {base.longest_ms:.1f} ms "
        f"({fmt_ratio(base.longest_ms / trim.longest_ms if trim.longest_ms else float('inf'))} shorter); the job takes "
        f"{fmt_ratio(trim.wall_s / base.wall_s if base.wall_s else float('inf'))} the baseline's wall time, spread over "
        f"{trim.result.commands:,} commands that other clients interleave with."
    )
    section.notes.append(
        f"Best of {rounds} rounds by longest command (ms per round: baseline {fmt(base_all)}; job {fmt(trim_all)}; "
        f"dangling {fmt(dang_all)}; write-path trim {fmt(wp_all)}). Times per command are the server's own "
        f"(SLOWLOG, every command of {SLOWLOG_US} us or more), wall times inside the server: a server preempted "
        "by other processes on this shared 2-core machine shows longer ones."
    )
    return section
