"""What the web benchmarks share: pinning, server processes, the load generator, CPU per request,
alternating rounds.

Layout where the machine has at least two cores we may use: the app under test gets the first
core alone; the load generator, Redis, the OTLP sink and the app's helper processes (the writer
process) share the others. The rate ratio then compares what the app process does per request,
not how the app competes with its own load generator. On a single core everything shares it.

CPU per request is read from ``/proc/PID/stat`` (user + system) of the app process over the timed
run: with gunicorn the workers count as the app; with uvicorn the app's child processes are
helpers (the writer process), moved to the load cores and reported apart.

The load generator is ``wrk`` when installed (one thread, pinned to the load cores), else
``benchmarks/loadgen.py``. Rounds alternate the variants (a fresh server process per variant and
round); a ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GUNICORN = [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "8",
            "--log-level", "warning", "-b"]
UVICORN = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--no-access-log", "--host", "127.0.0.1",
           "--port"]
INSTRUMENT = [str(BIN / "opentelemetry-instrument")]


@dataclass(frozen=True)
class Cores:
    """Where the app runs and where everything else runs (both None: no pinning)."""

    app: frozenset[int] | None
    rest: frozenset[int] | None

    def describe(self) -> str:
        if self.app is None:
            return "not pinned (fewer than 2 usable cores): the app shares the cores with the load"
        return (f"the app pinned to core {','.join(map(str, sorted(self.app)))}; the load generator, Redis and "
                f"the helpers on {','.join(map(str, sorted(self.rest or ())))}")


def cores() -> Cores:
    try:
        usable = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return Cores(None, None)
    if len(usable) < 2:
        return Cores(None, None)
    return Cores(frozenset(usable[:1]), frozenset(usable[1:]))


def pin(pid: int, cpus: Iterable[int] | None) -> None:
    """Pin every thread of a process (threads started before keep their own affinity otherwise)."""
    if cpus is None:
        return
    cpus = set(cpus)
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc), [] elsewhere."""
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    except OSError:
        return []
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Variant:
    """One way of serving the benchmark app."""

    name: str
    argv: Callable[[int], list[str]]
    env: dict[str, str]
    #: child processes of the server are the app (gunicorn's workers) rather than helpers
    children_are_app: bool = False


def uvicorn(name: str, module: str, env: dict[str, str], instrumented: bool = False) -> Variant:
    return Variant(name, lambda port: [*(INSTRUMENT if instrumented else []), *UVICORN, str(port), module], env)


def gunicorn(name: str, module: str, env: dict[str, str], instrumented: bool = False) -> Variant:
    return Variant(name, lambda port: [*(INSTRUMENT if instrumented else []), *GUNICORN, f"127.0.0.1:{port}",
                                       module], env, children_are_app=True)


def serve(argv: Callable[[int], list[str]], env: dict[str, str], log: Path, cpus: Iterable[int] | None,
          health: str = "/healthz") -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv(port)`` on a free port, pinned (with every thread and process it starts) to ``cpus``."""
    from otel_redis.embedded import free_port
    from tests.servers import wait_http

    port = free_port()
    pinned = set(cpus) if cpus is not None else None
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            argv(port), env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
            start_new_session=True, preexec_fn=(lambda: os.sched_setaffinity(0, pinned)) if pinned else None,
        )
    wait_http(f"http://127.0.0.1:{port}{health}", proc=proc, log=log)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(5)


def load_tool() -> str:
    return "wrk" if shutil.which("wrk") else "benchmarks/loadgen.py"


_WRK_DONE = re.compile(r"(\d+) requests in")
_WRK_BAD = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def load(url: str, seconds: float, connections: int, cpus: Iterable[int] | None) -> int:
    """Completed requests in ``seconds`` over ``connections`` keep-alive connections."""
    wrk = shutil.which("wrk")
    if wrk:
        argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", url]
    else:
        argv = [sys.executable, "-m", "benchmarks.loadgen", url, str(seconds), str(connections)]
    pinned = set(cpus) if cpus is not None else None
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=seconds + 60, check=True,
                         preexec_fn=(lambda: os.sched_setaffinity(0, pinned)) if pinned else None).stdout
    if not wrk:
        return int(out.split()[0])
    bad = _WRK_BAD.search(out)
    if bad and int(bad.group(1)):
        raise RuntimeError(f"wrk saw {bad.group(1)} error responses from {url}")
    done = _WRK_DONE.search(out)
    if done is None:
        raise RuntimeError(f"unexpected wrk output: {out!r}")
    return int(done.group(1))


@dataclass
class Runs:
    """Per variant and round: requests/s, app CPU us per request, helper CPU us per request."""

    rounds: int
    seconds: float
    connections: int
    cores: Cores
    rate: dict[str, list[float]] = field(default_factory=dict)
    app_us: dict[str, list[float]] = field(default_factory=dict)
    helper_us: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.rate[name])

    def cpu(self, name: str) -> float:
        return statistics.median(self.app_us[name]) if self.app_us[name] else 0.0

    def helper(self, name: str) -> float:
        return statistics.median(self.helper_us[name]) if self.helper_us[name] else 0.0

    def ratio(self, a: str, b: str) -> float:
        """Median of the per-round ratios (each against the baseline of the same round)."""
        return statistics.median(x / y for x, y in zip(self.rate[a], self.rate[b]))

    def describe(self) -> str:
        return (f"{self.rounds} alternating rounds, one fresh server process per variant and round, "
                f"{self.connections} keep-alive connections from {load_tool()} for {self.seconds:g} s after a 1 s "
                f"warm-up; {self.cores.describe()}. CPU/request is the app process's user + system time over the "
                "timed run (/proc/PID/stat)")


def measure(variants: Sequence[Variant], log: Path, *, rounds: int, seconds: float, connections: int = 32,
            path: str = "/items/42", after_each: Callable[[str], None] | None = None) -> Runs:
    """Alternating rounds of every variant; the app on its core, its helpers and the load on the rest."""
    where = cores()
    runs = Runs(rounds, seconds, connections, where)
    for v in variants:
        runs.rate[v.name], runs.app_us[v.name], runs.helper_us[v.name] = [], [], []
    for _ in range(rounds):
        for v in variants:
            proc, port = serve(v.argv, v.env, log, where.app)
            try:
                url = f"http://127.0.0.1:{port}{path}"
                load(url, 1.0, connections, where.rest)  # warm-up (also starts a lazy writer process)
                helpers = [] if v.children_are_app else children(proc.pid)
                for helper in helpers:
                    pin(helper, where.rest)
                app = [proc.pid, *(children(proc.pid) if v.children_are_app else [])]
                before = sum(map(cpu_s, app)), sum(map(cpu_s, helpers))
                done = load(url, seconds, connections, where.rest)
                after = sum(map(cpu_s, app)), sum(map(cpu_s, helpers))
            finally:
                stop(proc)
            runs.rate[v.name].append(done / seconds)
            if done:
                runs.app_us[v.name].append((after[0] - before[0]) / done * 1e6)
                runs.helper_us[v.name].append((after[1] - before[1]) / done * 1e6)
            if after_each is not None:
                after_each(v.name)
    return runs
