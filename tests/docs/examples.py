"""Fenced code blocks of the README and docs/, with the markers that say how to run them.

A ```python or ```bash block runs as written. ``<!-- no-run: reason -->`` on the line before a
fence skips it (the reason is required); ``<!-- expect: text -->`` says what its output contains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUNNABLE = ("python", "bash")
_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*(no-run|expect):\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None = None
    expect: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every runnable block of one Markdown file; a ``no-run`` marker without a reason is an error."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").split("\n")
    markers: dict[str, list[str]] = {}
    i = 0
    while i < len(lines):
        marker = _MARKER.match(lines[i])
        fence = _FENCE.match(lines[i])
        if marker:
            markers.setdefault(marker.group(1), []).append(marker.group(2))
        elif fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if fence.group(1) in RUNNABLE:
                reasons = markers.get("no-run", [])
                if reasons and not all(reasons):
                    raise ValueError(f"{path.name}:{i + 1}: a no-run marker needs a reason")
                found.append(Block(path, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n",
                                   skip=reasons[0] if reasons else None, expect=tuple(markers.get("expect", []))))
            markers = {}
            i = end
        elif lines[i].strip():
            markers = {}
        i += 1
    return found


def documents(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]
