"""OAuth reads: activity of an IP, a client or a user, and flows reconstructed per session.

OAuth records are the application logs written with an ``oauth.event_type`` attribute (see
``otel_redis.oauth.log_oauth_activity``); the store indexes them under ``idx:oauth:{event_type}``,
``idx:oauth:client:{id}``, ``idx:oauth:user:{user}`` and ``idx:oauth:ip:{ip}``. A flow is the set of
OAuth records sharing a session id, plus the step records that ``track_oauth_flow`` appended (by key)
to ``oauth:flow:{session_id}`` (kept one hour after the last step by default).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from . import schema
from .query import fetch
from .record import LogEntry, entry_to_dict

EVENT_ATTRIBUTE = "oauth.event_type"


def event_type(entry: LogEntry) -> str:
    value = entry.attributes.get(EVENT_ATTRIBUTE)
    return "" if value is None else str(value)


def summarize(records: Sequence[tuple[str, LogEntry]]) -> dict[str, Any]:
    """Counts by event type, client, user and session over ``records``."""
    events: Counter[str] = Counter()
    clients: Counter[str] = Counter()
    users: Counter[str] = Counter()
    sessions: Counter[str] = Counter()
    for _key, entry in records:
        events[event_type(entry) or "(none)"] += 1
        for counter, name in ((clients, "client"), (users, "user"), (sessions, "session")):
            value = entry.index_value(name)
            if value:
                counter[value] += 1
    return {
        "by_event_type": dict(events.most_common()),
        "clients": dict(clients.most_common()),
        "users": dict(users.most_common()),
        "sessions": len(sessions),
        "first_seen": entry_to_dict(*records[0])["timestamp"] if records else None,
        "last_seen": entry_to_dict(*records[-1])["timestamp"] if records else None,
    }


async def flows(client: Any, records: Sequence[tuple[str, LogEntry]], max_steps: int = 1000) -> list[dict[str, Any]]:
    """Group OAuth records by session id (oldest flow first) and attach each session's flow step
    records (oldest first). Records without a session id form one flow with ``session_id`` null."""
    grouped: dict[str | None, list[tuple[str, LogEntry]]] = {}
    for key, entry in records:
        grouped.setdefault(entry.index_value("session") or None, []).append((key, entry))
    sessions = [s for s in grouped if s is not None]
    step_keys: dict[str, list[str]] = {}
    if sessions:
        pipe = client.pipeline(transaction=False)
        for s in sessions:
            pipe.lrange(schema.oauth_flow(s), 0, max_steps - 1)
        for s, rows in zip(sessions, await pipe.execute(raise_on_error=False)):
            rows = rows if isinstance(rows, list) else []  # a foreign value of another type: no steps
            step_keys[s] = [r.decode() if isinstance(r, bytes) else r for r in rows]
    fetched = dict(await fetch(client, [k for keys in step_keys.values() for k in keys]))
    steps = {s: [entry_to_dict(k, fetched[k]) for k in keys if k in fetched] for s, keys in step_keys.items()}
    out = []
    for session, items in grouped.items():
        clients = sorted({e.index_value("client") for _k, e in items} - {""})
        users = sorted({e.index_value("user") for _k, e in items} - {""})
        out.append(
            {
                "session_id": session,
                "client_ids": clients,
                "users": users,
                "event_types": [event_type(e) for _k, e in items],
                "started": entry_to_dict(*items[0])["timestamp"],
                "ended": entry_to_dict(*items[-1])["timestamp"],
                "records": [entry_to_dict(k, e) for k, e in items],
                "steps": steps.get(session, []) if session else [],
            }
        )
    out.sort(key=lambda f: f["started"])
    return out
