#!/usr/bin/env python3
"""Set-up and run in one step, needing only Python 3.11+.

    python3 dev.py serve   # the service on an embedded Redis, with a demo emitting logs
    python3 dev.py test    # the whole test suite
    python3 dev.py bench   # the benchmarks (writes benchmarks/RESULTS.md)

The virtual environment lives in .venv and is reinstalled only when pyproject.toml changes.
``OTEL_REDIS_DEV_VENV`` names another folder for it and ``OTEL_REDIS_DEV_CONSTRAINTS`` a pip
constraints file it is installed with (CI runs the suite a second time on the oldest OpenTelemetry
releases allowed: ``.ci/otel-oldest.txt``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / os.environ.get("OTEL_REDIS_DEV_VENV", ".venv")
CONSTRAINTS = os.environ.get("OTEL_REDIS_DEV_CONSTRAINTS", "")
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


@contextlib.contextmanager
def _setup_lock():
    """Concurrent first runs (``serve`` and ``test`` at once) wait for one another's venv set-up."""
    if os.name == "nt":  # pragma: no cover - no fcntl; one set-up at a time is then up to the user
        yield
        return
    import fcntl

    with open(VENV.with_name(VENV.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _venv_current(stamp: Path, want: str) -> bool:
    return stamp.exists() and stamp.read_text() == want and PY.exists()


def _ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit("otel-redis needs Python 3.11 or newer")
    stamp = VENV / ".otel-redis-stamp"
    spec = (ROOT / "pyproject.toml").read_bytes()
    if CONSTRAINTS:
        spec += (ROOT / CONSTRAINTS).read_bytes()
    want = hashlib.sha256(spec).hexdigest()
    if _venv_current(stamp, want):
        return
    with _setup_lock():
        if _venv_current(stamp, want):  # another run finished the set-up while we waited
            return
        if not PY.exists():
            print(f"[dev] creating {VENV.name}", flush=True)
            venv.EnvBuilder(with_pip=True).create(VENV)
        print(f"[dev] installing otel-redis and its dependencies into {VENV.name}", flush=True)
        pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        pinned = ["-c", str(ROOT / CONSTRAINTS)] if CONSTRAINTS else []
        subprocess.run([*pip, "-e", f"{ROOT}[test]", *pinned], check=True)
        stamp.write_text(want)


def _exec(argv: list[str]) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    os.chdir(ROOT)
    if os.name == "nt":
        sys.exit(subprocess.run(argv, env=env).returncode)
    os.execve(argv[0], argv, env)


def main() -> None:
    cmd, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if cmd == "serve":
        _ensure_venv()
        _exec([str(BIN / "otel-redis"), "serve", "--demo", *rest])
    elif cmd == "test":
        _ensure_venv()
        _exec([str(PY), "-m", "pytest", "-n", "auto", "--dist", "loadgroup", *rest])
    elif cmd == "bench":
        _ensure_venv()
        _exec([str(PY), "-m", "benchmarks", *rest])
    elif cmd == "shell":
        _ensure_venv()
        _exec([str(BIN / "python"), *rest])
    else:
        print(__doc__)
        sys.exit(0 if cmd == "help" else 2)


if __name__ == "__main__":
    main()
