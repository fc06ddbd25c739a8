"""Route templates of every framework door match the concrete paths they serve."""

from __future__ import annotations

import pytest

from otel_redis.paths import route_matches


@pytest.mark.parametrize(("template", "path", "expected"), [
    ("/users/{user_id}", "/users/12", True),            # Starlette / FastAPI
    ("/users/{user_id}", "/users/12/orders", False),
    ("/files/{rest:path}", "/files/a/b/c.txt", True),
    ("/users/<int:user_id>", "/users/12", True),        # Flask
    ("/static/<path:filename>", "/static/css/site.css", True),
    ("items/<slug:slug>/", "items/blue-shirt/", True),  # Django (no leading slash)
    ("/users/{user_id}", "/users/12?tab=2", True),      # the query string is not part of the path
    ("/orders", "/orders", False),                     # no parameter: the literal match covers it
    ("/a.b/{x}", "/aXb/1", False),                     # the template's text is literal
])  # fmt: skip
def test_route_matches(template: str, path: str, expected: bool) -> None:
    assert route_matches(template, path) is expected
