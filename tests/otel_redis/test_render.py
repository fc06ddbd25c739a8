"""render.py: one readable line per record, coloured by level and status class only when wanted."""

from __future__ import annotations

import io

import pytest

from otel_redis.render import LEVEL_STYLES, render_record, status_style, to_ansi, want_color

REQUEST = {"timestamp": "2024-01-15T10:30:45.123456789Z", "level": "WARNING", "method": "GET", "path": "/items/42",
           "query": "page=2", "status_code": "404", "response_time_ms": "12.34", "client_ip": "203.0.113.9",
           "client_hostname": "c9.example.net", "proxy_hostname": "api.example.com", "user_id": "u-1",
           "trace_id": "0af7651916cd43dd8448eb211c80319c"}


def test_a_request_record_is_one_line_with_every_field_that_is_set():
    line = render_record(REQUEST).plain
    assert line == ("2024-01-15 10:30:45.123 WARNING  GET    /items/42?page=2 404 12.3ms client=203.0.113.9 (c9.example.net)"
                    " host=api.example.com user=u-1 trace=0af7651916cd43dd8448eb211c80319c")


def test_a_log_record_shows_component_event_body_and_the_known_attributes():
    record = {"timestamp": "2024-01-15T10:30:45.5Z", "level": "ERROR", "component": "db", "event": "pool_exhausted",
              "body": "no connection", "attributes": {"enduser.id": "u-2", "other": "x"}}
    assert render_record(record).plain == "2024-01-15 10:30:45.5Z ERROR    [db] <pool_exhausted> no connection enduser.id=u-2"


def test_details_add_every_attribute_and_the_stack_trace_last():
    record = {"level": "ERROR", "body": "boom",
              "attributes": {"exception.stacktrace": "Traceback\n  line 1\n", "exception.type": "KeyError"}}
    lines = render_record(record, details=True).plain.split("\n")
    assert lines[1:] == ["    exception.type: KeyError", "    Traceback", "      line 1"]


def test_a_non_string_body_and_missing_fields_do_not_fail():
    assert render_record({"body": {"k": 1}}).plain == " INFO     {'k': 1}"


@pytest.mark.parametrize(("status", "style"), [(101, "white"), (204, "green"), (299, "green"), (300, "cyan"), (302, "cyan"), (404, "yellow"), (503, "bold red")])
def test_status_classes_have_their_styles(status, style):
    assert status_style(status) == style


def test_the_line_is_coloured_by_level_and_status():
    text = render_record(REQUEST)
    styles = {text.plain[span.start:span.end]: str(span.style) for span in text.spans}
    assert styles["WARNING "] == LEVEL_STYLES["WARNING"] and styles["404"] == "yellow"
    coloured = to_ansi(text, color=True)
    assert "\x1b[" in coloured and to_ansi(text, color=False) == text.plain


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_decision_follows_flag_then_no_color_then_force_color_then_the_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert want_color(Tty()) is True and want_color(io.StringIO()) is False
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert want_color(io.StringIO()) is True
    monkeypatch.setenv("FORCE_COLOR", "0")
    assert want_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "")  # any value, even empty
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert want_color(Tty()) is False
    assert want_color(io.StringIO(), force=True) is True and want_color(Tty(), force=False) is False
