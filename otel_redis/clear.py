"""Remove everything this system wrote (``schema.OWNED_PATTERNS``, one glob per key family of
``schema.KEY_FAMILIES``) and nothing else.

One SCAN pass over the keyspace in small steps (no KEYS); each key is matched against the owned
patterns here and removed with a single-key UNLINK (no multi-key command). On a Redis Cluster the
scan covers every master (redis-py's cluster ``scan_iter``) and the parts of the sharded hot keys
count under their key's pattern. The counts are UNLINK results, so a key SCAN returned twice is
counted once. The layout key (``schema.LAYOUT_KEY``) is kept: the writers' shard count outlives a
clear.
"""

from __future__ import annotations

from typing import Any, Sequence

from . import schema

SCAN_COUNT = 1000
UNLINK_BATCH = 500


def owner_pattern(key: str, patterns: Sequence[str] = schema.OWNED_PATTERNS) -> str | None:
    """The owned pattern ``key`` counts under: its key family's (``idx:oauth:client:x`` under
    ``idx:oauth:client:*``, not ``idx:oauth:*``), else the first pattern whose prefix it has."""
    family = schema.family_of(key)
    if family is not None and family.owned and family.pattern in patterns:
        return family.pattern
    for pattern in patterns:
        if pattern.endswith("*"):
            if key.startswith(pattern[:-1]):
                return pattern
        elif key == pattern or schema.shard_of(key)[0] == pattern:  # a Cluster part of a hot key
            return pattern
    return None


async def clear_owned(client: Any, patterns: Sequence[str] = schema.OWNED_PATTERNS) -> dict[str, int]:
    """UNLINK every owned key; returns removed counts per pattern."""
    removed = {p: 0 for p in patterns}
    batch: list[tuple[bytes | str, str]] = []

    async def flush() -> None:
        pipe = client.pipeline(transaction=False)
        for key, _pattern in batch:
            pipe.execute_command("UNLINK", key)  # one key: no cross-slot split in a cluster pipeline
        for (_key, pattern), n in zip(batch, await pipe.execute()):
            removed[pattern] += int(n)
        batch.clear()

    async for raw in client.scan_iter(count=SCAN_COUNT):
        # latin-1 maps bytes 1:1, so the ASCII prefixes match exactly whatever the rest holds
        key = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        pattern = owner_pattern(key, patterns)
        if pattern is None:
            continue
        batch.append((raw, pattern))
        if len(batch) >= UNLINK_BATCH:
            await flush()
    if batch:
        await flush()
    return removed
