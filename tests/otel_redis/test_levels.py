"""levels.py: the one table of level names, stdlib numbers and OTel severity numbers."""

from __future__ import annotations

import logging

import pytest
from opentelemetry._logs import SeverityNumber

from otel_redis import levels


def test_trace_is_a_stdlib_level_below_debug():
    assert levels.TRACE < logging.DEBUG
    assert logging.getLevelName(levels.TRACE) == "TRACE"


@pytest.mark.parametrize(("value", "name"), [
    ("info", "INFO"), (" Warning ", "WARNING"), ("WARN", "WARNING"), ("fatal", "CRITICAL"), ("err", "ERROR"),
    ("crit", "CRITICAL"), ("trace", "TRACE"), (5, "TRACE"), (40, "ERROR"), (None, "INFO"), ("  ", "INFO"),
])
def test_parse_level_accepts_names_aliases_and_numbers(value, name):
    assert levels.parse_level(value) == name


def test_parse_level_default_is_used_only_when_unset():
    assert levels.parse_level(None, default="DEBUG") == "DEBUG"
    assert levels.parse_level("error", default="DEBUG") == "ERROR"


@pytest.mark.parametrize("value", ["verbose", 15, "INFO2"])
def test_a_bad_level_names_the_value_and_the_choices(value):
    with pytest.raises(ValueError, match=r"invalid log level .*TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        levels.parse_level(value)


@pytest.mark.parametrize(("severity", "name"), [
    (None, "INFO"), (0, "INFO"), (1, "TRACE"), (4, "TRACE"), (5, "DEBUG"), (8, "DEBUG"), (9, "INFO"), (12, "INFO"),
    (13, "WARNING"), (16, "WARNING"), (17, "ERROR"), (20, "ERROR"), (21, "CRITICAL"), (24, "CRITICAL"),
])
def test_every_otel_severity_range_maps_to_its_level(severity, name):
    assert levels.severity_to_name(severity) == name


def test_names_and_severities_round_trip():
    for name in levels.LEVEL_NAMES:
        assert levels.severity_to_name(levels.NAME_TO_SEVERITY[name].value) == name
        assert levels.stdlib_to_name(levels.NAME_TO_LEVEL[name]) == name
    assert levels.NAME_TO_SEVERITY["WARNING"] is SeverityNumber.WARN


@pytest.mark.parametrize(("levelno", "name"), [(0, "TRACE"), (9, "TRACE"), (15, "DEBUG"), (25, "INFO"), (35, "WARNING"), (45, "ERROR"),
                                                 (100, "CRITICAL")])
def test_any_stdlib_number_maps_to_the_level_at_or_below_it(levelno, name):
    assert levels.stdlib_to_name(levelno) == name


@pytest.mark.parametrize(("status", "name"), [(100, "INFO"), (200, "INFO"), (399, "INFO"), (400, "WARNING"),
                                               (499, "WARNING"), (500, "ERROR"), (599, "ERROR")])
def test_the_request_status_rule(status, name):
    assert levels.request_level(status) == name
    assert levels.request_levelno(status) == levels.NAME_TO_LEVEL[name]


def test_error_severity_starts_at_error():
    assert not levels.is_error_severity(SeverityNumber.WARN4.value)
    assert levels.is_error_severity(SeverityNumber.ERROR.value)
    assert levels.is_error_severity(SeverityNumber.FATAL4.value)
