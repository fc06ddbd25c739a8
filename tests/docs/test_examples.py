"""Every example of the README and docs/ runs, as written, against a live ``otel-redis serve``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from otel_redis.embedded import EmbeddedRedis
from tests.docs.examples import Block, blocks, documents
from tests.servers import ROOT, free_port, run_service
from tests.waiting import wait_until

pytestmark = [pytest.mark.xdist_group("docs-examples")]

ALL = [b for path in documents(ROOT) for b in blocks(path)]
TOKEN = "docs-example-token"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A service with the demo running, and the environment an example sees."""
    base = tmp_path_factory.mktemp("docs-live")
    server = EmbeddedRedis(base / "redis", persist=False)
    server.start()
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {"REDIS_URL": server.url, "OTEL_REDIS_DATA_DIR": str(base / "data"), "OTEL_REDIS_API_TOKENS": TOKEN,
           "OTEL_REDIS_BATCH_DELAY_MS": "20"}
    argv = [str(bin_dir / "otel-redis"), "serve", "--demo", "--demo-interval", "0.05", "--port", "{port}", "--no-otlp"]
    try:
        with run_service(argv, env=env, port=port, tmp_path=base, name="docs-serve") as svc:
            url = svc.base_url
            wait_until(lambda: httpx.get(f"{url}/logs?hours=1&limit=1", headers={"Authorization": f"Bearer {TOKEN}"})
                       .json().get("records"), interval=0.1, message="the demo's first stored record")
            yield {
                "REDIS_URL": server.url,
                "OTEL_REDIS_API_URL": url, "OTEL_REDIS_API_TOKEN": TOKEN,
                "OTEL_REDIS_URL": url, "OTEL_REDIS_TOKEN": TOKEN,
                "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                "OTEL_REDIS_BATCH_DELAY_MS": "20",
            }
    finally:
        server.stop()


def test_the_docs_have_examples_to_run():
    assert len([b for b in ALL if b.skip is None]) >= 3, [b.id for b in ALL]


@pytest.mark.e2e
@pytest.mark.parametrize("block", ALL, ids=[b.id for b in ALL])
def test_example_runs_as_written(block: Block, live: dict[str, str], tmp_path: Path):
    if block.skip is not None:
        pytest.skip(f"marked no-run in the docs: {block.skip}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update(live)
    if block.lang == "python":
        argv, cwd = [sys.executable, "-c", block.code], tmp_path
    else:
        argv, cwd = ["bash", "-euo", "pipefail", "-c", block.code], ROOT
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{block.id} exited {proc.returncode}:\n{block.code}\n---\n{out}"
    for text in block.expect:
        assert text in out, f"{block.id}: {text!r} not in the output:\n{out}"
