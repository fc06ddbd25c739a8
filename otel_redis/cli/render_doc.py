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
            headers = tuple(dict.fromkeys(k for v in value for k in v))
            rows = [tuple(_scalar(v.get(h)) for h in headers) for v in value]
            widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
            printer.text(Text(pad + "  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip(), style="dim"))
            for row in rows:
                printer.text(pad + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        else:
            for item in value:
                if isinstance(item, (Mapping, list)) and not is_record(item):
                    render_document(item, printer, depth)
                    printer.text("")
                else:
                    render_document(item, printer, depth) if is_record(item) else printer.text(pad + _scalar(item))
    else:
        printer.text(pad + _scalar(value))





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
        rows = [("all", times.get("all") or {})]
        rows += list((times.get("by_hostname") or {}).items())
        width = max(len(str(name)) for name, _ in rows)
        printer.text(Text(f"Response times (ms):{'':<{max(0, width - 18)}}   count     p50     p95     p99", style=bold))
        for name, p in rows:
            printer.text(f"  {str(name):<{width}}  {_scalar(p.get('count', 0)):>6}  {_ms(p.get('p50_ms')):>6}"
                         f"  {_ms(p.get('p95_ms')):>6}  {_ms(p.get('p99_ms')):>6}")
    hours = [h for h in req.get("per_hour") or [] if isinstance(h, Mapping)] if isinstance(req, Mapping) else []
    event_hours = {h.get("hour"): h.get("total", 0) for h in events.get("per_hour") or [] if isinstance(h, Mapping)}
    if hours or event_hours:
        printer.text(Text("Per hour (UTC):      requests  errors    logs  events", style=bold))
        by_hour = {h.get("hour"): h for h in hours}
        for hour in sorted(set(by_hour) | set(event_hours), key=str):
            h = by_hour.get(hour, {})
            printer.text(f"  {str(hour):<16}  {_scalar(h.get('requests', 0)):>8}  {_scalar(h.get('errors', 0)):>6}"
                         f"  {_scalar(h.get('logs', 0)):>6}  {_scalar(event_hours.get(hour, 0)):>6}")
__all__ = ["is_record", "render_document", "render_stats"]
