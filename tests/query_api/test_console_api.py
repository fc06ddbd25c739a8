"""The console's JSON endpoints and `otel-redis logs top` against the real service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from .conftest import READ_TOKEN, Stack, emit_request

pytestmark = pytest.mark.xdist_group("console-api")
CLI = str(Path(sys.executable).parent / "otel-redis")


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> Stack:
    stack.ensure_writer()
    for i in range(6):
        emit_request("GET /items", method="GET", path=f"/items/{i}", route="/items/{id}", status_code=200 if i else 500,
                     client_ip=f"10.9.0.{i % 2}", user_agent="curl/8" if i % 3 else "Mozilla/5.0", bytes_sent=100,
                     response_time_ms=10.0 * (i + 1), proxy_hostname="api.example")
    stack.flush()
    return stack


def test_top_agents_and_ips_count_every_request(traffic):
    with traffic.client() as c:
        agents = c.get("/logs/top/agents", params={"window": "1h"}).json()
        ips = c.get("/logs/top/ips", params={"window": "1h", "limit": 1}).json()
    assert agents["items"] == [{"value": "curl/8", "count": 4}, {"value": "Mozilla/5.0", "count": 2}]
    assert agents["total"] == 6 and agents["other"] == 0
    assert ips["total"] == 6 and len(ips["items"]) == 1 and ips["items"][0]["count"] == 3


def test_dashboard_summary_equals_the_metrics_endpoint(traffic):
    with traffic.client() as c:
        board = c.get("/logs/dashboard", params={"window": "1h"}).json()
        figures = c.get("/logs/metrics", params={"window": "1h"}).json()
    for name in ("requests", "errors", "p50_ms", "p95_ms", "p99_ms", "unique_visitors"):
        assert board["summary"][name] == figures["overall"][name], name
    assert board["bytes_sent"] == 600
    assert sum(p["requests"] for p in board["series"]["points"]) == 6


def test_bad_kind_is_a_422(traffic):
    with traffic.client() as c:
        resp = c.get("/logs/top/everything")
    assert resp.status_code == 422 and "kind" in resp.text


def test_cli_logs_top_reads_the_same_list(traffic):
    out = subprocess.run(
        [CLI, "logs", "top", "agents", "--window", "1h", "--json", "--url", traffic.base_url, "--token", READ_TOKEN],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["items"][0] == {"value": "curl/8", "count": 4}
