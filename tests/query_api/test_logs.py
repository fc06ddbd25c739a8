"""Every record endpoint against the real service: exactly the expected records, oldest first.

A mixed data set (requests and application logs, several IPs, hosts, users, clients, sessions,
methods, statuses, paths, levels, events and traces) is written through the real pipeline; an
oracle computes from the same definitions which records each query must return, in order.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable

import pytest

from otel_redis import api
from otel_redis.levels import NAME_TO_LEVEL
from otel_redis.record import normalize_trace_id
from tests.clock import distinct_milliseconds

from .conftest import Stack, emit_request

pytestmark = pytest.mark.xdist_group("query_api_logs")

HEX_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
IPS = ["10.0.0.1", "10.0.0.2", "2001:db8::1"]
HOSTS = ["api.example.com", "auth.example.com"]
PATHS = [("/users/1", "/users/{id}"), ("/users/2", "/users/{id}"), ("/orders", "/orders"), ("/wp-admin", ""),
         ("/accounts/7", "/accounts/{account_id}")]


def _dataset() -> list[dict[str, Any]]:
    rng = random.Random(8)
    out: list[dict[str, Any]] = []
    for n in range(90):
        d: dict[str, Any] = {"body": f"rec-{n:03d}"}
        d["ip"] = rng.choice(IPS + [None])
        d["host"] = rng.choice(HOSTS + [None])
        d["user"] = rng.choice(["alice", "bob", None])
        d["client"] = rng.choice(["cli-1", "cli-2", None])
        d["session"] = rng.choice(["s-1", "s-2", None])
        d["trace"] = rng.choice(["req-123", HEX_TRACE, None, None])
        d["note"] = "upstream Timeout [x]" if n % 11 == 3 else "ok"
        if rng.random() < 0.5:
            d["kind"] = "request"
            d["method"] = rng.choice(["GET", "POST"])
            path, route = rng.choice(PATHS)
            d["path"], d["route"] = path, route
            d["status"] = 404 if path == "/wp-admin" else rng.choice([200, 200, 201, 404, 500])
            d["rt"] = rng.choice([5.0, 50.0, 1500.0, 3000.0])
            d["fqdn"] = "client1.example.net" if d["ip"] == "10.0.0.1" else None
            d["level"] = "ERROR" if d["status"] >= 500 else "WARNING" if d["status"] >= 400 else "INFO"
        else:
            d["kind"] = "log"
            d["level"] = rng.choice(["DEBUG", "INFO", "INFO", "WARNING", "ERROR", "CRITICAL"])
            d["component"] = rng.choice(["api_server", "proxy"])
            d["event"] = "proxy_created" if n % 7 == 0 else None
        out.append(d)
    return out


DATA = _dataset()


def _emit(d: dict[str, Any]) -> None:
    trace = d["trace"]
    if d["kind"] == "request":
        fields = {
            "client_ip": d["ip"], "proxy_hostname": d["host"], "client_hostname": d["fqdn"], "user_id": d["user"],
            "oauth_client_id": d["client"], "session_id": d["session"], "method": d["method"], "path": d["path"],
            "route": d["route"], "status_code": d["status"], "response_time_ms": d["rt"],
        }  # fmt: skip
        fields = {k: v for k, v in fields.items() if v not in (None, "")}
        emit_request(d["body"], level=NAME_TO_LEVEL[d["level"]], trace_id=trace, attributes={"note": d["note"]}, **fields)
        return
    attrs = {"client_ip": d["ip"], "user_id": d["user"], "client_id": d["client"], "session_id": d["session"],
             "hostname": d["host"], "trace_id": trace, "note": d["note"]}  # fmt: skip
    attrs = {k: v for k, v in attrs.items() if v is not None}
    if d["event"]:
        api.log_event(d["event"], attrs, component=d["component"], level=d["level"], message=d["body"])
    else:
        api.log_at(NAME_TO_LEVEL[d["level"]], d["body"], component=d["component"], **attrs)


@pytest.fixture(scope="module")
def data(stack: Stack) -> list[dict[str, Any]]:
    stack.ensure_writer()
    with distinct_milliseconds():  # the order is then fully defined (see README)
        for d in DATA:
            _emit(d)
    stack.flush()
    return DATA


def expect(pred: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [d["body"] for d in DATA if pred(d)]


def get_bodies(stack: Stack, url: str, **params: Any) -> list[str]:
    with stack.client() as c:
        resp = c.get(url, params={"limit": 1000, **params})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["count"] == len(body["records"])
    stamps = [r["timestamp"] for r in body["records"]]
    assert stamps == sorted(stamps), "records must be oldest first"
    return [r["body"] for r in body["records"]]


def is_req(d: dict[str, Any]) -> bool:
    return d["kind"] == "request"


CASES: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ("/logs", {}, lambda d: True),
    ("/logs", {"level": "error"}, lambda d: d["level"] == "ERROR"),  # ERROR logs and 5xx requests
    ("/logs", {"level": "WARNING", "kind": "request"}, lambda d: is_req(d) and 400 <= d["status"] < 500),
    ("/logs", {"level": "INFO", "kind": "request"}, lambda d: is_req(d) and d["status"] < 400),
    ("/logs", {"level": "CRITICAL"}, lambda d: d["level"] == "CRITICAL"),  # no request maps to it
    ("/logs", {"level": "DEBUG", "kind": "request"}, lambda d: False),
    ("/logs", {"event": "proxy_created"}, lambda d: d.get("event") == "proxy_created"),
    ("/logs", {"hostname": "api.example.com"}, lambda d: d["host"] == "api.example.com"),
    ("/logs", {"kind": "request"}, is_req),
    ("/logs", {"kind": "log", "level": "WARN"}, lambda d: not is_req(d) and d["level"] == "WARNING"),
    ("/logs/ip/10.0.0.1", {}, lambda d: d["ip"] == "10.0.0.1"),
    ("/logs/ip/2001:DB8:0::1", {}, lambda d: d["ip"] == "2001:db8::1"),
    ("/logs/ip/10.0.0.2", {"level": "INFO"}, lambda d: d["ip"] == "10.0.0.2" and d["level"] == "INFO"),
    ("/logs/host/client1.example.net", {}, lambda d: is_req(d) and d["fqdn"] == "client1.example.net"),
    ("/logs/proxy/auth.example.com", {}, lambda d: d["host"] == "auth.example.com"),
    ("/logs/client/cli-1", {}, lambda d: d["client"] == "cli-1"),
    ("/logs/user/alice", {}, lambda d: d["user"] == "alice"),
    ("/logs/user/alice", {"hostname": "api.example.com"}, lambda d: d["user"] == "alice" and d["host"] == "api.example.com"),
    ("/logs/session/s-2", {}, lambda d: d["session"] == "s-2"),
    ("/logs/method/post", {}, lambda d: is_req(d) and d["method"] == "POST"),
    ("/logs/status/404", {}, lambda d: is_req(d) and d["status"] == 404),
    ("/logs/status/404", {"level": "WARNING"}, lambda d: is_req(d) and d["status"] == 404),
    ("/logs/status/404", {"level": "ERROR"}, lambda d: False),
    ("/logs/status/500", {"hostname": "api.example.com"}, lambda d: is_req(d) and d["status"] == 500 and d["host"] == "api.example.com"),
    ("/logs/path", {"pattern": "/users"}, lambda d: is_req(d) and d["path"].startswith("/users")),
    ("/logs/path", {"pattern": "/users/2"}, lambda d: is_req(d) and d["path"] == "/users/2"),
    ("/logs/path", {"pattern": "/users/{id}"}, lambda d: is_req(d) and d["route"] == "/users/{id}"),
    ("/logs/path", {"pattern": "/u*s/1"}, lambda d: is_req(d) and d["path"] == "/users/1"),
    ("/logs/path", {"pattern": "/wp-admin"}, lambda d: is_req(d) and d["path"] == "/wp-admin"),
    # a concrete path finds the records of the route template that served it
    ("/logs/path", {"pattern": "/accounts/7"}, lambda d: is_req(d) and d["path"] == "/accounts/7"),
    ("/logs/search", {"path": "/accounts/7"}, lambda d: is_req(d) and d["path"] == "/accounts/7"),
    ("/logs/path", {"pattern": "/orders", "method": "GET"}, lambda d: is_req(d) and d["path"] == "/orders" and d["method"] == "GET"),
    ("/logs/path", {"pattern": "/nothing*here"}, lambda d: False),
    ("/logs/slow", {}, lambda d: is_req(d) and d["rt"] > 1000),
    ("/logs/slow", {"threshold_ms": 2000}, lambda d: is_req(d) and d["rt"] > 2000),
    ("/logs/slow", {"threshold_ms": 40}, lambda d: is_req(d) and d["rt"] > 40),
    ("/logs/trace/req-123", {}, lambda d: d["trace"] == "req-123"),
    (f"/logs/trace/{HEX_TRACE.upper()}", {}, lambda d: d["trace"] == HEX_TRACE),
    (f"/logs/trace/{normalize_trace_id('req-123')}", {}, lambda d: d["trace"] == "req-123"),
    ("/logs/search", {"level": "ERROR", "component": "proxy"},
     lambda d: not is_req(d) and d["level"] == "ERROR" and d["component"] == "proxy"),
    ("/logs/search", {"status": 500, "hostname": "api.example.com"},
     lambda d: is_req(d) and d["status"] == 500 and d["host"] == "api.example.com"),
    ("/logs/search", {"text": "timeout [X]"}, lambda d: "timeout [x]" in d["note"].lower()),
    ("/logs/search", {"text": "rec-01"}, lambda d: d["body"].startswith("rec-01")),
    ("/logs/search", {"text": "*"}, lambda d: False),
    ("/logs/search", {"user": "alice", "ip": "10.0.0.1"}, lambda d: d["user"] == "alice" and d["ip"] == "10.0.0.1"),
    ("/logs/search", {"method": "GET", "path": "/orders"}, lambda d: is_req(d) and d["method"] == "GET" and d["path"] == "/orders"),
    ("/logs/search", {"client": "cli-2", "session": "s-2"}, lambda d: d["client"] == "cli-2" and d["session"] == "s-2"),
    ("/logs/search", {"trace_id": "req-123", "kind": "log"}, lambda d: d["trace"] == "req-123" and not is_req(d)),
    ("/logs/search", {"event": "proxy_created", "text": "timeout"},
     lambda d: d.get("event") == "proxy_created" and "timeout" in d["note"].lower()),
    ("/logs/search", {"level": "ERROR", "status": 500}, lambda d: is_req(d) and d["status"] == 500),
    ("/logs/search", {"level": "WARNING", "hostname": "api.example.com"},
     lambda d: d["level"] == "WARNING" and d["host"] == "api.example.com"),
    ("/logs/search", {"level": "INFO", "method": "POST"}, lambda d: is_req(d) and d["method"] == "POST" and d["status"] < 400),
    ("/logs/search", {"hostname": "auth.example.com", "user": "bob", "text": "rec-0"},
     lambda d: d["host"] == "auth.example.com" and d["user"] == "bob" and d["body"].startswith("rec-0")),
    ("/logs/errors", {}, lambda d: (is_req(d) and d["status"] >= 400) or (not is_req(d) and d["level"] in ("ERROR", "CRITICAL"))),
    ("/logs/errors", {"include_warnings": "true"},
     lambda d: (is_req(d) and d["status"] >= 400) or (not is_req(d) and d["level"] in ("WARNING", "ERROR", "CRITICAL"))),
    ("/logs/errors", {"level": "ERROR"}, lambda d: d["level"] == "ERROR"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "params", "pred"), CASES, ids=[f"{u}?{p}" for u, p, _ in CASES])
def test_endpoint_returns_exactly_the_matches_oldest_first(data, stack, url, params, pred):
    expected = expect(pred)
    assert get_bodies(stack, url, **params) == expected


def test_cases_are_not_trivial(data):
    # guard the oracle: most cases must select a real subset (neither nothing nor everything)
    sizes = [len(expect(pred)) for _u, _p, pred in CASES]
    assert sum(1 for n in sizes if 0 < n < len(DATA)) >= len(CASES) - 6


def test_limit_returns_the_most_recent_matches_and_cursor_pages_back(data, stack):
    expected = expect(lambda d: True)
    pages: list[list[str]] = []
    cursor = None
    with stack.client() as c:
        while True:
            params: dict[str, Any] = {"limit": 7}
            if cursor:
                params["cursor"] = cursor
            body = c.get("/logs", params=params).json()
            pages.append([r["body"] for r in body["records"]])
            cursor = body["next_cursor"]
            if cursor is None:
                break
    assert pages[0] == expected[-7:]
    assert [b for page in reversed(pages) for b in page] == expected
    assert all(len(p) == 7 for p in pages[:-1])


def test_cursor_paging_of_an_intersection(data, stack):
    pred = lambda d: d["host"] == "api.example.com" and d["user"] in ("alice",)  # noqa: E731
    expected = expect(pred)
    got: list[str] = []
    cursor = None
    with stack.client() as c:
        for _ in range(50):
            params: dict[str, Any] = {"limit": 2, "user": "alice", "hostname": "api.example.com"}
            if cursor:
                params["cursor"] = cursor
            body = c.get("/logs/search", params=params).json()
            got = [r["body"] for r in body["records"]] + got
            cursor = body["next_cursor"]
            if not cursor:
                break
    assert got == expected and len(expected) >= 3


def test_record_shape_is_entry_to_dict(data, stack):
    with stack.client() as c:
        recs = c.get("/logs/ip/10.0.0.1", params={"limit": 1000}).json()["records"]
    req = next(r for r in recs if r["kind"] == "request")
    d = next(x for x in DATA if x["body"] == req["body"])
    assert req["client_ip"] == "10.0.0.1" and req["method"] == d["method"] and req["status_code"] == d["status"]
    assert req["path"] == d["path"] and req["response_time_ms"] == d["rt"] and req["id"].startswith("req:")
    log = next(r for r in recs if r["kind"] == "log")
    assert log["id"].startswith("log:") and log["attributes"]["client_ip"] == "10.0.0.1"


def test_errors_with_details_keep_stack_traces_and_add_the_trace(data, stack):
    stack.ensure_writer()
    try:
        raise ValueError("bad thing")
    except ValueError as exc:
        api.log_error("detail-error", component="detail", error=exc, trace_id="detail-trace")
    api.log_info("detail-context", component="detail", trace_id="detail-trace")
    stack.flush()
    with stack.client() as c:
        plain = c.get("/logs/errors", params={"hours": 1}).json()
        full = c.get("/logs/errors", params={"hours": 1, "details": "true"}).json()
    rec = next(r for r in plain["records"] if r["body"] == "detail-error")
    assert "exception.stacktrace" not in rec["attributes"] and rec["attributes"]["exception.type"] == "ValueError"
    rec = next(r for r in full["records"] if r["body"] == "detail-error")
    assert "Traceback" in rec["attributes"]["exception.stacktrace"]
    related = full["related"][normalize_trace_id("detail-trace")]
    assert [r["body"] for r in related] == ["detail-context"]


def test_stats_figures_match_the_data(data, stack):
    reqs = [d for d in DATA if is_req(d)]
    with stack.client() as c:
        s = c.get("/logs/stats", params={"hours": 2}).json()
    assert s["requests"]["total"] == len(reqs)
    by_status: dict[str, int] = {}
    for d in reqs:
        by_status[str(d["status"])] = by_status.get(str(d["status"]), 0) + 1
    assert s["requests"]["by_status"] == by_status
    errors = sum(1 for d in reqs if d["status"] >= 400)
    assert s["requests"]["errors"] == errors
    assert s["requests"]["error_rate"] == pytest.approx(errors / len(reqs))
    assert s["requests"]["requests_per_second"] > 0
    for host in HOSTS:
        ips = {d["ip"] for d in reqs if d["host"] == host and d["ip"]}
        assert s["unique_visitors"]["by_hostname"][host] == len(ips)
    assert s["unique_visitors"]["total"] == len({d["ip"] for d in reqs if d["host"] and d["ip"]})
    paths: dict[str, int] = {}
    for d in reqs:
        shown = d["route"] or ("/{unmatched}" if d["status"] in (404, 405) else d["path"])
        paths[f"{d['method']} {shown}"] = paths.get(f"{d['method']} {shown}", 0) + 1
    assert {p["path"]: p["count"] for p in s["top_paths"]} == paths
    for host in HOSTS:
        rts = sorted(d["rt"] for d in reqs if d["host"] == host)
        got = s["response_times"]["by_hostname"][host]
        assert got["count"] == len(rts)
        for q in (50, 95, 99):
            exact = rts[max(1, -(-q * len(rts) // 100)) - 1]
            assert got[f"p{q}"] == pytest.approx(exact, rel=0.02)
    assert s["logs"]["total"] >= sum(1 for d in DATA if not is_req(d))


def test_events_statistics(data, stack):
    with stack.client() as c:
        body = c.get("/logs/events", params={"hours": 2}).json()
    counts = {e["event"]: e["count"] for e in body["events"]}
    assert counts["proxy_created"] == sum(1 for d in DATA if d.get("event") == "proxy_created")
    assert all(e["last_seen_ms"] for e in body["events"])
    with stack.client() as c:
        only = c.get("/logs/events", params={"event": "nope"}).json()
    assert only["total"] == 0 and only["events"] == []


def test_hours_window_excludes_older_records(stack):
    from otel_redis.record import LogEntry
    from otel_redis.store import RedisStore

    import redis as redis_lib

    old_ns = time.time_ns() - 3 * 3600 * 10**9
    entry = LogEntry(timestamp_ns=old_ns, level="INFO", severity_number=9, body="old-one", component="window")
    store = RedisStore(redis_lib.Redis.from_url(stack.redis_url), stack.settings)
    store.write([entry])
    with stack.client() as c:
        recent = c.get("/logs/search", params={"component": "window", "hours": 2}).json()["records"]
        longer = c.get("/logs/search", params={"component": "window", "hours": 4}).json()["records"]
    assert recent == [] and [r["body"] for r in longer] == ["old-one"]
