"""A CLI query stays cheap to start: it never imports the server side (FastAPI, query_api, collector) nor httpx
(plain queries use the standard library),
also when its token comes from the token file the service generated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from otel_redis.cli import main
code = main(["logs", "recent", "--url", "http://127.0.0.1:9"])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("fastapi", "query_api", "collector", "uvicorn", "httpx", "httpcore"))
print("EXIT", code)
print("HEAVY", ",".join(heavy))
"""


def test_query_with_token_file_imports_no_server_modules(tmp_path: Path) -> None:
    (tmp_path / "api-token").write_text("file-token\n")
    env = {"PATH": "/usr/bin:/bin", "OTEL_REDIS_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60)
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in proc.stdout.splitlines())
    assert lines.get("EXIT") not in (None, "0"), proc.stdout + proc.stderr  # nothing listens on port 9
    assert "Traceback" not in proc.stderr
    assert lines.get("HEAVY") == "", lines.get("HEAVY")
