"""Read every key of a Redis database whatever its type: what a secret-leak test searches."""

from __future__ import annotations

from typing import Any

import redis


def dump_all(client: redis.Redis) -> str:
    """Every key name and every value (hash, zset, set, list, stream, string) as one text.

    Read through a client of the same server that does not decode replies: some values are binary
    (a HyperLogLog is a string that is not UTF-8), and a decoding client would fail on them; each
    byte string is then decoded with replacement, so an ASCII or UTF-8 secret is found as written."""
    pool = client.connection_pool
    raw = redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, **{**pool.connection_kwargs, "decode_responses": False}))
    parts: list[str] = []
    try:
        for key in raw.scan_iter(count=1000):
            kind = _text(raw.type(key))
            value: Any
            if kind == "hash":
                value = raw.hgetall(key)
            elif kind == "zset":
                value = raw.zrange(key, 0, -1, withscores=True)
            elif kind == "set":
                value = raw.smembers(key)
            elif kind == "list":
                value = raw.lrange(key, 0, -1)
            elif kind == "stream":
                value = raw.xrange(key)
            elif kind == "string":  # HyperLogLogs too
                value = raw.get(key)
            else:  # anything else is read in its serialised form
                value = raw.dump(key)
            parts.append(f"{_text(key)} {kind} {_text(value)}")
    finally:
        raw.close()
        raw.connection_pool.disconnect()
    return "\n".join(parts)


def _text(value: Any) -> str:
    """``value`` (bytes, or containers of them) as text, bytes decoded as UTF-8 with replacement."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)
