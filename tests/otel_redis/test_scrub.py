"""The scrubber: secret names masked at any depth, credential-looking text masked, paths reported."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from otel_redis.masking import MASK
from otel_redis.scrub import MAX_DEPTH, SCRUBBED_ATTRIBUTE, Scrubber, scrub_entry_parts

PLANTED = "PLANTED-s3cr3t-VALUE"


def _scrub(attrs: dict[str, Any], body: Any = "", scrubber: Scrubber | None = None) -> tuple[Any, Any, list[str]]:
    s = scrubber or Scrubber()
    found: list[str] = []
    out = s.attributes(attrs, found)
    new_body = s.value(body, "body", found)
    return out, new_body, found


@pytest.mark.parametrize(
    "name",
    ["password", "db_passwd", "client_secret", "access_token", "X-Auth-Token", "api_key", "apiKey", "Authorization",
     "auth", "x-auth", "cookie", "Set-Cookie", "sessionId", "session-id", "aws_credentials", "private_key",
     "jwt", "user.ssn", "credit_card", "creditCard"],
)
def test_secret_names_are_masked(name):
    out, _, found = _scrub({name: PLANTED, "keep": "visible"})
    assert out[name] == MASK and out["keep"] == "visible"
    assert found == [f"attributes.{name}"]


@pytest.mark.parametrize(
    "name", ["oauth.event_type", "oauth.client_id", "author", "total_tokens", "tokenizer", "session.id", "session_id",
             "enduser.id"]
)
def test_ordinary_names_are_kept(name):
    out, _, found = _scrub({name: "value"})
    assert out[name] == "value" and found == []


def test_extra_patterns_and_allow_list():
    s = Scrubber(patterns=[r"pin(?![a-z])"], allow=["api_key"])
    out, _, found = _scrub({"card_pin": PLANTED, "api_key": "public-id", "password": PLANTED}, scrubber=s)
    assert out == {"card_pin": MASK, "api_key": "public-id", "password": MASK}
    assert sorted(found) == ["attributes.card_pin", "attributes.password"]


def test_lists_of_dicts_and_deep_nesting():
    deep: Any = {"password": PLANTED}
    for _ in range(MAX_DEPTH + 10):
        deep = {"level": deep}
    attrs = {"details": [{"scope": "read"}, {"client_secret": PLANTED}], "deep": deep}
    out, _, found = _scrub(attrs)
    assert out["details"] == [{"scope": "read"}, {"client_secret": MASK}]
    assert PLANTED not in repr(out)
    assert "attributes.details[1].client_secret" in found
    assert any(p.startswith("attributes.deep.level") for p in found)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('127.0.0.1 - - "GET /cb?code=abc123&state=xyz HTTP/1.1" 200 -', '"GET /cb?code=***&state=*** HTTP/1.1"'),
        ("GET /api?access_token=abc.def&x=1", "access_token=***&x=1"),
        ('127.0.0.1:5000 - "GET /cb?state=abc&code=def HTTP/1.1" 200', '"GET /cb?state=***&code=*** HTTP/1.1"'),
        ('10.0.0.1 [03/Dec/2026:08:00:00 +0000] "GET /login?password=pw1&u=a HTTP/1.1" 302', "password=***&u=a"),
        ("login password=hunter2 ok", "password=***"),
        ("header Authorization: Bearer eyJhbGciOi.abc.def", "Bearer ***"),
        ("connect postgres://admin:hunter2@db:5432/app", "postgres://admin:***@db:5432/app"),
    ],
)
def test_credentials_in_text_are_masked(text, expected):
    out, body, found = _scrub({"msg": text}, text)
    assert expected in body and expected in out["msg"]
    assert found == ["attributes.msg", "body"]


def test_plain_text_and_unchanged_attributes_are_the_same_objects():
    attrs = {"user": "ann", "n": 3, "exit code": "code=1"}
    out, body, found = _scrub(attrs, "exit code=1 without a query")
    assert out is attrs and body == "exit code=1 without a query" and found == []


def test_entry_parts_report_the_paths_and_can_be_turned_off():
    from otel_redis import scrub

    scrub.set_default_scrubber(Scrubber())
    try:
        attrs, body = scrub_entry_parts({"token": PLANTED}, f"password={PLANTED}")
        assert attrs == {"token": MASK, SCRUBBED_ATTRIBUTE: ["attributes.token", "body"]}
        assert body == "password=***"
        scrub.set_default_scrubber(Scrubber(enabled=False))
        attrs, body = scrub_entry_parts({"token": PLANTED}, "x")
        assert attrs == {"token": PLANTED}
    finally:
        scrub.set_default_scrubber(None)


SECRET_NAMES = st.sampled_from(["password", "client_secret", "access_token", "api_key", "cookie", "jwt", "ssn",
                                "Authorization", "refresh_token", "private_key", "credit_card"])
PLAIN_NAMES = st.sampled_from(["a", "b", "scope", "items", "user", "oauth.event_type", "data"])


def _plant(tree: Any, path: list[Any], name: str) -> Any:
    """Put ``{name: PLANTED}`` at the end of ``path`` (dict keys and list positions) inside ``tree``."""
    if not path:
        return {name: PLANTED, "other": tree}
    head, *rest = path
    if isinstance(head, int):
        return [tree, _plant(tree, rest, name)][: head % 2 + 1] if head % 2 else [_plant(tree, rest, name)]
    return {head: _plant(tree, rest, name), "sibling": 1}


@hsettings(max_examples=300, deadline=None)
@given(
    path=st.lists(st.one_of(PLAIN_NAMES, st.integers(0, 3)), max_size=MAX_DEPTH + 8),
    name=SECRET_NAMES,
    filler=st.recursive(st.one_of(st.integers(), st.text(max_size=5)),
                        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(PLAIN_NAMES, kids, max_size=3),
                        max_leaves=6),
    in_text=st.booleans(),
)
def test_planted_secrets_never_survive_any_nesting(path, name, filler, in_text):
    if in_text:
        tree: Any = {"root": [filler, {"note": f"GET /x?access_token={PLANTED}&a=1"}]}
        for step in path:
            tree = {step: tree} if isinstance(step, str) else [tree]
    else:
        tree = {"root": _plant(filler, path, name)}
    out, _, found = _scrub(tree)
    assert PLANTED not in repr(out)
    assert found
