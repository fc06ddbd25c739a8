"""Readable text for the API's summary answers (stats, OAuth summaries, self-check, clear).

Generic on purpose: a mapping becomes ``key: value`` lines (nested mappings indented), a list of
records becomes one rendered line per record (oldest first, as the API returns them), a list of
flat mappings becomes a small table. So the CLI keeps working when the API adds a field.
"""

from __future__ import annotations

from typing import Any, Mapping

from rich.text import Text

from ..render import render_record
from .output import Printer

_INDENT = "  "


def is_record(value: Any) -> bool:
    return isinstance(value, Mapping) and "timestamp" in value and "level" in value and ("body" in value or "method" in value)


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value)


def _is_flat(value: Any) -> bool:
    return isinstance(value, Mapping) and all(not isinstance(v, (Mapping, list)) for v in value.values())


def render_document(value: Any, printer: Printer, depth: int = 0) -> None:
    pad = _INDENT * depth
    if is_record(value):
        printer.text(Text(pad) + render_record(value, details=printer.details))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, (Mapping, list)) and item:
                printer.text(Text(f"{pad}{key}:", style="bold"))
                render_document(item, printer, depth + 1)
            else:
                label = Text(f"{pad}{key}: ", style="bold")
                printer.text(label + Text(_scalar(item) if not isinstance(item, (Mapping, list)) else "(none)"))
    elif isinstance(value, list):
        if value and all(_is_flat(v) and not is_record(v) for v in value):
            headers = tuple(dict.fromkeys(str(k) for v in value for k in v))
            _table(printer, headers, [tuple(_scalar(v.get(h)) for h in headers) for v in value], pad)
        else:
            for item in value:
                if isinstance(item, (Mapping, list)) and not is_record(item):
                    render_document(item, printer, depth)
                    printer.text("")
                else:
                    render_document(item, printer, depth) if is_record(item) else printer.text(pad + _scalar(item))
    else:
        printer.text(pad + _scalar(value))





def _table(printer: Printer, headers: tuple[str, ...], rows: list[tuple[str, ...]], pad: str = "",
           right: int = 0) -> None:
    """Headers (dim) and rows, columns padded to their widest cell; columns from ``right`` on right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: tuple[str, ...]) -> str:
        return pad + "  ".join(c.rjust(w) if right and i >= right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    printer.text(Text(line(headers), style="dim"))
    for row in rows:
        printer.text(line(row))


def _pairs(mapping: Any) -> str:
    if not isinstance(mapping, Mapping) or not mapping:
        return "-"
    return "  ".join(f"{k}={_scalar(v)}" for k, v in mapping.items())


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def render_stats(events: Any, stats: Any, printer: Printer) -> None:
    """``logs stats``: event counts first (the specification's "event statistics"), then request figures."""
    events = events if isinstance(events, Mapping) else {}
    stats = stats if isinstance(stats, Mapping) else {}
    bold = "bold"
    printer.text(Text(f"Events in the last {_scalar(events.get('hours', stats.get('hours')))} h: ", style=bold)
                 + Text(_scalar(events.get("total", 0))))
    rows = [(e.get("event", ""), e.get("count", 0)) for e in events.get("events", []) if isinstance(e, Mapping)]
    width = max((len(str(name)) for name, _ in rows), default=0)
    for name, count in rows:
        printer.text(f"  {str(name):<{width}}  {count}")
    req = stats.get("requests") or {}
    if isinstance(req, Mapping) and req:
        rate = req.get("error_rate")
        printer.text(
            Text("Requests: ", style=bold)
            + Text(f"{_scalar(req.get('total', 0))}  errors {_scalar(req.get('errors', 0))}"
                   + (f" ({float(rate) * 100:.1f}%)" if isinstance(rate, (int, float)) else "")
                   + f"  {_scalar(req.get('requests_per_second', 0))} req/s")
        )
        printer.text(f"  by status: {_pairs(req.get('by_status'))}")
    logs = stats.get("logs") or {}
    if isinstance(logs, Mapping) and logs:
        printer.text(Text("Logs: ", style=bold) + Text(f"{_scalar(logs.get('total', 0))}  by level: {_pairs(logs.get('by_level'))}"))
    visitors = stats.get("unique_visitors") or {}
    if isinstance(visitors, Mapping) and visitors:
        printer.text(Text("Unique visitors: ", style=bold)
                     + Text(f"{_scalar(visitors.get('total', 0))}  {_pairs(visitors.get('by_hostname'))}"))
    top = [p for p in stats.get("top_paths") or [] if isinstance(p, Mapping)]
    if top:
        printer.text(Text("Top paths:", style=bold))
        width = max(len(str(p.get("path", ""))) for p in top)
        for p in top:
            printer.text(f"  {str(p.get('path', '')):<{width}}  {_scalar(p.get('count'))}")
    times = stats.get("response_times") or {}
    if isinstance(times, Mapping) and times:
        printer.text(Text("Response times (ms):", style=bold))
        named = [("all", times.get("all") or {}), *(times.get("by_hostname") or {}).items()]
        rows = [(str(name), _scalar(p.get("count", 0)), *(_ms(p.get(f"p{q}", p.get(f"p{q}_ms"))) for q in (50, 95, 99)))
                for name, p in named if isinstance(p, Mapping)]
        _table(printer, ("", "count", "p50", "p95", "p99"), rows, _INDENT, right=1)
    hours = [h for h in req.get("per_hour") or [] if isinstance(h, Mapping)] if isinstance(req, Mapping) else []
    event_hours = {h.get("hour"): h.get("total", 0) for h in events.get("per_hour") or [] if isinstance(h, Mapping)}
    if hours or event_hours:
        printer.text(Text("Per hour (UTC):", style=bold))
        by_hour = {h.get("hour"): h for h in hours}
        rows = [
            (str(hour), *(_scalar(by_hour.get(hour, {}).get(k, 0)) for k in ("requests", "errors", "logs")),
             _scalar(event_hours.get(hour, 0)))
            for hour in sorted(set(by_hour) | set(event_hours), key=str)
        ]
        _table(printer, ("hour", "requests", "errors", "logs", "events"), rows, _INDENT, right=1)


__all__ = ["is_record", "render_document", "render_stats"]
