"""The console's JSON endpoints and `otel-redis logs top` against the real service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

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


def _encoded(record_id: str) -> str:
    """The id as one URL path segment: a request key's ``%3A`` (IPv6) must arrive as ``%3A``."""
    return quote(record_id, safe="")


def test_record_endpoint_returns_a_stored_request_and_a_stored_log(traffic):
    from otel_redis import api

    emit_request("GET /v6", method="GET", path="/v6", status_code=201, client_ip="2001:db8::7", proxy_hostname="v6.example")
    api.log_warning("record endpoint log", component="records-test")
    traffic.flush()
    with traffic.client() as c:
        requests = c.get("/logs/search", params={"ip": "2001:db8::7", "hours": 1}).json()["records"]
        logs = c.get("/logs/search", params={"component": "records-test", "hours": 1}).json()["records"]
        assert len(requests) == 1 and len(logs) == 1
        assert "%" in requests[0]["id"]  # the IPv6 address is key-encoded: the case that answered 404
        for listed in (requests[0], logs[0]):
            resp = c.get(f"/logs/record/{_encoded(listed['id'])}")
            assert resp.status_code == 200, resp.text
            assert resp.json() == listed
    assert resp.json()["body"] == "record endpoint log"


def test_record_endpoint_unknown_malformed_and_without_token(traffic):
    with traffic.client() as c:
        missing = c.get(f"/logs/record/{_encoded('log:1700000000000-abc0')}")
        malformed = c.get(f"/logs/record/{_encoded('stats:requests:20260101:00')}")
    assert missing.status_code == 404 and "log:1700000000000-abc0" in missing.json()["detail"]
    assert malformed.status_code == 422 and "record_id" in malformed.json()["detail"]
    with traffic.client(token=None) as c:
        assert c.get(f"/logs/record/{_encoded('log:1700000000000-abc0')}").status_code == 401


def test_top_lists_follow_the_hostname(traffic):
    for i in range(3):
        emit_request("GET /per-host", method="GET", path=f"/per-host/{i}", route="/per-host/{n}", status_code=200,
                     client_ip="10.8.0.1", user_agent="host-b-agent", bytes_sent=1, response_time_ms=7.0,
                     proxy_hostname="b.example")
    traffic.flush()
    with traffic.client() as c:
        agents = c.get("/logs/top/agents", params={"window": "1h", "hostname": "b.example"}).json()
        api_agents = c.get("/logs/top/agents", params={"window": "1h", "hostname": "api.example"}).json()
        paths = c.get("/logs/top/paths", params={"window": "1h", "hostname": "b.example"}).json()
        slow = c.get("/logs/top/slow_routes", params={"window": "1h", "hostname": "b.example"}).json()
        nobody = c.get("/logs/top/ips", params={"window": "1h", "hostname": "nobody.example"}).json()
    assert agents["hostname"] == "b.example"
    assert agents["items"] == [{"value": "host-b-agent", "count": 3}] and agents["total"] == 3
    assert {i["value"] for i in api_agents["items"]} == {"curl/8", "Mozilla/5.0"} and api_agents["total"] == 6
    assert paths["items"] == [{"value": "GET /per-host/{n}", "count": 3}]
    assert slow["items"] == [{"route": "GET /per-host/{n}", "requests": 3, "mean_ms": 7.0}]
    assert nobody["items"] == [] and nobody["total"] == 0
