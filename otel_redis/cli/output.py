"""What the CLI prints: one line per record (coloured or plain), JSON Lines for scripts, small tables.

Records are printed in the order the API returns them, which is chronological (oldest first, most
recent at the bottom), with no summary. Colour: ``--color always|never|auto``; ``auto`` is on only
for a terminal, off when ``NO_COLOR`` is set, forced by ``FORCE_COLOR`` (see otel_redis.render).
"""

from __future__ import annotations

import sys
from typing import IO, Any, Iterable, Mapping

import orjson
from rich.text import Text

from ..render import render_record, to_ansi, want_color


def color_choice(value: str | None, stream: IO[str] | None = None) -> bool:
    """``always``/``never``/``auto`` (None) -> whether to write ANSI colours to ``stream``."""
    if value == "always":
        return want_color(stream, force=True)
    if value == "never":
        return False
    return want_color(stream)


class Printer:
    """Writes records and documents to stdout, flushing each line (so ``follow`` is live in a pipe)."""

    def __init__(self, *, json: bool = False, color: bool = False, details: bool = False, out: IO[str] | None = None):
        self.json = json
        self.color = color
        self.details = details
        self.out = out or sys.stdout

    def record(self, record: Mapping[str, Any]) -> None:
        if self.json:
            line = orjson.dumps(record).decode()
        else:
            line = to_ansi(render_record(record, details=self.details), self.color)
        self.out.write(line + "\n")
        self.out.flush()

    def related(self, record: Mapping[str, Any]) -> None:
        """A record shown under another one (the rest of an error's trace)."""
        if self.json:
            self.record(record)
            return
        line = Text("    ↳ ", style="dim") + render_record(record)
        self.out.write(to_ansi(line, self.color) + "\n")
        self.out.flush()

    def records(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self.record(record)

    def document(self, value: Any) -> None:
        """A whole API answer (``--json`` of the summary commands)."""
        self.out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
        self.out.flush()

    def text(self, text: Text | str) -> None:
        line = to_ansi(text, self.color) if isinstance(text, Text) else text
        self.out.write(line + "\n")
        self.out.flush()


def records_of(payload: Any) -> list[dict[str, Any]]:
    """The records of a list answer: ``{"records": [...]}`` (or a bare list)."""
    if isinstance(payload, list):
        items = payload
    elif isinstance(payload, Mapping):
        items = next((payload[k] for k in ("records", "items", "logs", "entries") if isinstance(payload.get(k), list)), [])
    else:
        items = []
    return [item for item in items if isinstance(item, dict)]


__all__ = ["Printer", "color_choice", "records_of"]
