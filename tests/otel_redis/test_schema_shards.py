"""The cluster layout of schema.py as data: shard tags, sharded key names, hot keys, the layout hash."""

from __future__ import annotations

import pytest

from otel_redis import schema


@pytest.mark.parametrize("shards", [2, 3, 4, 6, 12, 16, 64, 256])
def test_each_tag_hashes_into_the_middle_of_its_own_slot_range(shards: int) -> None:
    width = schema.CLUSTER_SLOTS / shards
    slots = [schema.key_slot("{" + tag + "}") for tag in schema.shard_tags(shards)]
    for n, slot in enumerate(slots):
        assert n * width + width / 4 <= slot < (n + 1) * width - width / 4
    assert len(set(schema.shard_tags(shards))) == shards


@pytest.mark.parametrize("masters", [2, 3, 4, 6])
def test_an_even_split_of_slots_gives_every_master_an_even_share(masters: int) -> None:
    """The split ``redis-cli --cluster create`` makes: contiguous, equal ranges."""
    shards = 12
    owner = [schema.key_slot(schema.shard_key("stream:logs", n, shards)) * masters // schema.CLUSTER_SLOTS for n in range(shards)]
    assert sorted(owner.count(m) for m in range(masters)) == [shards // masters] * masters


def test_tags_are_deterministic_and_match_the_documented_names() -> None:
    assert schema.shard_tags(3) == schema.shard_tags(3)
    assert schema.shard_tags(3)[0] == "s0.0"
    assert schema.sharded("idx:req:all", 3) == [f"idx:req:all:{{{t}}}" for t in schema.shard_tags(3)]


def test_standalone_keeps_every_specification_name() -> None:
    for key in ("stream:logs", "idx:req:all", "idx:req:status:500", "stats:requests:20260101:10"):
        assert schema.sharded(key, 1) == [key]
        assert schema.shard_key(key, 0, 1) == key


def test_parts_of_one_shard_share_a_slot_and_parse_back() -> None:
    keys = [schema.shard_key(k, 5, 12) for k in ("stream:requests", "idx:req:errors", schema.stats_requests("20260101:10"))]
    assert len({schema.key_slot(k) for k in keys}) == 1
    assert schema.shard_of(keys[0]) == ("stream:requests", schema.shard_tags(12)[5])
    assert schema.shard_of("idx:req:all") == ("idx:req:all", None)


@pytest.mark.parametrize(
    "key",
    [
        "stream:logs", "stream:requests", "idx:req:all", "idx:log:all", "idx:req:errors", "idx:log:errors",
        "idx:req:slow", "idx:req:status:404", "idx:log:level:ERROR", "stats:requests:20260101:10",
        "stats:errors:20260101:10", "stats:logs:20260101:10", "stats:events:20260101:10",
        "stats:rt:api.example.com:20260101:1005", "stats:rt_all:20260101:10", "stats:paths:20260101:10",
    ],
)  # fmt: skip
def test_hot_keys(key: str) -> None:
    assert schema.is_hot(key)
    assert not schema.is_hot(schema.shard_key(key, 1, 12))


@pytest.mark.parametrize(
    "key",
    ["req:1-a:1.2.3.4", "idx:req:ip:1.2.3.4", "idx:req:user:bob", "stats:unique_ips:h:20260101:10", "stats:hosts:20260101:10", "idx:trace:20260101:10"],
)
def test_cold_keys_are_never_split(key: str) -> None:
    assert not schema.is_hot(key)
    assert schema.sharded(key, 12) == [key]


def test_layout_parsing() -> None:
    assert schema.parse_layout({b"shards": b"12"}) == 12
    assert schema.parse_layout({"shards": "3"}) == 3
    assert schema.parse_layout({}) is None
    assert schema.parse_layout({"shards": "zero"}) is None
    assert schema.parse_layout({"shards": "0"}) is None


@pytest.mark.parametrize("bad", [0, -1, schema.MAX_SHARDS + 1])
def test_shard_count_is_bounded(bad: int) -> None:
    with pytest.raises(ValueError):
        schema.shard_tags(bad)
