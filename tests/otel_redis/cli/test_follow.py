"""``just logs-follow`` in a real pseudo-terminal: live records in colour, filters, a server restart and
a server crash in the middle with records written while it was away (each shown once, in order), Ctrl-C."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from otel_redis.levels import INFO, WARNING

from .conftest import JUST, READ_TOKEN, Stack, Terminal

pytestmark = pytest.mark.xdist_group("cli-follow")

def _bodies(text: str) -> list[str]:
    """The message of every WARNING record line shown (``<time> WARNING  <message> hostname=...``)."""
    return [line.split(" WARNING ", 1)[1].split()[0] for line in text.splitlines() if " WARNING " in line]


def _count(text: str, body: str) -> int:
    return _bodies(text).count(body)


def test_follow_survives_a_server_restart_without_losing_or_repeating(stack: Stack, data_dir: Path):
    env = stack.env(data_dir, token=None)
    argv = [str(JUST), "logs-follow", "0.2", "", "WARNING", "api.example.com", READ_TOKEN]
    term = Terminal(argv, env)
    try:
        term.wait_for(lambda t: "following http://" in t, "the follower connect")

        def write(prefix: str, n: int) -> list[str]:
            """n matching records, each between two that the filters must hide."""
            shown = []
            for i in range(n):
                body = f"{prefix}-{i}"
                stack.log(time.time_ns(), INFO, f"{body} info", hostname="api.example.com")
                stack.log(time.time_ns(), WARNING, body, hostname="api.example.com")
                stack.log(time.time_ns(), WARNING, f"{body} elsewhere", hostname="other.example.com")
                shown.append(body)
            stack.flush()
            return shown

        expected = write("before", 3)
        term.wait_for(lambda t: _count(t, expected[-1]) == 1, "the records written before the restart")
        assert "\x1b[33m" in term.raw.decode()  # WARNING in yellow: it is a terminal

        # a graceful stop: the open follow stream does not hold it until the harness kills it
        assert stack.stop_service(signal.SIGTERM) in (0, -signal.SIGTERM)  # not -SIGKILL
        term.wait_for(lambda t: "reconnecting every 0.2s" in t, "the follower notice the outage")
        expected += write("while-down", 3)
        stack.start_service()
        term.wait_for(lambda t: _count(t, expected[-1]) == 1, "the records written while the server was down")
        assert "otel-redis: reconnected" in term.text

        expected += write("after", 2)
        term.wait_for(lambda t: _count(t, expected[-1]) == 1, "the records written after the restart")

        # a crash this time: the connection is cut mid-stream, nothing is closed cleanly
        assert stack.stop_service(signal.SIGKILL) == -signal.SIGKILL
        term.wait_for(lambda t: t.count("reconnecting every 0.2s") == 2, "the follower notice the crash")
        expected += write("after-crash", 2)
        stack.start_service()
        term.wait_for(lambda t: _count(t, expected[-1]) == 1, "the records written while the server was dead")

        term.send(b"\x03")  # Ctrl-C
        code = term.wait_exit()
        assert code == 130, code  # interrupted: the conventional 128 + SIGINT, no traceback
        out = term.text
        assert "Traceback" not in out
        assert _bodies(out) == expected  # each once, in order, and nothing the filters exclude
        assert " INFO " not in out and "other.example.com" not in out
    finally:
        term.close()


def test_a_word_first_is_a_source_filter_just_logs_follow_api(stack: Stack, data_dir: Path):
    """``just logs-follow api``, the specification's own example (Debug Commands): a first argument that is
    not a number is a source, records whose component or proxy hostname is ``api`` or starts with it at a
    word boundary; the reconnect interval stays at its default."""
    term = Terminal([str(JUST), "logs-follow", "api"], stack.env(data_dir))
    try:
        term.wait_for(lambda t: "following http://" in t, "the follower connect")
        for body, attrs in (
            ("from-api-server", {"component": "api_server"}),
            ("from-worker", {"component": "worker"}),
            ("from-api-host", {"component": "worker", "hostname": "api.example.com"}),
            ("from-apiary", {"component": "apiary"}),
            ("last-api", {"component": "api"}),
        ):
            stack.log(time.time_ns(), WARNING, body, **attrs)
        stack.flush()
        term.wait_for(lambda t: "last-api" in t, "the records of the api source")
        term.send(b"\x03")
        assert term.wait_exit() == 130
        shown = [line for line in term.text.splitlines() if " WARNING " in line]
        assert [b for b in ("from-api-server", "from-api-host", "last-api") if any(b in line for line in shown)] == [
            "from-api-server", "from-api-host", "last-api"]
        assert len(shown) == 3 and "from-worker" not in term.text and "from-apiary" not in term.text
    finally:
        term.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, (None, None)), ("0.5", (0.5, None)), ("2", (2.0, None)), ("api", (None, "api")),
     ("api.example.com", (None, "api.example.com"))],
)
def test_interval_or_source(text, expected):
    from otel_redis.cli.logs import interval_or_source

    assert interval_or_source(text) == expected
