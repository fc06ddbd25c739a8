"""Path pattern analysis: requests per ``{METHOD} {pattern}`` over a window, most frequent first.

The write path counts each request in ``stats:paths:{YYYYMMDD:HH}`` under its route template, or its
normalised path (numbers, UUIDs, hex ids, e-mails, tokens become ``{id}``, ``{uuid}``...; see
paths.py), so the ranking reads one hash per hour the window touches. Fields are normalised again
on read, which folds counts written before a normalisation rule existed into today's pattern.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import redis

from . import schema
from .connection import read_layout
from .metrics import Window
from .paths import normalize_path
from .window_stats import text


def rank_paths(client: redis.Redis, window: Window, limit: int = 20, method: str | None = None) -> dict[str, Any]:
    """``{"total": n, "patterns": [{"method", "pattern", "count", "share"}...]}`` (hour resolution);
    on a Redis Cluster every part of each hour's hash is read and the counts added."""
    shards = read_layout(client)
    pipe = client.pipeline(transaction=False)
    for bucket in window.hours():
        for part in schema.sharded(schema.stats_paths(bucket), shards):
            pipe.hgetall(part)
    counts: Counter[tuple[str, str]] = Counter()
    for mapping in pipe.execute():
        for field, value in mapping.items():
            verb, _, path = text(field).partition(" ")
            if method and verb != method.upper():
                continue
            counts[(verb, normalize_path(path) if path.startswith("/") else path)] += int(value)
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, limit)]
    return {
        "total": total,
        "patterns": [
            {"method": m, "pattern": p, "count": c, "share": round(c / total, 6) if total else 0.0}
            for (m, p), c in ranked
        ],
    }
