"""OAuth queries against records written by log_oauth_activity and track_oauth_flow."""

from __future__ import annotations


import pytest

from otel_redis.oauth import log_oauth_activity, track_oauth_flow
from tests.clock import distinct_milliseconds

from .conftest import Stack

pytestmark = pytest.mark.xdist_group("query_api_oauth")


@pytest.fixture(scope="module")
def flows(stack: Stack) -> None:
    stack.ensure_writer()
    steps = [
        lambda: log_oauth_activity("authorize_request", "cli-9", None, {"scope": "read"}, client_ip="10.9.9.9",
                                   session_id="flow-1"),
        lambda: track_oauth_flow("flow-1", "authorize", {"redirect_uri": "https://app.example/cb"}),
        lambda: log_oauth_activity("token_issued", "cli-9", "carol", {"scope": "read"}, client_ip="10.9.9.9",
                                   session_id="flow-1"),
        lambda: track_oauth_flow("flow-1", "token", {"code": "secret-code"}),
        lambda: log_oauth_activity("authorize_request", "cli-8", None, client_ip="10.9.9.9", session_id="flow-2"),
        lambda: log_oauth_activity("token_issued", "cli-9", "dave", client_ip="10.7.7.7", session_id="flow-3"),
        lambda: log_oauth_activity("login_failed", None, "carol", client_ip="10.9.9.9", level="WARNING"),
    ]
    with distinct_milliseconds():
        for step in steps:
            step()
    stack.flush()


def test_activity_summary_for_an_ip(flows, stack):
    with stack.client() as c:
        body = c.get("/logs/oauth/ip/10.9.9.9").json()
    assert body["total"] == 4
    assert body["by_event_type"] == {"authorize_request": 2, "token_issued": 1, "login_failed": 1}
    assert body["clients"] == {"cli-9": 2, "cli-8": 1}
    assert body["users"] == {"carol": 2}
    assert body["sessions"] == 2
    assert [r["body"] for r in body["records"]] == [
        "oauth authorize_request", "oauth token_issued", "oauth authorize_request", "oauth login_failed"]
    assert body["first_seen"] < body["last_seen"]


def test_flow_debugging_for_an_ip(flows, stack):
    with stack.client() as c:
        body = c.get("/logs/oauth/ip/10.9.9.9/flows").json()
    by_session = {f["session_id"]: f for f in body["flows"]}
    assert set(by_session) == {"flow-1", "flow-2", None}
    one = by_session["flow-1"]
    assert one["event_types"] == ["authorize_request", "token_issued"]
    assert one["client_ids"] == ["cli-9"] and one["users"] == ["carol"]
    assert [s["attributes"]["oauth.flow.step"] for s in one["steps"]] == ["authorize", "token"]
    assert "secret-code" not in str(one["steps"])  # masked by track_oauth_flow
    assert by_session["flow-2"]["steps"] == []
    assert [r["body"] for r in by_session[None]["records"]] == ["oauth login_failed"]
    assert [f["session_id"] for f in body["flows"]] == ["flow-1", "flow-2", None]


def test_flows_by_client_and_user(flows, stack):
    with stack.client() as c:
        by_client = c.get("/logs/oauth/flows", params={"client_id": "cli-9"}).json()
        both = c.get("/logs/oauth/flows", params={"client_id": "cli-9", "username": "carol"}).json()
        by_user = c.get("/logs/oauth/flows", params={"username": "carol"}).json()
    assert [f["session_id"] for f in by_client["flows"]] == ["flow-1", "flow-3"]
    assert [len(f["records"]) for f in by_client["flows"]] == [2, 1]
    assert [f["session_id"] for f in both["flows"]] == ["flow-1"]
    assert [r["attributes"]["oauth.event_type"] for r in both["flows"][0]["records"]] == ["token_issued"]
    assert sorted(f["session_id"] or "" for f in by_user["flows"]) == ["", "flow-1"]


def test_activity_by_username(flows, stack):
    with stack.client() as c:
        body = c.get("/logs/oauth/user/carol").json()
    assert [r["body"] for r in body["records"]] == ["oauth token_issued", "oauth login_failed"]
    with stack.client() as c:
        assert c.get("/logs/oauth/user/nobody").json()["records"] == []
