"""One readable line per record, coloured by level and HTTP status class.

Colour follows structlog's ConsoleRenderer conventions: on only for a terminal, off when ``NO_COLOR``
is set (any value), forced on by ``FORCE_COLOR`` or ``colors=True``. Used by the CLI and by
``otel-redis serve`` to show records read back from Redis.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any, Mapping

from rich.text import Text

LEVEL_STYLES: dict[str, str] = {
    "TRACE": "dim",
    "DEBUG": "blue",
    "INFO": "green",
    "WARNING": "yellow",
    "ERROR": "red",
    "CRITICAL": "bold white on red",
}


def status_style(status: int) -> str:
    if status >= 500:
        return "bold red"
    if status >= 400:
        return "yellow"
    if status >= 300:
        return "cyan"
    if status >= 200:
        return "green"
    return "white"


def want_color(stream: IO[str] | None = None, force: bool | None = None) -> bool:
    """Colour decision: explicit flag, then NO_COLOR, then FORCE_COLOR, then isatty."""
    if force is not None:
        return force
    if "NO_COLOR" in os.environ:
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def _short_time(timestamp: str) -> str:
    # 2024-01-15T10:30:45.123456789Z -> 2024-01-15 10:30:45.123
    if "T" in timestamp:
        date, _, clock = timestamp.partition("T")
        return f"{date} {clock[:12]}"
    return timestamp


def render_record(record: Mapping[str, Any], *, details: bool = False) -> Text:
    """A record as the API returns it (flat JSON of the stored hash) -> one styled line."""
    text = Text()
    text.append(_short_time(str(record.get("timestamp", ""))), style="dim")
    text.append(" ")
    status = record.get("status_code")
    if record.get("method") and status not in (None, ""):
        code = int(status)
        level = str(record.get("level") or "INFO")
        text.append(f"{level:<8}", style=LEVEL_STYLES.get(level, ""))
        text.append(" ")
        text.append(f"{record.get('method', ''):<6}", style="bold")
        text.append(" ")
        text.append(str(record.get("path", "")))
        if record.get("query"):
            text.append(f"?{record['query']}", style="dim")
        text.append(" ")
        text.append(str(code), style=status_style(code))
        rt = record.get("response_time_ms")
        if rt not in (None, ""):
            text.append(f" {float(rt):.1f}ms", style="magenta")
        client = record.get("client_ip") or ""
        if record.get("client_hostname"):
            client = f"{client} ({record['client_hostname']})"
        if client:
            text.append(f" client={client}", style="cyan")
        if record.get("proxy_hostname"):
            text.append(f" host={record['proxy_hostname']}", style="dim")
        if record.get("user_id"):
            text.append(f" user={record['user_id']}", style="blue")
        if record.get("error"):
            text.append(f" error={record['error']}", style="red")
    else:
        level = str(record.get("level") or "INFO")
        text.append(f"{level:<8}", style=LEVEL_STYLES.get(level, ""))
        text.append(" ")
        if record.get("component"):
            text.append(f"[{record['component']}] ", style="bold")
        if record.get("event"):
            text.append(f"<{record['event']}> ", style="magenta")
        body = record.get("body", "")
        text.append(body if isinstance(body, str) else str(body))
        attrs = record.get("attributes") or {}
        if isinstance(attrs, Mapping):
            for key in ("client.address", "enduser.id", "hostname"):
                if key in attrs:
                    text.append(f" {key}={attrs[key]}", style="cyan")
    if record.get("trace_id"):
        text.append(f" trace={record['trace_id']}", style="dim")
    if details:
        attrs = record.get("attributes") or {}
        if isinstance(attrs, Mapping):
            for key, value in attrs.items():
                if key != "exception.stacktrace":
                    text.append(f"\n    {key}: {value}", style="dim")
            stack = attrs.get("exception.stacktrace")
            if stack:
                text.append("\n    " + str(stack).rstrip().replace("\n", "\n    "), style="red")
    return text


def to_ansi(text: Text, color: bool) -> str:
    """Render a rich Text to a string with (or without) ANSI escapes."""
    if not color:
        return text.plain
    from rich.console import Console

    console = Console(force_terminal=True, color_system="standard", width=10_000, no_color=False, highlight=False)
    with console.capture() as cap:
        console.print(text, end="", soft_wrap=True)
    return cap.get()
