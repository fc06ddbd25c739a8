"""The justfile against the specification's "Log Query Commands": the same recipes, arguments, order and
defaults, and every argument a recipe accepts reaching the query (seen in the request the CLI sends)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from otel_redis.cli import main
from otel_redis.cli.logs import RECIPES
from otel_redis.embedded import free_port

from .conftest import JUST, ROOT, SCRUBBED, cli_env, one_error_line, run_just

#: copied from the specification (logging-architecture.md, "Log Query Commands")
SPEC = """
just logs [hours] [event] [level] [hostname] [limit] [token]
just logs-ip <ip> [hours] [event] [level] [limit] [token]
just logs-proxy <hostname> [hours] [limit] [token]
just logs-hostname <hostname> [hours] [limit] [token]
just logs-oauth-client <client-id> [hours] [event] [level] [limit] [token]
just logs-search [query] [hours] [event] [level] [hostname] [limit] [token]
just logs-errors [hours] [limit] [token]
just logs-errors-debug [hours] [include-warnings] [limit] [token]
just logs-follow [interval] [event] [level] [hostname] [token]
just logs-oauth <ip> [hours] [limit] [token]
just logs-oauth-debug <ip> [hours] [limit] [token]
just logs-oauth-flow [client-id] [username] [hours] [token]
just logs-stats [hours] [token]
just logs-test [token]
just logs-user <user-id> [hours] [limit] [token]
just logs-session <session-id> [hours] [limit] [token]
just logs-method <method> [hours] [limit] [token]
just logs-status <code> [hours] [limit] [token]
just logs-slow [threshold-ms] [hours] [limit] [token]
just logs-path <pattern> [hours] [limit] [token]
just logs-oauth-user <username> [hours] [limit] [token]
just logs-docker [lines] [follow]
just logs-service [service] [lines]
just logs-clear [token]
just logs-help
"""
#: the specification's defaults ("hours - default: 24", "limit - default: 100")
SPEC_DEFAULTS = {"hours": "24", "limit": "100"}


def _spec() -> dict[str, list[tuple[str, bool]]]:
    out = {}
    for line in SPEC.strip().splitlines():
        _, name, *params = line.split()
        out[name] = [(p[1:-1], p.startswith("<")) for p in params]
    return out


@pytest.fixture(scope="module")
def dump() -> dict:
    done = subprocess.run([str(JUST), "--dump", "--dump-format", "json"], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def test_recipes_are_exactly_the_specification_list(dump):
    assert set(dump["recipes"]) == set(_spec())


def test_each_recipe_has_the_specified_arguments_order_and_defaults(dump):
    for name, params in _spec().items():
        recipe = dump["recipes"][name]
        got = [(p["name"], p["default"] is None) for p in recipe["parameters"]]
        assert got == params, name
        for p in recipe["parameters"]:
            if p["name"] in SPEC_DEFAULTS:
                assert p["default"] == SPEC_DEFAULTS[p["name"]], (name, p["name"])


def test_help_text_of_the_cli_lists_the_same_recipes():
    spec = _spec()
    assert [name for name, _, _ in RECIPES] == list(spec)
    for name, usage, _ in RECIPES:
        assert usage.split() == [f"<{p}>" if req else f"[{p}]" for p, req in spec[name]]


def test_logs_help_lists_every_command_with_one_line_each(data_dir):
    done = run_just("logs-help", env=cli_env(data_dir))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name in _spec():
        matching = [line for line in lines if re.match(rf"just {re.escape(name)}( |$)", line)]
        assert len(matching) == 1, name
        assert "#" in matching[0]  # with its one-line description


# every argument of every API recipe, with a value that shows where it went
VALUES = {
    "hours": "7", "event": "ev-x", "level": "WARNING", "hostname": "host-x.example", "limit": "9",
    "ip": "10.1.2.3", "client-id": "cid x/y", "query": "needle & co", "include-warnings": "true",
    "interval": "2", "username": "user-x", "user-id": "uid-x", "session-id": "sid-x", "method": "PATCH",
    "code": "418", "threshold-ms": "250", "pattern": "/p/x*?", "token": "tok-x",
}
#: where each argument must show up in the request: a query parameter, or the last path segment
WHERE = {
    "hours": "hours", "event": "event", "level": "level", "hostname": "hostname", "limit": "limit",
    "query": "text", "include-warnings": "include_warnings", "threshold-ms": "threshold_ms", "pattern": "pattern",
    "username": "username", "client-id": "client_id",
}
#: arguments that are not part of the URL: checked by the end-to-end tests instead
NOT_IN_URL = {"token", "interval"}
API_RECIPES = [n for n in _spec() if n not in ("logs-docker", "logs-service", "logs-help", "logs-clear", "logs-test")]


def _request_of(recipe: str, args: list[str], data_dir, monkeypatch, capsys) -> str:
    """What just expands the recipe to (``just --dry-run``), run by the real CLI in this process
    against a closed port: the request it tried to send, as it reports it (OTEL_REDIS_CLI_VERBOSE)."""
    done = subprocess.run([str(JUST), "--dry-run", recipe, *args], cwd=ROOT, capture_output=True, text=True,
                          env=cli_env(data_dir), check=True)
    argv = shlex.split(done.stderr.strip())
    argv = argv[argv.index("logs"):]
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_REDIS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("OTEL_REDIS_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_REDIS_CLI_VERBOSE", "1")
    capsys.readouterr()
    assert main(argv) == 3  # unreachable
    err = capsys.readouterr().err
    return next(line for line in err.splitlines() if line.startswith("otel-redis: GET "))


@pytest.mark.parametrize("name", API_RECIPES)
def test_every_argument_reaches_the_request(name, data_dir, monkeypatch, capsys):
    params = _spec()[name]
    request = _request_of(name, [VALUES[p] for p, _ in params], data_dir, monkeypatch, capsys)
    url = urlsplit(request.split()[2])
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    path_segments = [unquote(s) for s in url.path.split("/")]
    for param, _ in params:
        if param in NOT_IN_URL:
            continue
        value = VALUES[param]
        if param in WHERE and WHERE[param] in query:
            assert query[WHERE[param]] == value, (param, request)
        else:
            assert value in path_segments, (param, request)


def test_empty_argument_means_not_set(data_dir, monkeypatch, capsys):
    request = _request_of("logs", ["", "", "ERROR"], data_dir, monkeypatch, capsys)
    query = parse_qs(urlsplit(request.split()[2]).query)
    assert query == {"level": ["ERROR"], "limit": ["100"]}  # hours "" -> the API's default


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("logs-status", "abc"), "code must be a whole number"),
        (("logs", "-3"), "hours must be a positive number"),
        (("logs-errors-debug", "24", "maybe"), "include_warnings must be true or false"),
        (("logs-follow", "0"), "interval must be a positive number"),
        (("logs-ip", ""), "ip is required"),
        (("logs-service", "postgres"), "unknown service 'postgres'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, message, data_dir):
    done = run_just(*args, env=cli_env(data_dir, OTEL_REDIS_API_URL=f"http://127.0.0.1:{free_port()}"))
    assert done.returncode == 2
    assert message in one_error_line(done)


def test_unreachable_server_is_one_line_and_exit_3(data_dir):
    port = free_port()
    done = run_just("logs-errors", env=cli_env(data_dir, OTEL_REDIS_API_URL=f"http://127.0.0.1:{port}"))
    assert done.returncode == 3
    line = one_error_line(done)
    assert f"cannot reach the query API at http://127.0.0.1:{port}" in line
    assert done.stdout == ""
