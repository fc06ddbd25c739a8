"""Read every key of a Redis database whatever its type: what a secret-leak test searches."""

from __future__ import annotations

from typing import Any

import redis


def dump_all(client: redis.Redis) -> str:
    """Every key name and every value (hash, zset, set, list, stream, string) as one text."""
    parts: list[str] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        value: Any
        if kind == "hash":
            value = client.hgetall(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "stream":
            value = client.xrange(key)
        elif kind == "string":
            value = client.get(key)
        else:  # HyperLogLogs are strings; anything else is read raw
            value = client.dump(key)
        parts.append(f"{key!r} {kind} {value!r}")
    return "\n".join(parts)
