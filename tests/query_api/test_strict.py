"""An unknown query parameter is a 422 that names it, on every route of the schema."""

from __future__ import annotations

import pytest

from .conftest import Stack


@pytest.mark.parametrize(("url", "params", "unknown"), [
    ("/logs/search", {"levl": "ERROR"}, ["levl"]),
    ("/logs", {"hours": 1, "limt": 5}, ["limt"]),
    ("/logs/ip/10.0.0.1", {"sort": "asc", "zzz": "1"}, ["sort", "zzz"]),
    ("/logs/stats", {"hour": 2}, ["hour"]),
    ("/logs/stream", {"since": "0"}, ["since"]),
])  # fmt: skip
def test_unknown_parameter_is_a_422_naming_it(stack: Stack, url: str, params: dict, unknown: list[str]) -> None:
    with stack.client() as c:
        response = c.get(url, params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert [e["loc"] for e in body["errors"]] == [["query", name] for name in unknown]
    for name in unknown:
        assert f"query.{name}: unknown query parameter" in body["detail"]


def test_declared_parameters_still_work(stack: Stack) -> None:
    with stack.client() as c:
        assert c.get("/logs/search", params={"level": "ERROR", "hours": 1, "limit": 5}).status_code == 200
        assert c.get("/logs/stats", params={"hours": 2}).status_code == 200
        assert c.get("/logs").status_code == 200


def test_the_openapi_schema_says_so(stack: Stack) -> None:
    with stack.client() as c:
        schema = c.get("/openapi.json").json()
    assert "does not declare is answered 422" in schema["info"]["description"]
    assert "query parameter this route does not take" in schema["paths"]["/logs/search"]["get"]["responses"]["422"]["description"]
