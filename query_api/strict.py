"""Unknown query parameters are a 422 naming them, not silently ignored.

A misspelt filter (``/logs/search?levl=ERROR``) used to return every record, which reads as "all of
these match". The allowed names of each route come from the app's own OpenAPI schema (the public
description of what every route takes), so they never drift from the route signatures.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

#: the prefix of attribute filters (``attr.<name>=<value>``), taken by the routes whose schema
#: operation says ``x-attribute-filters`` (their own code checks the name is not empty)
ATTR_PREFIX = "attr."

#: (method, path template) -> the query parameter names the route declares, and whether it takes attr.*
_allowed: dict[tuple[str, str], tuple[frozenset[str], bool] | None] = {}


def _declared(app: Any, method: str, template: str) -> tuple[frozenset[str], bool] | None:
    key = (method, template)
    if key not in _allowed:
        operation = app.openapi().get("paths", {}).get(template, {}).get(method.lower())
        _allowed[key] = None if operation is None else (
            frozenset(p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query"),
            bool(operation.get("x-attribute-filters")),
        )
    return _allowed[key]


async def reject_unknown_query(request: Request) -> None:
    """An app-wide dependency: a query parameter the route does not declare is a 422."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template is None:
        return
    declared = _declared(request.app, request.method, template)
    if declared is None:  # not in the schema (the console's page and assets): nothing to check
        return
    allowed, attributes = declared
    unknown = sorted({
        name for name in request.query_params
        if name not in allowed and not (attributes and name.startswith(ATTR_PREFIX))
    })
    if unknown:
        known = ", ".join(sorted(allowed) + ([ATTR_PREFIX + "<name>"] if attributes else [])) or "none"
        raise RequestValidationError([
            {"loc": ("query", name), "msg": f"unknown query parameter (this route takes: {known})",
             "type": "extra_forbidden"}
            for name in unknown
        ])
