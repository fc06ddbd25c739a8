"""A multi-filter search over 10,000 records where the matches are old and rare returns them all.

The rare matches are written first (the oldest records), then 10,000 records in which each filter
alone is common (half match the hostname, half the status), so reading the newest N records and
filtering them would find none of them.
"""

from __future__ import annotations

from typing import Any

import pytest

from otel_redis import api
from tests.clock import distinct_milliseconds

from .conftest import Stack, emit_request

pytestmark = pytest.mark.xdist_group("query_api_bulk")

RARE = 10
BULK = 10_000


@pytest.fixture(scope="module")
def bulk(stack: Stack) -> list[str]:
    stack.ensure_writer()
    rare = []
    with distinct_milliseconds():
        for i in range(RARE):
            body = f"rare-{i}"
            emit_request(body, method="POST", path="/pay", status_code=503, client_ip="10.5.5.5",
                         proxy_hostname="bulk.example.com", attributes={"note": "a needle in the stack"})
            rare.append(body)
    for i in range(BULK):
        if i % 2:
            emit_request(f"noise-{i}", method="POST", path="/pay", status_code=503, client_ip="10.5.5.5",
                         proxy_hostname="other.example.com")
        else:
            emit_request(f"noise-{i}", method="POST", path="/pay", status_code=200, client_ip="10.5.5.5",
                         proxy_hostname="bulk.example.com")
        if i % 10 == 0:
            api.log_info(f"noise-log-{i}", component="bulk", hostname="bulk.example.com")
    stack.flush()
    with stack.client() as c:
        total = c.get("/logs/stats", params={"hours": 1}).json()["requests"]["total"]
    assert total == RARE + BULK
    return rare


def _bodies(stack: Stack, url: str, **params: Any) -> list[str]:
    with stack.client() as c:
        resp = c.get(url, params=params)
    assert resp.status_code == 200, resp.text
    return [r["body"] for r in resp.json()["records"]]


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/logs/search", {"hostname": "bulk.example.com", "status": 503}),
        ("/logs/search", {"hostname": "bulk.example.com", "status": 503, "method": "POST", "ip": "10.5.5.5"}),
        ("/logs/status/503", {"hostname": "bulk.example.com"}),
        ("/logs/proxy/bulk.example.com", {"limit": 1000, "cursor": None}),
        ("/logs/search", {"text": "NEEDLE"}),
        ("/logs/search", {"text": "needle", "hostname": "bulk.example.com"}),
        ("/logs/search", {"text": "needle", "path": "/pay", "status": 503}),
        # a request's level is its status's (503: ERROR), served from the status indexes
        ("/logs/search", {"hostname": "bulk.example.com", "level": "ERROR"}),
        ("/logs", {"hostname": "bulk.example.com", "level": "error", "limit": 1000}),
        ("/logs/ip/10.5.5.5", {"hostname": "bulk.example.com", "level": "ERROR"}),
    ],
)
def test_old_rare_matches_are_all_found(bulk, stack, url, params):
    params = {k: v for k, v in params.items() if v is not None}
    got = _bodies(stack, url, **params)
    if url.startswith("/logs/proxy"):
        # no intersection here: the page is the newest 1000 of 10,000+ matches, none of them rare
        assert len(got) == 1000 and not any(b.startswith("rare-") for b in got)
    else:
        assert got == bulk


def test_paging_through_the_rare_matches(bulk, stack):
    pages = []
    cursor = None
    with stack.client() as c:
        while True:
            params: dict[str, Any] = {"hostname": "bulk.example.com", "status": 503, "limit": 4}
            if cursor:
                params["cursor"] = cursor
            body = c.get("/logs/search", params=params).json()
            pages.append([r["body"] for r in body["records"]])
            cursor = body["next_cursor"]
            if not cursor:
                break
    assert pages == [bulk[6:], bulk[2:6], bulk[:2]]
