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

ROOT = Path(__file__).resolve().parents[1]


def test_second_run_waits_for_the_lock(tmp_path: Path) -> None:
    shutil.copy(ROOT / "dev.py", tmp_path / "dev.py")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    os.symlink(sys.executable, bin_dir / "python")  # a ready venv: the stamp matches
    stamp = hashlib.sha256((tmp_path / "pyproject.toml").read_bytes()).hexdigest()
    (tmp_path / ".venv" / ".otel-redis-stamp").write_text(stamp)
    with open(tmp_path / ".venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a first run setting up the venv
        proc = subprocess.Popen([sys.executable, str(tmp_path / "dev.py"), "shell", "-c", "print('ran')"],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert proc.poll() is None, "dev.py did not wait for the setup lock"
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out.strip() == "ran"
