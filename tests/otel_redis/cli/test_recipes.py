"""Every query recipe through the real ``just``, against ``otel-redis serve`` on a real Redis, with
records written through the real pipeline: the right records, oldest first, one line each, plain
or coloured, and the exit codes of the failures (bad token, bad argument)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import otel_redis
from otel_redis.levels import ERROR, INFO, WARNING
from otel_redis.request_log import emit_request

from .conftest import READ_TOKEN, Stack, one_error_line, run_just, strip_ansi

pytestmark = pytest.mark.xdist_group("cli-recipes")

S = 1_000_000_000
TRACE_REPORT = "trace-report-500"


@pytest.fixture(scope="module")
def data(stack: Stack) -> Stack:
    """The module's records, at chosen times in the last hour (and one 5 hours back)."""
    now = time.time_ns()
    t = lambda minutes_ago: now - int(minutes_ago * 60 * S)  # noqa: E731
    stack.ensure_writer()
    emit_request(t(300), "GET", "/api/old", 200, "10.0.0.1", "api.example.com", response_time_ms=5)
    emit_request(t(50), "GET", "/api/users", 200, "10.0.0.1", "api.example.com", client_hostname="c1.example.net",
                 response_time_ms=12.5, user_id="alice")
    stack.log(t(45), INFO, "worker started", component="worker", hostname="api.example.com")
    emit_request(t(40), "POST", "/api/orders", 201, "10.0.0.2", "shop.example.com", response_time_ms=40, user_id="bob")
    stack.log(t(35), WARNING, "disk almost full", component="monitor")
    emit_request(t(30), "GET", "/api/users/7", 404, "10.0.0.1", "api.example.com", response_time_ms=3)
    emit_request(t(25), "GET", "/api/report", 500, "10.0.0.3", "api.example.com", response_time_ms=1500,
                 error="db timeout", trace_id=TRACE_REPORT)
    try:
        raise TimeoutError("database did not answer")
    except TimeoutError as exc:
        stack.log(t(24), ERROR, "payment failed", trace_id=TRACE_REPORT, component="billing",
                  **otel_redis.api.exception_attributes(exc))
    stack.log(t(20), INFO, "proxy created", event="proxy_created", hostname="api.example.com")
    emit_request(t(15), "DELETE", "/api/users/7", 204, "10.0.0.2", "api.example.com", response_time_ms=8,
                 extra={"session.id": "S1", "oauth.client_id": "C1"})
    stack.log(t(10), INFO, "session touched", component="auth", session_id="S1", client_id="C1", user_id="carol")
    stack.log(t(8), INFO, "oauth authorize", component="oauth", client_ip="10.0.0.9", client_id="C9",
              user_id="alice", session_id="S9", **{"oauth.event_type": "authorize"})
    stack.log(t(7), INFO, "oauth token issued", component="oauth", client_ip="10.0.0.9", client_id="C9",
              user_id="alice", session_id="S9", **{"oauth.event_type": "token_issued"})
    stack.flush()
    return stack


def just_ok(stack: Stack, data_dir: Path, *args: str, **env: str) -> list[str]:
    done = run_just(*args, env=stack.env(data_dir, **env))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout.splitlines()


def times(lines: list[str]) -> list[str]:
    return [line[:23] for line in lines]


def assert_records(lines: list[str], *expected: str) -> None:
    """Exactly these records (by a distinctive text each), in this order, one line each."""
    assert len(lines) == len(expected), "\n".join(lines)
    for line, text in zip(lines, expected):
        assert text in line, (text, line)
    assert times(lines) == sorted(times(lines))


# ----------------------------------------------------------------------------- record queries


def test_logs_shows_recent_records_oldest_first(data, data_dir):
    lines = just_ok(data, data_dir, "logs", "1")
    assert len(lines) == 12
    assert times(lines) == sorted(times(lines))
    assert "/api/users " in lines[0] and "oauth token issued" in lines[-1]
    assert not any("\x1b[" in line for line in lines)  # not a terminal: no colour
    first = lines[0]
    for part in ("INFO", "GET", "/api/users", "200", "12.5ms", "client=10.0.0.1 (c1.example.net)", "user=alice"):
        assert part in first, (part, first)


def test_logs_hours_limit_and_filters_reach_the_query(data, data_dir):
    assert len(just_ok(data, data_dir, "logs", "6")) == 13  # the 5-hour-old request too
    assert_records(just_ok(data, data_dir, "logs", "6", "", "", "", "2"), "oauth authorize", "oauth token issued")
    assert_records(just_ok(data, data_dir, "logs", "24", "proxy_created"), "proxy created")
    errors = just_ok(data, data_dir, "logs", "24", "", "ERROR")
    assert errors and all(" ERROR " in line for line in errors)
    assert_records(errors, "/api/report 500", "payment failed")  # a 5xx request is an ERROR record
    by_host = just_ok(data, data_dir, "logs", "24", "", "", "shop.example.com")
    assert_records(by_host, "/api/orders")


