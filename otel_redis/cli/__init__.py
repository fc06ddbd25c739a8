"""The ``otel-redis`` command: one sub-command module per concern.

Errors are one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, NoReturn, Sequence

from ..config import ConfigError

#: sub-command modules; each has ``register(subparsers)`` that sets ``func`` on its parser
_MODULES = ("serve", "cleanup", "collector", "alerts", "logs", "redis_cli")


class CliError(Exception):
    """A user-facing error: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit code 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(prog="otel-redis", description="OpenTelemetry logs in Redis: serve, query, follow.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except CliError as exc:
        print(f"otel-redis: {exc}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        print(f"otel-redis: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
