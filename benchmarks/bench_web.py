"""Request logging in WSGI and zero-code apps: Flask with ``instrument_app``, and the ``redis`` span
exporter under ``opentelemetry-instrument`` (Flask and FastAPI), each against its own baseline in
the same round.

Every variant is a fresh server process per round (gunicorn's threaded worker for Flask, uvicorn
for FastAPI), loaded by ``benchmarks.loadgen`` over keep-alive connections; rounds alternate the
variants, and each ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis

from otel_redis import schema
from otel_redis.embedded import free_port

from .harness import BenchContext, Section, fmt_ratio, verdict

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

_GUNICORN = [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "8",
             "--log-level", "warning", "-b"]
_UVICORN = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--no-access-log", "--host", "127.0.0.1",
            "--port"]
_INSTRUMENT = [str(BIN / "opentelemetry-instrument")]

#: variant -> (argv before the port, argv after it, whether opentelemetry-instrument wraps it, app variant,
#: OTEL_TRACES_EXPORTER)
VARIANTS: dict[str, tuple[list[str], list[str], bool, str, str]] = {
    "flask_plain": (_GUNICORN, ["benchmarks.apps.flask_web:app"], False, "plain", ""),
    "flask_ours": (_GUNICORN, ["benchmarks.apps.flask_web:app"], False, "ours", ""),
    "flask_otel": (_GUNICORN, ["benchmarks.apps.flask_web:app"], True, "plain", "none"),
    "flask_zero": (_GUNICORN, ["benchmarks.apps.flask_web:app"], True, "plain", "redis"),
    "fastapi_otel": (_UVICORN, ["benchmarks.apps.minimal:app"], True, "plain", "none"),
    "fastapi_zero": (_UVICORN, ["benchmarks.apps.minimal:app"], True, "plain", "redis"),
}


def _argv(variant: str, port: int) -> list[str]:
    before, after, instrumented, _app, _exporter = VARIANTS[variant]
    address = f"127.0.0.1:{port}" if before is _GUNICORN else str(port)
    return [*(_INSTRUMENT if instrumented else []), *before, address, *after]


def _env(variant: str, redis_url: str) -> dict[str, str]:
    _before, _after, instrumented, app_variant, exporter = VARIANTS[variant]
    env = {**os.environ, "BENCH_VARIANT": app_variant, "REDIS_URL": redis_url, "OTEL_REDIS_REVERSE_DNS": "false"}
    if instrumented:
        env.update(OTEL_TRACES_EXPORTER=exporter, OTEL_LOGS_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
                   OTEL_SERVICE_NAME=f"bench-{variant}")
    return env


def _serve(variant: str, port: int, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    from tests.servers import wait_http

    with open(log, "ab") as fh:
        proc = subprocess.Popen(_argv(variant, port), env=_env(variant, redis_url), stdout=fh,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, log=log)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(5)


def _tree_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process and its children (gunicorn's worker), from /proc."""
    try:
        pids = [pid, *(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
        total = 0
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return total / os.sysconf("SC_CLK_TCK")


def _load(url: str, seconds: float, connections: int) -> int:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen", url, str(seconds), str(connections)],
        capture_output=True, text=True, cwd=ROOT, timeout=seconds + 60, check=True,
    ).stdout.split()
    return int(out[0])


def _rates(ctx: BenchContext) -> dict[str, Any]:
    seconds = 2.0 if ctx.quick else 4.0
    rounds = 1 if ctx.quick else 5
    connections = 16
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    stored: dict[str, int] = {v: 0 for v in VARIANTS}
    with ctx.redis() as (_server, settings), tempfile.TemporaryDirectory(prefix="otel-redis-bench-web-") as tmp:
        log = Path(tmp) / "servers.log"
        client = redis.Redis.from_url(settings.redis_url or "")
        try:
            for _ in range(rounds):
                for variant in VARIANTS:
                    before = client.zcard(schema.IDX_REQ_ALL)
                    port = free_port()
                    app = _serve(variant, port, settings.redis_url or "", log)
                    try:
                        url = f"http://127.0.0.1:{port}/items/42"
                        _load(url, 1.0, connections)  # warm-up
                        cpu0 = _tree_cpu_s(app.pid)
                        done = _load(url, seconds, connections)
                        cpu1 = _tree_cpu_s(app.pid)
                        rates[variant].append(done / seconds)
                        if cpu0 is not None and cpu1 is not None and done:
                            cpu[variant].append((cpu1 - cpu0) / done * 1e6)
                    finally:
                        _stop(app)
                    stored[variant] += client.zcard(schema.IDX_REQ_ALL) - before
        finally:
            client.close()
    out: dict[str, Any] = {"rounds": rounds, "seconds": seconds, "connections": connections, "stored": stored}
    for v in VARIANTS:
        out[v] = statistics.median(rates[v])
        out[f"{v}_cpu_us"] = statistics.median(cpu[v]) if cpu[v] else None

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(rates[a], rates[b]))

    out["flask_ours_vs_plain"] = ratio("flask_ours", "flask_plain")
    out["flask_zero_vs_otel"] = ratio("flask_zero", "flask_otel")
    out["fastapi_zero_vs_otel"] = ratio("fastapi_zero", "fastapi_otel")
    return out


def run(ctx: BenchContext) -> Section:
    section = Section(
        title="Request logging in WSGI and zero-code apps",
        command="python3 dev.py bench --only web",
        headers=["measure", "ours", "baseline", "ratio", "goal", "verdict"],
    )
    r = _rates(ctx)

    def rate(variant: str) -> str:
        cpu = r[f"{variant}_cpu_us"]
        return f"{r[variant]:,.0f}/s" + (f", {cpu:.0f} us CPU/request" if cpu is not None else "")

    for label, ours, base, key in (
        ("Flask (gunicorn gthread) with configure() + instrument_app vs uninstrumented",
         "flask_ours", "flask_plain", "flask_ours_vs_plain"),
        ("Flask under opentelemetry-instrument: OTEL_TRACES_EXPORTER=redis vs no exporter",
         "flask_zero", "flask_otel", "flask_zero_vs_otel"),
        ("FastAPI (uvicorn) under opentelemetry-instrument: OTEL_TRACES_EXPORTER=redis vs no exporter",
         "fastapi_zero", "fastapi_otel", "fastapi_zero_vs_otel"),
    ):
        section.rows.append([label, rate(ours), rate(base), fmt_ratio(r[key]), ">= 0.8x", verdict(r[key] >= 0.8)])
    section.notes += [
        f"One fresh server process per variant and round, {r['connections']} keep-alive connections from "
        f"benchmarks/loadgen.py for {r['seconds']:g} s after a 1 s warm-up, {r['rounds']} alternating rounds; each "
        "ratio is the median of the per-round ratios. The load generator, Redis and the app share the machine's "
        "cores. CPU/request is the server's user + system time (master and worker) over the timed run.",
        "The zero-code baseline is the same app under opentelemetry-instrument with OTEL_TRACES_EXPORTER=none: "
        "OpenTelemetry's instrumentation already runs there, so the ratio is what storing the request records "
        "in Redis adds to it.",
        "Request records stored per variant over all rounds (a variant that logs must store some): "
        + ", ".join(f"{v} {n:,}" for v, n in r["stored"].items()) + ".",
    ]
    return section