def test_colour_when_forced_and_never_with_no_color(data, data_dir):
    plain = just_ok(data, data_dir, "logs", "1")
    coloured = just_ok(data, data_dir, "logs", "1", FORCE_COLOR="1")
    assert all("\x1b[" in line for line in coloured)
    assert [strip_ansi(line) for line in coloured] == plain
    assert "\x1b[31m" in coloured[plain.index(next(l for l in plain if "/api/report" in l))] or "\x1b[1;31m" in "".join(coloured)
    assert just_ok(data, data_dir, "logs", "1", FORCE_COLOR="1", NO_COLOR="1") == plain


def test_logs_ip(data, data_dir):
    assert_records(just_ok(data, data_dir, "logs-ip", "10.0.0.1"), "/api/old", "GET    /api/users ", "/api/users/7 404")
    assert_records(just_ok(data, data_dir, "logs-ip", "10.0.0.1", "1", "", "", "1"), "/api/users/7 404")


def test_logs_proxy_and_hostname(data, data_dir):
    assert_records(just_ok(data, data_dir, "logs-proxy", "shop.example.com"), "POST   /api/orders")
    assert_records(just_ok(data, data_dir, "logs-hostname", "c1.example.net"), "/api/users 200")


def test_logs_oauth_client(data, data_dir):
    assert_records(just_ok(data, data_dir, "logs-oauth-client", "C1"), "DELETE /api/users/7", "session touched")
    # a request has the level its status maps to: the 204 is INFO
    assert_records(just_ok(data, data_dir, "logs-oauth-client", "C1", "24", "", "INFO"), "DELETE /api/users/7",
                   "session touched")
    assert just_ok(data, data_dir, "logs-oauth-client", "C1", "24", "", "WARNING") == []
    assert_records(just_ok(data, data_dir, "logs-oauth-client", "C1", "24", "", "", "1"), "session touched")


def test_logs_search(data, data_dir):
    assert_records(just_ok(data, data_dir, "logs-search", "payment"), "payment failed")
    assert_records(just_ok(data, data_dir, "logs-search", "", "24", "", "WARNING"), "disk almost full", "/api/users/7 404")
    assert_records(just_ok(data, data_dir, "logs-search", "users", "24", "", "", "api.example.com", "2"),
                   "/api/users/7 404", "DELETE /api/users/7")


def test_logs_errors_and_errors_debug(data, data_dir):
    lines = just_ok(data, data_dir, "logs-errors")
    assert_records(lines, "/api/users/7 404", "/api/report 500", "payment failed")
    assert "Traceback" not in "\n".join(lines)
    debug = "\n".join(just_ok(data, data_dir, "logs-errors-debug"))
    assert "exception.type: TimeoutError" in debug
    assert "TimeoutError: database did not answer" in debug  # the stack trace
    assert "disk almost full" not in debug
    with_warnings = "\n".join(just_ok(data, data_dir, "logs-errors-debug", "24", "true"))
    assert "disk almost full" in with_warnings
    # limit 1: the newest error, its details, and the other records of its trace under it
    limited = just_ok(data, data_dir, "logs-errors-debug", "24", "false", "1")
    assert "payment failed" in limited[0]
    assert any("TimeoutError: database did not answer" in line for line in limited)
    assert [line.split("\u21b3 ")[1][24:] for line in limited if "\u21b3" in line] == [
        "ERROR    GET    /api/report 500 1500.0ms client=10.0.0.3 host=api.example.com error=db timeout "
        f"trace={otel_redis.record.normalize_trace_id(TRACE_REPORT)}"
    ]


def test_logs_oauth_summary_debug_flow_and_user(data, data_dir):
    summary = "\n".join(just_ok(data, data_dir, "logs-oauth", "10.0.0.9"))
    assert "total: 2" in summary and "authorize: 1" in summary and "token_issued: 1" in summary
    assert summary.index("oauth authorize") < summary.index("oauth token issued")
    debug = "\n".join(just_ok(data, data_dir, "logs-oauth-debug", "10.0.0.9"))
    assert "session_id: S9" in debug and "oauth token issued" in debug
    for args in (("C9",), ("", "alice", "2")):
        flow = "\n".join(just_ok(data, data_dir, "logs-oauth-flow", *args))
        assert "session_id: S9" in flow and "oauth authorize" in flow, args
    assert_records(just_ok(data, data_dir, "logs-oauth-user", "alice"), "oauth authorize", "oauth token issued")


def test_logs_oauth_flow_needs_a_client_or_a_user(data, data_dir):
    done = run_just("logs-oauth-flow", env=data.env(data_dir))
    assert done.returncode == 2
    assert one_error_line(done).startswith("otel-redis: bad argument: client_id: give client_id, username or both")


def test_logs_user_session_method_status(data, data_dir):
    assert_records(just_ok(data, data_dir, "logs-user", "bob"), "/api/orders")
    assert_records(just_ok(data, data_dir, "logs-session", "S1"), "DELETE /api/users/7", "session touched")
    assert_records(just_ok(data, data_dir, "logs-method", "DELETE"), "/api/users/7 204")
    assert_records(just_ok(data, data_dir, "logs-status", "404"), "/api/users/7 404")
    assert just_ok(data, data_dir, "logs-status", "404", "0.1") == []  # 6 minutes: before it


