"""The API contract over the OpenAPI document: auth on every route, 422 for bad input, no 500 ever.

Routes are enumerated from the service's own /openapi.json, never listed by hand, so a new route
is covered the moment it exists.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from otel_redis import api
from otel_redis.levels import ERROR

from .conftest import ADMIN_TOKEN, READ_TOKEN, Stack, emit_request

pytestmark = pytest.mark.xdist_group("query_api_contract")

#: a valid value per path parameter name, so that only the token decides the answer
PATH_VALUES = {"ip": "10.0.0.1", "code": "200", "method": "GET", "kind": "agents"}
#: required query parameters (filled from the schema, so a new one fails loudly here)
QUERY_VALUES = {"pattern": "/x"}
#: routes that need one of several optional parameters
EXTRA_VALUES = {"/logs/oauth/flows": {"client_id": "cli-1"}}


@pytest.fixture(scope="module")
def openapi(stack: Stack) -> dict[str, Any]:
    with stack.client(token=None) as c:
        return c.get("/openapi.json").json()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), path, op) for path, item in doc["paths"].items() for m, op in item.items()]


def _url(path: str, op: dict[str, Any], values: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    known = {**PATH_VALUES, **(values or {})}
    url = re.sub(r"\{(\w+)\}", lambda m: known.get(m.group(1), "x"), path)
    params = {}
    for p in op.get("parameters", []):
        if p["in"] == "query" and p.get("required"):
            params[p["name"]] = QUERY_VALUES[p["name"]]
    return url, params


def test_every_route_except_healthz_declares_the_bearer_token(openapi):
    open_routes = sorted(f"{m} {p}" for m, p, op in _operations(openapi) if not op.get("security"))
    assert open_routes == ["GET /healthz"]
    assert len(_operations(openapi)) >= 20


def test_every_route_rejects_a_missing_and_a_wrong_token(stack, openapi):
    checked = 0
    with stack.client(token=None) as anonymous, stack.client(token="wrong-token") as wrong:
        for method, path, op in _operations(openapi):
            if not op.get("security"):
                continue
            url, params = _url(path, op)
            for client in (anonymous, wrong):
                resp = client.request(method, url, params=params)
                assert resp.status_code == 401, f"{method} {path}: {resp.status_code} {resp.text}"
                assert resp.headers["www-authenticate"].startswith("Bearer")
                assert "token" in resp.json()["detail"]
            checked += 1
    assert checked >= 20


def _stored_record_id(stack: Stack, writer: Stack) -> str:
    """A record stored just now (the DELETE routes of the loop may have purged earlier ones)."""
    api.log_info("a record for GET /logs/record/{record_id}", component="contract-record")
    writer.flush()
    with stack.client() as c:
        stored = c.get("/logs/search", params={"component": "contract-record", "limit": 1}).json()["records"]
    return quote(stored[0]["id"], safe="")


def test_every_route_accepts_the_right_token(stack, openapi, writer):
    with stack.client(token=ADMIN_TOKEN, timeout=30) as admin:
        for method, path, op in _operations(openapi):
            if path == "/logs/stream":
                with admin.stream(method, path) as resp:
                    assert resp.status_code == 200
                continue
            values = {"record_id": _stored_record_id(stack, writer)} if "{record_id}" in path else {}
            url, params = _url(path, op, values)
            resp = admin.request(method, url, params={**params, **EXTRA_VALUES.get(path, {})})
            assert resp.status_code == 200, f"{method} {path}: {resp.status_code} {resp.text}"


def test_delete_needs_the_admin_token(stack):
    with stack.client(token=READ_TOKEN) as c:
        resp = c.delete("/logs")
    assert resp.status_code == 403 and "admin" in resp.json()["detail"]


BAD_INPUT = [
    ("/logs/ip/999.1.1.1", {}, "ip"),
    ("/logs/ip/not-an-ip", {}, "ip"),
    ("/logs/status/99", {}, "code"),
    ("/logs/status/600", {}, "code"),
    ("/logs/status/abc", {}, "code"),
    ("/logs/method/FETCH", {}, "method"),
    ("/logs", {"level": "LOUD"}, "level"),
    ("/logs", {"hours": "-1"}, "hours"),
    ("/logs", {"hours": "0"}, "hours"),
    ("/logs", {"hours": "nan"}, "hours"),
    ("/logs", {"hours": "inf"}, "hours"),
    ("/logs", {"hours": "100000"}, "hours"),
    ("/logs", {"hours": "abc"}, "hours"),
    ("/logs", {"limit": "0"}, "limit"),
    ("/logs", {"limit": "-5"}, "limit"),
    ("/logs", {"limit": "1001"}, "limit"),
    ("/logs", {"cursor": "garbage"}, "cursor"),
    ("/logs", {"cursor": "c1.!!!"}, "cursor"),
    ("/logs", {"cursor": "c1.MTIzfGZvbw"}, "cursor"),  # base64 of "123|foo": not a record key
    ("/logs", {"kind": "metric"}, "kind"),
    ("/logs/search", {"status": "700"}, "status"),
    ("/logs/search", {"method": "get; DROP"}, "method"),
    ("/logs/search", {"ip": "1.2.3"}, "ip"),
    ("/logs/search", {"text": "x" * 600}, "text"),
    ("/logs/path", {}, "pattern"),
    ("/logs/path", {"pattern": ""}, "pattern"),
    ("/logs/path", {"pattern": "/a", "method": "nope"}, "method"),
    ("/logs/slow", {"threshold_ms": "-1"}, "threshold_ms"),
    ("/logs/errors", {"include_warnings": "maybe"}, "include_warnings"),
    ("/logs/stats", {"hours": "9000"}, "hours"),
    ("/logs/stats", {"top": "0"}, "top"),
    ("/logs/events", {"hours": "-3"}, "hours"),
    ("/logs/oauth/ip/nope", {}, "ip"),
    ("/logs/oauth/flows", {}, "client_id"),
    ("/logs/user/" + "u" * 600, {}, "user_id"),
]


@pytest.mark.parametrize(("url", "params", "name"), BAD_INPUT, ids=[f"{u[:40]}?{p}"[:60] for u, p, _ in BAD_INPUT])
def test_bad_input_is_a_422_naming_the_parameter(stack, url, params, name):
    with stack.client() as c:
        resp = c.get(url, params=params)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert name in body["detail"] and body["errors"]


@pytest.mark.parametrize(
    "pattern", ["*", "**", "?", "[a-z]", "/users/(.*)", "\\", "%", "{id}", "a|b", "^$", "/\x00", "é", "%2A", "..", "\n"]
)
def test_metacharacters_in_patterns_and_text_are_literal(stack, writer, pattern):
    with stack.client() as c:
        for resp in (
            c.get("/logs/path", params={"pattern": pattern}),
            c.get("/logs/search", params={"text": pattern, "level": "ERROR"}),
            c.get("/logs/search", params={"path": pattern}),
            c.get(f"/logs/user/{pattern}") if pattern not in ("..", "\n", "/\x00") else c.get("/logs/user/x"),
        ):
            assert resp.status_code in (200, 404), resp.text


def test_glob_and_regex_metacharacters_match_only_themselves(stack, writer):
    emit_request("meta-1", method="GET", path="/files/a*b?c[1].txt", status_code=404, client_ip="10.0.0.9")
    emit_request("meta-2", method="GET", path="/files/aXXbYc1.txt", status_code=404, client_ip="10.0.0.9")
    api.log_at(ERROR, "literal (.*) text", component="meta")
    api.log_at(ERROR, "literal xyz text", component="meta")
    writer.flush()
    with stack.client() as c:
        got = c.get("/logs/path", params={"pattern": "a*b?c[1]"}).json()["records"]
        assert [r["body"] for r in got] == ["meta-1"]  # '*' is a wildcard, '?' and '[1]' are literal
        got = c.get("/logs/path", params={"pattern": "?c[1]"}).json()["records"]
        assert [r["body"] for r in got] == ["meta-1"]
        got = c.get("/logs/search", params={"text": "(.*)", "component": "meta"}).json()["records"]
        assert [r["body"] for r in got] == ["literal (.*) text"]


# ---------------------------------------------------------------------------- property-based: no 500


@pytest.fixture(scope="module")
def writer_module(stack: Stack) -> None:
    """A little data, so that the fuzzed queries walk real indexes and records."""
    stack.ensure_writer()
    for i in range(30):
        emit_request(f"fuzz-{i}", method="GET", path=f"/items/{i}", route="/items/{id}", status_code=200 + i % 4 * 100,
                     client_ip=f"10.0.0.{i % 5}", proxy_hostname="api.example.com", user_id="alice",
                     response_time_ms=i * 70.0, trace_id="t-1")
        api.log_at(ERROR if i % 3 else 20, f"log-{i}", component="fuzz", client_ip=f"10.0.0.{i % 5}",
                   **{"oauth.event_type": "authorize", "session.id": f"s{i % 4}", "enduser.id": "alice"})
    stack.flush()


@pytest.fixture(scope="module")
def api_schema(stack: Stack, writer_module: None) -> Any:
    return schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")


def _fuzzed_operations() -> list[Any]:
    """Every operation of the app's OpenAPI document (built without I/O), with valid inputs and,
    when it has parameters to break, invalid ones; not the endless stream (see test_stream.py)."""
    from query_api.app import create_app

    doc = create_app(announce_token=False).openapi()
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if path == "/logs/stream":
                continue
            modes = [schemathesis.GenerationMode.POSITIVE]
            if op.get("parameters"):
                modes.append(schemathesis.GenerationMode.NEGATIVE)
            out += [pytest.param(method.upper(), path, m, id=f"{method.upper()} {path} {m.value}") for m in modes]
    return out


@pytest.mark.parametrize(("method", "path", "mode"), _fuzzed_operations())
def test_fuzzed_requests_never_get_a_500(api_schema, stack, method, path, mode):
    """schemathesis generates requests from the live service's schema (valid ones, and ones that
    break it); none may get a 5xx, and each documented answer must match its response model."""
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=20, deadline=None, suppress_health_check=list(hypothesis.HealthCheck), derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        response = case.call(base_url=stack.base_url, headers=headers, timeout=30)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    run()


def test_rejected_requests_are_not_stored_as_logs(stack):
    """The API's own 422s are answers, not records (FastAPI's native telemetry would log them)."""
    before = stack.r.zcard("idx:log:all")
    with stack.client() as c:
        for _ in range(3):
            assert c.get("/logs", params={"limit": "0"}).status_code == 422
        assert c.post("/logs/test").json()["ok"] is True  # flushes the service's pipeline
    assert stack.r.zcard("idx:log:all") == before + 4
