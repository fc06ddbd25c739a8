"""The key-family table (``schema.KEY_FAMILIES``): builders, patterns and parsers agree with it."""

from __future__ import annotations

import fnmatch
import re

import pytest

from otel_redis import schema
from otel_redis.clear import owner_pattern
from otel_redis.config import Retention
from tests.servers import ROOT

#: a sample argument per template variable; the others get a value that key_part must encode
SAMPLES = {"ms": 1_705_312_800_123, "uid": "a1b2", "hour": "20240115:10", "bucket": "20240115:1003",
           "digest": "0123456789abcdef0123", "field": "user", "code": 404, "kind": "agents"}
HOSTILE = "a:b c*{d}"
#: builders whose arguments are not their template's variables one for one
SPECIAL = {
    "request_record_key": (SAMPLES["ms"], "a1b2", "2001:db8::1"),
    "stats_host_top": ("not_found", HOSTILE, "20240115:10"),
    "tmp_hll": ("tok", "u-0123"),
    "batch_marker": ("tok",),
    "batch_marker_tagged": ("tok", "s1.2"),
}


def sample_key(family: schema.KeyFamily) -> str:
    """A key as the family's builder (or constant) makes it."""
    if family.name == "batch_marker_tagged":
        return schema.batch_marker(*SPECIAL[family.name])
    built = getattr(schema, family.name)
    if isinstance(built, str):
        return built
    args = SPECIAL.get(family.name) or tuple(SAMPLES.get(v, HOSTILE) for v in family.variables)
    return built(*args)


KEYS = {f.name: sample_key(f) for f in schema.KEY_FAMILIES}


@pytest.mark.parametrize("family", schema.KEY_FAMILIES, ids=lambda f: f.name)
def test_each_builder_makes_keys_of_its_family_only(family: schema.KeyFamily):
    key = KEYS[family.name]
    assert [f.name for f in schema.families_matching(key)] == [family.name], key
    assert schema.family_of(key) is family
    assert fnmatch.fnmatchcase(key, family.pattern)
    if family.hot:  # and so do its parts on a Cluster
        for n in (0, 11):
            assert schema.family_of(schema.shard_key(key, n, 12)) is family


def test_variable_parts_are_encoded_so_no_value_reaches_another_family():
    assert schema.idx_oauth_event("client:x") == "idx:oauth:client%3Ax"
    assert schema.family_of(schema.idx_oauth_event("client:x")).name == "idx_oauth_event"
    assert schema.family_of(schema.idx_req_user(HOSTILE)).name == "idx_req_user"
    assert schema.family_of("idx:req:user:a:b") is None  # a raw ':' would be a foreign key


def test_owned_patterns_cover_every_family_but_the_layout():
    assert "lock:job:*" in schema.OWNED_PATTERNS and "wp:batch:*" in schema.OWNED_PATTERNS
    for family in schema.KEY_FAMILIES:
        assert (owner_pattern(KEYS[family.name]) == family.pattern) is family.owned, family.name
    assert owner_pattern(schema.LAYOUT_KEY) is None
    assert len(set(schema.OWNED_PATTERNS)) == len(schema.OWNED_PATTERNS)


def test_index_patterns_and_retention_agree_with_the_table():
    retention = Retention(requests=1, errors=2, oauth=3, stats=4)
    for family in schema.KEY_FAMILIES:
        key = KEYS[family.name]
        scanned = any(fnmatch.fnmatchcase(key, p) for p in schema.INDEX_PATTERNS)
        assert scanned is family.index or family.name == "idx_trace" and not scanned, family.name
        if family.index:
            assert schema.index_retention(key, retention) == getattr(retention, family.retention), family.name
    assert any(fnmatch.fnmatchcase(schema.shard_key(schema.IDX_REQ_ALL, 3, 12), p) for p in schema.INDEX_PATTERNS)


def test_hot_keys_are_the_hot_families():
    for family in schema.KEY_FAMILIES:
        assert schema.is_hot(KEYS[family.name]) is family.hot, family.name


