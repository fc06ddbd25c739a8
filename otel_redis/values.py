"""The shared long values a reader has already fetched (resource JSON, User-Agent).

Records store these once under ``val:{digest}`` and reference them as ``{field}_ref`` (see
:data:`otel_redis.schema.INTERNED_FIELDS`). Knowing a value saves a GET per record, so each reader
keeps the ones it has seen: a :class:`SharedValues` owned by the store or by the query reader and
passed to :func:`otel_redis.schema.decode_entry` explicitly, so decoding depends on nothing hidden.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from otel_redis import schema

#: distinct values kept before the cache starts over (they repeat: one per resource, per agent)
LIMIT = 4096


class SharedValues(Mapping[str, bytes]):
    """A bounded ``digest -> value`` map; it is the ``values`` argument of ``decode_entry``."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._known: dict[str, bytes] = {}

    def __getitem__(self, digest: str) -> bytes:
        return self._known[digest]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)

    def remember(self, digest: str, raw: bytes | str | None) -> None:
        """Keep one value as GET answered it (None, an expired value, is not kept)."""
        if raw is None:
            return
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known[digest] = raw if isinstance(raw, bytes) else raw.encode()

    def missing(self, rows: Iterable[Mapping[Any, Any]]) -> list[str]:
        """The digests ``rows`` (HGETALL answers) reference that this reader does not know yet."""
        return schema.missing_values(rows, self._known)


_readers: weakref.WeakKeyDictionary[Any, SharedValues] = weakref.WeakKeyDictionary()


def of_client(client: Any) -> SharedValues:
    """The values known to the reader on ``client``: they live and die with that client."""
    known = _readers.get(client)
    if known is None:
        known = _readers[client] = SharedValues()
    return known
