"""The SSE reader of logs-follow: line endings, multi-line data, ids, comments (the ``: ready`` position)."""

from __future__ import annotations

from otel_redis.cli.sse import Event, iter_events, iter_lines


def _events(*chunks: bytes) -> list[Event]:
    return list(iter_events(iter_lines(chunks)))


def test_events_ids_and_comments():
    got = _events(b"retry: 2000\n: ready 1-0,2-0\n\n", b"id: 3-0,2-0\ndata: {\"a\": 1}\n\n", b": keepalive\n\n")
    assert got == [
        Event(comment="ready 1-0,2-0"),
        Event(data='{"a": 1}', id="3-0,2-0"),
        Event(comment="keepalive", id="3-0,2-0"),
    ]


def test_the_stream_opening_gives_the_ready_comment_and_the_start_position_as_an_id():
    got = _events(b"retry: 2000\n: ready 1-0,2-0\nid: 1-0,2-0\n\n", b"id: 3-0,2-0\ndata: {}\n\n")
    assert got == [Event(comment="ready 1-0,2-0"), Event(id="1-0,2-0"), Event(data="{}", id="3-0,2-0")]


def test_lines_split_only_at_cr_lf_and_crlf_across_chunks():
    # U+2028 (LINE SEPARATOR) is data, not a line end; a \r\n split between chunks is one line end
    got = _events("data: a\u2028b\r".encode(), b"\ndata: c\rdata: d\n", b"\n")
    assert got == [Event(data="a\u2028b\nc\nd")]


def test_utf8_split_between_chunks():
    raw = "data: h\u00e9llo\n\n".encode()
    assert _events(raw[:8], raw[8:]) == [Event(data="h\u00e9llo")]


def test_id_only_block_moves_the_position_and_empty_data_is_not_a_record():
    got = _events(b"id: 5-0,6-0\n\n", b"event: ping\n\n")
    assert got == [Event(id="5-0,6-0")]


def test_unknown_fields_and_null_ids_are_ignored():
    got = _events(b"foo: bar\nid: bad\x00id\ndata: x\n\n")
    assert got == [Event(data="x")]
