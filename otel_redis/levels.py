"""Log levels: the specification's names, stdlib numbers and OTel severity numbers in one table.

TRACE (5) is a real level below DEBUG; it is registered with stdlib ``logging`` on import so that
``logging.getLogger(...).log(5, ...)`` and ``logging.getLevelName(5)`` agree with ours.
"""

from __future__ import annotations

import logging

from opentelemetry._logs import SeverityNumber

TRACE = 5
DEBUG = logging.DEBUG
INFO = logging.INFO
WARNING = logging.WARNING
ERROR = logging.ERROR
CRITICAL = logging.CRITICAL

logging.addLevelName(TRACE, "TRACE")

LEVEL_NAMES: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: level name -> stdlib level number
NAME_TO_LEVEL: dict[str, int] = {
    "TRACE": TRACE,
    "DEBUG": DEBUG,
    "INFO": INFO,
    "WARNING": WARNING,
    "ERROR": ERROR,
    "CRITICAL": CRITICAL,
}

#: level name -> OTel severity number (the first number of each OTel range)
NAME_TO_SEVERITY: dict[str, SeverityNumber] = {
    "TRACE": SeverityNumber.TRACE,
    "DEBUG": SeverityNumber.DEBUG,
    "INFO": SeverityNumber.INFO,
    "WARNING": SeverityNumber.WARN,
    "ERROR": SeverityNumber.ERROR,
    "CRITICAL": SeverityNumber.FATAL,
}

_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "ERR": "ERROR", "CRIT": "CRITICAL"}


def parse_level(value: str | int | None, default: str = "INFO") -> str:
    """Return the canonical level name for a LOG_LEVEL value, or raise ValueError with the choices."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, int):
        for name, number in NAME_TO_LEVEL.items():
            if number == value:
                return name
        raise ValueError(f"invalid log level {value!r}: expected one of {', '.join(LEVEL_NAMES)}")
    name = value.strip().upper()
    name = _ALIASES.get(name, name)
    if name not in NAME_TO_LEVEL:
        raise ValueError(f"invalid log level {value!r}: expected one of {', '.join(LEVEL_NAMES)}")
    return name


def severity_to_name(severity: int | None) -> str:
    """Map any OTel severity number (1..24) to our level name; 0/None (unspecified) maps to INFO."""
    if not severity:
        return "INFO"
    if severity <= 4:
        return "TRACE"
    if severity <= 8:
        return "DEBUG"
    if severity <= 12:
        return "INFO"
    if severity <= 16:
        return "WARNING"
    if severity <= 20:
        return "ERROR"
    return "CRITICAL"


def stdlib_to_name(levelno: int) -> str:
    """Map a stdlib level number (any integer) to the nearest of our level names at or below it."""
    if levelno >= CRITICAL:
        return "CRITICAL"
    if levelno >= ERROR:
        return "ERROR"
    if levelno >= WARNING:
        return "WARNING"
    if levelno >= INFO:
        return "INFO"
    if levelno >= DEBUG:
        return "DEBUG"
    return "TRACE"


# ----------------------------------------------------------------------------- request records

#: the component of every request record, whichever door made it
REQUEST_COMPONENT = "http"
#: the first OTel severity number of an error (ERROR, then FATAL above it)
ERROR_SEVERITY: int = SeverityNumber.ERROR.value


def request_levelno(status_code: int) -> int:
    """The one status -> level rule of request records: INFO below 400, WARNING for 4xx, ERROR for
    5xx (a stdlib level number)."""
    return ERROR if status_code >= 500 else WARNING if status_code >= 400 else INFO


def request_level(status_code: int) -> str:
    """:func:`request_levelno` as a level name."""
    return "ERROR" if status_code >= 500 else "WARNING" if status_code >= 400 else "INFO"


def is_error_severity(severity_number: int) -> bool:
    """ERROR or above (what the error indexes and the error retention class hold)."""
    return severity_number >= ERROR_SEVERITY
