"""Path normalisation, so that client-chosen paths cannot create unbounded index keys."""

from __future__ import annotations

import functools
import re

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_INT = re.compile(r"^\d+$")
_HEX = re.compile(r"^(?=.*\d)[0-9a-fA-F]{8,}$")
_TOKENISH = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-]{16,}$")
_EMAIL = re.compile(r"^[^@/]+@[^@/]+$")

MAX_SEGMENTS = 8
UNMATCHED = "/{unmatched}"


def normalize_segment(segment: str) -> str:
    if not segment:
        return segment
    if _INT.match(segment):
        return "{id}"
    if _UUID.match(segment):
        return "{uuid}"
    if _HEX.match(segment):
        return "{hex}"
    if _EMAIL.match(segment):
        return "{email}"
    if _TOKENISH.match(segment):
        return "{token}"
    if len(segment) > 64:
        return "{long}"
    return segment


def normalize_path(path: str) -> str:
    """``/users/123/orders/9f8e...`` -> ``/users/{id}/orders/{hex}``; query strings are dropped."""
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    parts = path.split("/")
    if len(parts) > MAX_SEGMENTS + 1:
        parts = parts[: MAX_SEGMENTS + 1] + ["{more}"]
    return "/".join(normalize_segment(p) for p in parts)


def index_path(route: str, path: str, status_code: int) -> str:
    """The path an index key is built from: the route template, else a normalised path; requests that
    matched no route and failed (404/405 from scanners) share one key."""
    if route:
        return route
    if status_code in (404, 405):
        return UNMATCHED
    return normalize_path(path)


#: a path parameter of a route template: Starlette/FastAPI ``{name}`` / ``{name:path}``, Flask and
#: Django ``<name>`` / ``<int:name>`` / ``<path:name>``
_PARAM = re.compile(r"\{[^{}/]*?(:path)?\}|<(?:(path):)?[^<>/]*>")


@functools.lru_cache(maxsize=1024)
def _template_regex(template: str) -> re.Pattern[str] | None:
    if "{" not in template and "<" not in template:
        return None
    out, at = [], 0
    for m in _PARAM.finditer(template):
        out.append(re.escape(template[at:m.start()]))
        out.append(".+" if (m.group(1) or m.group(2)) else "[^/]+")
        at = m.end()
    out.append(re.escape(template[at:]))
    return re.compile("".join(out))


def route_matches(template: str, path: str) -> bool:
    """True when the concrete ``path`` (``/users/12``) is one the route ``template``
    (``/users/{user_id}``) serves: a query for a concrete path finds the records of its route."""
    rx = _template_regex(template)
    return rx is not None and rx.fullmatch(path.split("?", 1)[0]) is not None
