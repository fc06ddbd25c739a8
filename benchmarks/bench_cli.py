"""CPU of one CLI query: ``otel-redis logs recent`` against a running service, vs ``python -c pass``.

Each round runs the bare interpreter and the CLI query once, alternating, so machine load hits both
alike; user+sys CPU of each child comes from ``os.wait4``. The service (``otel-redis serve`` on a
private Redis, a few records stored) is started once, outside the measurement. Goal: a CLI query
costs at most 0.3 s of CPU (the figure users feel as start-up lag); the bare interpreter's cost is
shown beside it as the floor no Python CLI can go below.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .harness import BenchContext, Section, verdict

GOAL_S = 0.3
BIN = Path(sys.executable).parent


def _cpu(argv: list[str], env: dict[str, str]) -> float:
    """user+sys seconds of one run of ``argv`` (which must succeed)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {err}")
    return usage.ru_utime + usage.ru_stime


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("otel-redis serve exited at start")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("otel-redis serve did not answer /healthz")


def run(ctx: BenchContext) -> Section:
    rounds = 5 if ctx.quick else 20
    from otel_redis.embedded import free_port

    with ctx.redis() as (server, _settings), tempfile.TemporaryDirectory(prefix="otel-redis-bench-cli-") as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_REDIS_API")}
        env.update(REDIS_URL=server.url, OTEL_REDIS_DATA_DIR=tmp, NO_COLOR="1")
        serve = subprocess.Popen(
            [str(BIN / "otel-redis"), "serve", "--port", str(port), "--no-otlp"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, serve)
            query = [str(BIN / "otel-redis"), "logs", "recent", "--url", url]
            subprocess.run([str(BIN / "otel-redis"), "logs", "test", "--url", url], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            bare, cli = [], []
            for _ in range(rounds):
                bare.append(_cpu([sys.executable, "-c", "pass"], env))
                cli.append(_cpu(query, env))
        finally:
            serve.terminate()
            serve.wait(timeout=30)
    med_bare, med_cli = statistics.median(bare), statistics.median(cli)
    section = Section(
        title="CLI query CPU (user+sys per call)",
        command="python -m benchmarks --only bench_cli",
        headers=["what", "median s", "min s", "max s", "rounds"],
    )
    section.rows.append(["`python -c pass`", f"{med_bare:.3f}", f"{min(bare):.3f}", f"{max(bare):.3f}", str(rounds)])
    section.rows.append(["`otel-redis logs recent`", f"{med_cli:.3f}", f"{min(cli):.3f}", f"{max(cli):.3f}", str(rounds)])
    section.notes.append(f"CLI minus bare interpreter: {med_cli - med_bare:.3f} s (median)")
    section.notes.append(f"goal ≤ {GOAL_S} s per call: {verdict(med_cli <= GOAL_S)}")
    return section
