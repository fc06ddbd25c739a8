"""Retention job over 1,000,000 expired index members: duration and the longest single Redis command.

The longest command comes from SLOWLOG with ``slowlog-log-slower-than 0`` (every command is logged
with its execution time inside the server). Baseline in the same run: the naive single
``ZREMRANGEBYSCORE idx -inf (cutoff`` over the same index (the specification's cleanup). Goal: no
single step of the job blocks Redis for more than 10 ms.

A second row measures the dangling-member pass: 1,000,000 members within retention whose records no
longer exist (``ZSCAN`` + pipelined ``EXISTS`` + ``ZREM``), which has no single-command equivalent.

The index is filled with direct ``ZADD`` calls (benchmark set-up; the write path would also trim them).
"""

from __future__ import annotations

import time

import redis

from otel_redis import schema
from otel_redis.retention import CleanupSettings, run_cleanup

from .harness import BenchContext, Section, fmt_ratio, timed, verdict

GOAL_MS = 10.0
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
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", 1_000_000)
    client.slowlog_reset()


def _slowlog_summary(client: redis.Redis) -> tuple[float, str, int, int]:
    """(longest command in ms, that command, commands logged, commands over the goal).

    SLOWLOG keeps at most ``slowlog-max-len`` entries (1,000,000 here), so over a longer run the
    longest is taken from the last million commands; the command count comes from the job's report."""
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
    return longest, which, logged, over


def run(ctx: BenchContext) -> Section:
    n = 100_000 if ctx.quick else 1_000_000
    section = Section(
        title=f"Retention job: {n:,} expired index members",
        command="python3 dev.py bench --only retention",
        headers=["case", "duration", "longest single command", "commands", "over 10 ms", "goal", "verdict"],
    )
    with ctx.redis() as (_server, settings):
        client = redis.Redis.from_url(settings.redis_url)
        now = int(time.time() * 1000)
        cutoff = now - settings.retention.requests * 1000
        index = schema.IDX_REQ_ALL
        cfg = CleanupSettings()

        # baseline: one ZREMRANGEBYSCORE over the whole expired range
        _fill(client, index, n, cutoff - n - 1000)
        _start_slowlog(client)
        base_s = timed(lambda: client.zremrangebyscore(index, "-inf", f"({cutoff}"))
        base_ms, base_cmd, _, _ = _slowlog_summary(client)
        assert client.zcard(index) == 0
        section.rows.append([
            "baseline: single ZREMRANGEBYSCORE", f"{base_s:.2f} s", f"{base_ms:.1f} ms ({base_cmd})", "1",
            "1" if base_ms > GOAL_MS else "0", "", "",
        ])

        # the job over the same data
        _fill(client, index, n, cutoff - n - 1000)
        _start_slowlog(client)
        report = None

        def job() -> None:
            nonlocal report
            report = run_cleanup(client, settings, cfg, now_ms=now)

        job_s = timed(job)
        job_ms, job_cmd, _, over = _slowlog_summary(client)
        assert report is not None and report.members_past_retention == n, report
        logged = report.commands
        assert client.zcard(index) == 0
        ok = job_ms <= GOAL_MS
        section.rows.append([
            f"cleanup job (batch {cfg.batch})", f"{job_s:.2f} s", f"{job_ms:.2f} ms ({job_cmd})", f"{logged:,}",
            str(over), f"<= {GOAL_MS:.0f} ms", verdict(ok),
        ])

        # dangling pass: members within retention whose records are gone
        _fill(client, index, n, now - n - 1000)
        _start_slowlog(client)
        report = None
        dang_s = timed(job)
        dang_ms, dang_cmd, _, dover = _slowlog_summary(client)
        assert report is not None and report.members_dangling == n, report
        dlogged = report.commands
        section.rows.append([
            "cleanup job, dangling members", f"{dang_s:.2f} s", f"{dang_ms:.2f} ms ({dang_cmd})", f"{dlogged:,}",
            str(dover), f"<= {GOAL_MS:.0f} ms", verdict(dang_ms <= GOAL_MS),
        ])
        client.close()
    section.notes.append(
        f"Longest single command: job {job_ms:.2f} ms vs baseline {base_ms:.1f} ms "
        f"({fmt_ratio(base_ms / job_ms if job_ms else float('inf'))} shorter); the job takes "
        f"{fmt_ratio(job_s / base_s if base_s else float('inf'))} the baseline's wall time, spread over "
        f"{logged:,} commands that other clients interleave with."
    )
    section.notes.append(
        "Times per command are the server's own (SLOWLOG with slowlog-log-slower-than 0), excluding network; "
        "wall times include the round trips."
    )
    return section