def test_record_keys_and_their_parser():
    for name in ("log_record_key", "request_record_key"):
        key = KEYS[name]
        assert schema.is_well_formed_record_key(key) and schema.is_record_key(key)
        assert fnmatch.fnmatchcase(key, schema.RECORD_SCAN_PATTERN)
        assert schema.record_time_ms(key) == SAMPLES["ms"]
    for other in ("idx:req:all", "req:1-a", "log:1-a:b", "req:1-a:", "req:x-a:1.2.3.4"):
        assert not schema.is_well_formed_record_key(other), other


def test_every_family_has_a_known_type_retention_and_section():
    assert len({f.name for f in schema.KEY_FAMILIES}) == len(schema.KEY_FAMILIES)
    assert {f.retention for f in schema.KEY_FAMILIES} <= set(schema.RETENTION_CLASSES)
    assert {f.section for f in schema.KEY_FAMILIES} == {k for k, _ in schema.KEY_SECTIONS}
    assert {f.type for f in schema.KEY_FAMILIES} <= {"hash", "zset", "stream", "string", "set", "list", "HyperLogLog"}


def test_stats_field_names_and_stream_ids():
    assert schema.status_field(404) == "status_404" and schema.status_of_field("status_404") == "404"
    assert schema.level_field("ERROR") == "level_ERROR" and schema.level_of_field("level_ERROR") == "ERROR"
    assert schema.status_of_field("total") is None and schema.level_of_field("status_1") is None
    assert schema.path_field("GET", "/users/{id}") == "GET /users/{id}"
    assert schema.stream_record_key({b"k": b"log:1-a"}) == "log:1-a" == schema.stream_record_key({"k": "log:1-a"})
    assert schema.stream_record_key({}) is None and schema.stream_record_key({b"x": b"1"}) is None
    assert schema.parse_stream_id(b"1700-3") == (1700, 3) == schema.parse_stream_id(schema.stream_id(1700, 3))
    assert schema.parse_stream_id(None) == (0, 0) and schema.stream_id_ms("12-0") == 12 and schema.stream_id_ms("") == 0
    assert schema.STREAM_ID.fullmatch("1-0") and not schema.STREAM_ID.fullmatch("1")


KEY_MENTION = re.compile(r"`([a-z_]+:[^`\s]*)`")


def filled(template: str) -> str:
    """A key of a template as the docs write it, each ``{variable}`` given a plain value."""
    out = template.replace("{YYYYMMDD:HHMM}", "20240115:1003").replace("{YYYYMMDD:HH}", "20240115:10")
    return re.sub(r"\{(\w+)\}", lambda m: "{s1.2}" if m.group(1) == "tag" else "x", out)


def mentions_agree(text: str) -> list[str]:
    """Backticked key names of ``text`` that no family explains: a concrete key must be of one
    family, a ``*`` glob or a ``{template}`` must be a family's own, or a prefix of some."""
    shown = {f.shown for f in schema.KEY_FAMILIES} | {f.template for f in schema.KEY_FAMILIES}
    globs = {f.pattern for f in schema.KEY_FAMILIES}
    bad = []
    for name in KEY_MENTION.findall(text):
        if name.split(":", 1)[0] in ("http", "https", "redis", "rediss", "unix", "id", "data", "cluster_enabled") or "@" in name:
            continue
        if "{" in name:
            ok = name in shown or any(t.startswith(name) for t in shown) or schema.family_of(filled(name)) is not None
        elif name.endswith("*"):
            ok = name in globs or any(g.startswith(name[:-1]) for g in globs)
        else:
            ok = schema.family_of(name) is not None or any(t.startswith(name + ":") for t in shown) or (
                schema.family_of(f"{name}:x") is not None)  # a family's name, as `idx:log:ip` in a list
        if not ok:
            bad.append(name)
    return bad


#: pages that name keys (design-choices.md quotes the specification's own names, on purpose)
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "design-choices.md")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_key_mentions_of_the_readme_and_docs_agree_with_the_table(page):
    assert not mentions_agree(page.read_text(encoding="utf-8"))


def test_the_mention_check_can_fail():
    assert mentions_agree("`idx:req:all` `idx:req:nope:*` `stats:requests:{YYYYMMDD:HH}` `stats:nope`") == [
        "idx:req:nope:*", "stats:nope"]
