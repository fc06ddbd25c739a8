"""POST /logs/test through the service's own pipeline, and DELETE /logs (admin only, owned keys only)."""

from __future__ import annotations

import pytest

from otel_redis import api, schema
from otel_redis.clear import owner_pattern

from .conftest import ADMIN_TOKEN, Stack, emit_request

pytestmark = pytest.mark.xdist_group("query_api_admin")

FOREIGN = ["myapp:keep", "logbook", "request:1", "stats:other:1", "idx:other:1", "tmp:mine", "stream:other"]


def test_logs_test_emits_through_the_pipeline_and_reads_back(stack):
    with stack.client() as c:
        body = c.post("/logs/test").json()
    assert body["ok"] is True and body["emitted"] == 4 and body["found"] == 4
    assert sorted(r["level"] for r in body["records"]) == ["ERROR", "INFO", "INFO", "WARNING"]
    assert {r["component"] for r in body["records"]} == {"logs-test"}
    with stack.client() as c:
        again = c.get(f"/logs/trace/{body['trace_id']}").json()
    assert [r["id"] for r in again["records"]] == [r["id"] for r in body["records"]]


def test_delete_removes_everything_owned_and_nothing_else(stack, writer):
    r = stack.r
    for key in FOREIGN:
        r.set(key, "foreign")
    for i in range(50):
        emit_request(f"d-{i}", method="GET", path="/x", status_code=200 + (i % 2) * 300, client_ip="10.0.0.1",
                     proxy_hostname="api.example.com", session_id="s", trace_id="t")
        api.log_info(f"l-{i}", component="c", event="e", user_id="u")
    writer.flush()
    with stack.client() as c:
        c.get("/logs/stats")  # also leaves nothing behind (its scratch keys are deleted)
    owned_before = [k for k in r.scan_iter(count=1000) if owner_pattern(k)]
    assert len(owned_before) > 100

    with stack.client(token=ADMIN_TOKEN) as c:
        body = c.delete("/logs").json()
    assert body["removed"] == len(owned_before) == sum(body["by_pattern"].values())
    assert body["by_pattern"]["req:*"] == 50 and body["by_pattern"]["log:*"] >= 50
    assert body["by_pattern"][schema.STREAM_LOGS] == 1
    assert sorted(r.scan_iter(count=1000)) == sorted(FOREIGN)
    assert all(r.get(k) == "foreign" for k in FOREIGN)

    with stack.client() as c:
        assert c.get("/logs").json()["records"] == []
        # the service writes again after the clear, and its new keys get their TTLs at once
        assert c.post("/logs/test").json()["ok"] is True
    assert 0 < r.ttl(schema.IDX_LOG_ALL) and 0 < r.ttl(schema.STREAM_LOGS)