def test_logs_slow_and_path(data, data_dir):
    assert_records(just_ok(data, data_dir, "logs-slow"), "/api/report 500 1500.0ms")
    assert_records(just_ok(data, data_dir, "logs-slow", "30"), "/api/orders", "/api/report")
    assert_records(just_ok(data, data_dir, "logs-path", "/api/users/*"), "GET    /api/users/7", "DELETE /api/users/7")
    assert_records(just_ok(data, data_dir, "logs-path", "/api/users", "6", "1"), "DELETE /api/users/7")


def test_logs_stats(data, data_dir):
    text = "\n".join(just_ok(data, data_dir, "logs-stats"))
    assert re.search(r"^  proxy_created\s+1$", text, re.M), text
    assert re.search(r"Requests: 6\b", text), text
    assert "by status:" in text and "500=1" in text


def test_logs_test_runs_the_self_check(data, data_dir):
    lines = just_ok(data, data_dir, "logs-test")
    assert "ok: yes" in lines
    assert sum("logs test:" in line for line in lines) == 3


# ----------------------------------------------------------------------------- tokens and failures


def test_token_argument_environment_and_token_file(data, data_dir):
    # the recipe's token argument wins over the environment
    assert just_ok(data, data_dir, "logs-status", "404", "24", "100", READ_TOKEN, OTEL_REDIS_API_TOKEN="wrong")
    done = run_just("logs-status", "404", "24", "100", "wrong", env=data.env(data_dir))
    assert done.returncode == 4
    assert "the query API rejected the request (401 invalid token)" in one_error_line(done)
    # no token anywhere
    done = run_just("logs-errors", env=data.env(data_dir, token=None))
    assert done.returncode == 4
    assert "no token was sent" in one_error_line(done)
    # the token file of the data folder (what `otel-redis serve` generates when no token is configured)
    (data_dir / "api-token").write_text(READ_TOKEN + "\n")
    assert_records(just_ok(data, data_dir, "logs-status", "404", token=None), "/api/users/7 404")


def test_bad_argument_rejected_by_the_api_is_one_line_exit_2(data, data_dir):
    for args, message in (
        (("logs-ip", "10.0.0"), "ip: '10.0.0' is not an IPv4 or IPv6 address"),
        (("logs", "100000"), "hours: must be at most"),
        (("logs", "24", "", "LOUD"), "'LOUD' is not a level"),
    ):
        done = run_just(*args, env=data.env(data_dir))
        assert done.returncode == 2, (args, done.stderr)
        line = one_error_line(done)
        assert line.startswith("otel-redis: bad argument: ") and message in line, line


def test_clear_needs_the_admin_token(data, data_dir):
    done = run_just("logs-clear", READ_TOKEN, env=data.env(data_dir))
    assert done.returncode == 2  # not a terminal and no --yes: refused before asking the server
    assert "refusing to clear without confirmation" in one_error_line(done)
    cli = str(Path(sys.executable).parent / "otel-redis")
    done = subprocess.run([cli, "logs", "clear", "--yes"], env=data.env(data_dir), capture_output=True, text=True)
    assert done.returncode == 4
    assert "forbidden (403): this operation needs the admin token" in one_error_line(done)
    assert just_ok(data, data_dir, "logs-status", "404")  # nothing was removed


def test_json_output_is_one_record_per_line(data, data_dir):
    cli = str(Path(sys.executable).parent / "otel-redis")
    done = subprocess.run([cli, "logs", "ip", "10.0.0.1", "--json"], env=data.env(data_dir), capture_output=True,
                          text=True, check=True)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["path"] for r in records] == ["/api/old", "/api/users", "/api/users/7"]
    assert {r["kind"] for r in records} == {"request"}
    assert all(r["id"].startswith("req:") for r in records)
    done = subprocess.run([cli, "logs", "stats", "--json"], env=data.env(data_dir), capture_output=True, text=True,
                          check=True)
    stats = json.loads(done.stdout)
    assert stats["stats"]["requests"]["total"] == 6


def test_an_empty_result_says_no_records_on_stderr_and_exits_0(data, data_dir):
    for args in (("logs-ip", "203.0.113.99"), ("logs-user", "nobody-at-all")):
        done = run_just(*args, env=data.env(data_dir))
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""
        assert done.stderr.strip() == "no records"
    found = run_just("logs-ip", "10.0.0.1", env=data.env(data_dir))
    assert "no records" not in found.stderr and found.stdout


def test_logs_path_with_a_concrete_path_finds_the_records_of_its_route(data, data_dir):
    """A request stored under its route template (``/api/items/{item_id}``) is found by the concrete
    path a user types; its sibling under the same route is not. Last in the module: it adds records."""
    data.ensure_writer()
    now = time.time_ns()
    for i, item in enumerate(("12", "13")):
        emit_request(now - (5 - i) * S, "GET", f"/api/items/{item}", 200, "10.0.0.4", "api.example.com",
                     route="/api/items/{item_id}", response_time_ms=2)
    data.flush()
    assert_records(just_ok(data, data_dir, "logs-path", "/api/items/12"), "/api/items/12")
