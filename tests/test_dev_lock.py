"""dev.py takes a lock around venv setup: a second first run waits for the one holding it."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


def test_second_run_waits_for_the_first_runs_setup(tmp_path: Path) -> None:
    shutil.copy(ROOT / "dev.py", tmp_path / "dev.py")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    os.symlink(sys.executable, bin_dir / "python")
    stamp = tmp_path / ".venv" / ".otel-redis-stamp"  # not written yet: the set-up is not finished
    with open(tmp_path / ".venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a first run in the middle of setting up the venv
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_REDIS_DEV_")}  # CI's 2nd venv
        proc = subprocess.Popen([sys.executable, str(tmp_path / "dev.py"), "shell", "-c", "print('ran')"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        time.sleep(1.5)
        assert proc.poll() is None, "dev.py did not wait for the setup lock"
        # the first run finishes: its stamp says the venv is current, so the waiting run installs nothing
        stamp.write_text(hashlib.sha256((tmp_path / "pyproject.toml").read_bytes()).hexdigest())
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert out.strip() == "ran"
    assert "installing" not in out
