"""Shared long values: decoding reads only the values it is given, each reader keeps its own."""

from otel_redis import schema
from otel_redis.record import LogEntry, RequestFields
from otel_redis.values import SharedValues

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
RESOURCE = {"service.name": "svc", "service.instance.id": "i" * 80}


def _encoded() -> tuple[LogEntry, dict, dict[str, bytes]]:
    entry = LogEntry(1_700_000_000_000_000_000, "INFO", 9, "x", resource=RESOURCE,
                     request=RequestFields("GET", "/", 200, client_ip="10.0.0.1", user_agent=UA))
    interned: dict[str, bytes] = {}
    return entry, schema.encode_entry(entry, interned), interned


def test_decode_reads_only_the_values_passed():
    entry, row, interned = _encoded()
    assert "resource" not in row and "user_agent" not in row and len(interned) == 2
    # encoding remembered nothing on the side: without values the long ones decode as empty
    bare = schema.decode_entry(row)
    assert bare.resource == {} and bare.request.user_agent == ""
    known = SharedValues()
    assert sorted(known.missing([row])) == sorted([row["resource_ref"], row["user_agent_ref"]])
    for vkey, raw in interned.items():
        known.remember(vkey.split(":", 1)[1], raw)
    assert known.missing([row]) == []
    decoded = schema.decode_entry(row, known)
    assert decoded.resource == RESOURCE and decoded.request == entry.request


def test_each_reader_has_its_own_bounded_values():
    a, b = SharedValues(limit=2), SharedValues()
    a.remember("d1", b"one")
    a.remember("d2", "two")
    a.remember("gone", None)  # an expired value is not kept
    assert dict(a) == {"d1": b"one", "d2": b"two"} and not b
    a.remember("d3", b"three")  # over the limit: starts over rather than grow
    assert dict(a) == {"d3": b"three"}
