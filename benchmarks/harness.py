"""What every benchmark module shares: a private Redis server, timing helpers, a result section."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import redis

from otel_redis.config import Settings, load_settings
from otel_redis.embedded import EmbeddedRedis


@dataclass
class Section:
    """One module's results: a markdown table plus notes (goals and verdicts)."""

    title: str
    command: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", f"Command: `{self.command}`", ""]
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "|".join("---" for _ in self.headers) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(row) + " |")
        if self.notes:
            lines.append("")
            lines.extend(f"- {n}" for n in self.notes)
        return "\n".join(lines) + "\n"


@dataclass
class BenchContext:
    quick: bool = False

    @contextlib.contextmanager
    def redis(self, **extra: str) -> Iterator[tuple[EmbeddedRedis, Settings]]:
        """A fresh private Redis server (no persistence) and settings pointing at it."""
        with tempfile.TemporaryDirectory(prefix="otel-redis-bench-") as tmp:
            server = EmbeddedRedis(Path(tmp) / "redis", persist=False)
            server.start()
            try:
                settings = load_settings({}).with_overrides(redis_url=server.url, data_dir=Path(tmp) / "data")
                yield server, settings
            finally:
                server.stop()


def best_of(fn: Callable[[], float], repeat: int = 5) -> float:
    """Run ``fn`` (returns seconds) ``repeat`` times and keep the best: the least disturbed run."""
    return min(fn() for _ in range(repeat))


def median_of(fn: Callable[[], float], repeat: int = 5) -> float:
    return statistics.median(fn() for _ in range(repeat))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def commandstats(client: redis.Redis) -> dict[str, dict[str, float]]:
    """INFO commandstats as {command: {calls, usec, ...}}."""
    raw = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): v for k, v in raw.items()}


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"
