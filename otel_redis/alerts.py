"""The alert engine: evaluate the rules, keep each condition's state, record and deliver transitions.

A condition (rule + scope, for example ``error_rate:api.example.com``) fires when its rule says so
and it is not firing already and it last fired more than ``cooldown_s`` ago; while it keeps firing
nothing new is sent; when its rule no longer holds (or its hostname has no traffic any more) a
``resolved`` event records the recovery. Each event is

- stored in the stream ``alerts:events`` (field ``e`` = JSON; trimmed to ``max_events`` and
  ``retention_days``, and expiring, so it stays bounded), its stream id being the event id;
- logged through the pipeline (events ``alert_fired`` at WARNING and ``alert_resolved`` at INFO,
  component ``alerts``);
- POSTed to every webhook URL (otel_redis/webhooks.py, with retries).

Condition states live in the hash ``alerts:state`` (one field per condition, JSON). Only one service
instance evaluates per interval (the ``lock:job:alerts`` key of the periodic job).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis

from . import api, schema
from .alert_rules import RULES, AlertConfig, Condition, evaluate
from .record import iso_from_ns
from .webhooks import WebhookNotifier, safe_url


def _s(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _iso(ms: int) -> str:
    return iso_from_ns(ms * 1_000_000)


class AlertEngine:
    def __init__(self, client: redis.Redis, config: AlertConfig, notifier: WebhookNotifier | None = None) -> None:
        self.client = client
        self.config = config
        self.notifier = notifier
        self.evaluations = 0

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, now_ms: int | None = None) -> list[dict[str, Any]]:
        """Evaluate every enabled rule once; returns the events recorded (fired and resolved)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        conditions = evaluate(self.client, self.config, now)
        states = {_s(k): orjson.loads(v) for k, v in self.client.hgetall(schema.ALERTS_STATE).items()}
        seen = {c.id for c in conditions}
        events: list[dict[str, Any]] = []
        updates: dict[str, bytes] = {}
        for cond in conditions:
            state = states.get(cond.id, {})
            if cond.firing and state.get("status") != "firing":
                last = int(state.get("last_fired_ms") or 0)
                if now - last < self.config.cooldown_s * 1000:
                    continue  # cooling down: the same condition fired a moment ago
                event = self._event("fired", cond, now)
                state = {"status": "firing", "since_ms": now, "last_fired_ms": now, "alert_id": None}
                events.append(event)
                updates[cond.id] = b""  # filled once the event has its id
                state["message"] = cond.message
                states[cond.id] = state
            elif cond.firing:
                state["message"] = cond.message
                state["value"] = cond.value
                updates[cond.id] = orjson.dumps(state)
            elif state.get("status") == "firing":
                events.append(self._resolved(cond.id, cond, state, now))
                updates[cond.id] = orjson.dumps({**state, "status": "ok", "resolved_ms": now})
        enabled = {name for name in RULES if getattr(self.config, name).enabled}
        for cid, state in states.items():
            if cid not in seen and state.get("status") == "firing":
                rule = cid.split(":", 1)[0]
                if rule in RULES:  # its hostname went quiet or the rule was turned off
                    why = "no traffic in the window" if rule in enabled else "rule turned off"
                    gone = Condition(rule, cid.split(":", 1)[1], False, None, 0.0, why)
                    events.append(self._resolved(cid, gone, state, now))
                    updates[cid] = orjson.dumps({**state, "status": "ok", "resolved_ms": now})
        if events:
            self._store(events, states, updates, now)
        elif updates:
            self._save_states(updates)
        for event in events:
            self._announce(event)
        self.evaluations += 1
        return events

    def _event(self, kind: str, cond: Condition, now: int) -> dict[str, Any]:
        return {
            "type": kind,
            "rule": cond.rule,
            "scope": cond.scope,
            "condition": cond.id,
            "at": _iso(now),
            "at_ms": now,
            "value": cond.value,
            "threshold": cond.threshold,
            "message": cond.message,
            "details": cond.details,
        }

    def _resolved(self, cid: str, cond: Condition, state: dict[str, Any], now: int) -> dict[str, Any]:
        event = self._event("resolved", cond, now)
        event["condition"] = cid
        event["alert_id"] = state.get("alert_id")
        event["fired_at"] = _iso(int(state.get("since_ms") or now))
        event["duration_s"] = round((now - int(state.get("since_ms") or now)) / 1000, 3)
        return event

    # ------------------------------------------------------------------ storage

    def _store(self, events: list[dict[str, Any]], states: dict, updates: dict[str, bytes], now: int) -> None:
        cfg = self.config
        keep_s = cfg.retention_days * 86400
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(schema.ALERTS_EVENTS, {"e": orjson.dumps(event)}, maxlen=cfg.max_events, approximate=True)
        pipe.xtrim(schema.ALERTS_EVENTS, minid=str(now - keep_s * 1000), approximate=True)
        pipe.expire(schema.ALERTS_EVENTS, keep_s)
        ids = [_s(i) for i in pipe.execute()[: len(events)]]
        for event, event_id in zip(events, ids):
            event["id"] = event_id
            if event["type"] == "fired":
                state = states[event["condition"]]
                state["alert_id"] = event_id
                updates[event["condition"]] = orjson.dumps(state)
        self._save_states(updates)

    def _save_states(self, updates: dict[str, bytes]) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(schema.ALERTS_STATE, mapping=updates)
        pipe.expire(schema.ALERTS_STATE, self.config.retention_days * 86400)
        pipe.execute()

    def _announce(self, event: dict[str, Any]) -> None:
        data = {
            "alert.id": event.get("id"),
            "alert.rule": event["rule"],
            "alert.scope": event["scope"],
            "alert.value": event["value"],
            "alert.threshold": event["threshold"],
        }
        if event["type"] == "fired":
            api.log_event("alert_fired", data, component="alerts", level="WARNING", message=event["message"])
        else:
            api.log_event("alert_resolved", data, component="alerts", message=f"resolved: {event['message']}")
        if self.notifier is not None:
            self.notifier.notify(event)


def delivery_failed(url: str, payload: dict[str, Any], reason: str) -> None:
    """Webhook give-up hook: logged through the pipeline (URL without its path or query)."""
    api.log_error(
        "alert webhook delivery failed",
        component="alerts",
        url=safe_url(url),
        reason=reason,
        **{"alert.id": payload.get("id"), "alert.rule": payload.get("rule")},
    )


# ---------------------------------------------------------------------------- queries


def list_events(
    client: redis.Redis, limit: int = 100, since_ms: int | None = None, kind: str | None = None,
    rule: str | None = None,
) -> list[dict[str, Any]]:
    """Stored events, newest first (``kind``: fired or resolved)."""
    out: list[dict[str, Any]] = []
    last = "+"
    low = f"{since_ms}-0" if since_ms is not None else "-"
    while len(out) < limit:
        rows = client.xrevrange(schema.ALERTS_EVENTS, max=last, min=low, count=max(limit, 100))
        if not rows:
            break
        for sid, fields in rows:
            sid = _s(sid)
            raw = fields.get(b"e", fields.get("e"))
            event = orjson.loads(raw)
            event["id"] = sid
            if (kind is None or event["type"] == kind) and (rule is None or event["rule"] == rule):
                out.append(event)
                if len(out) >= limit:
                    break
        last = f"({_s(rows[-1][0])}"
    return out


def active(client: redis.Redis) -> list[dict[str, Any]]:
    """Conditions firing now."""
    out = []
    for cid, raw in client.hgetall(schema.ALERTS_STATE).items():
        state = orjson.loads(raw)
        if state.get("status") == "firing":
            rule, _, scope = _s(cid).partition(":")
            out.append({
                "condition": _s(cid), "rule": rule, "scope": scope, "alert_id": state.get("alert_id"),
                "since": _iso(int(state.get("since_ms") or 0)), "message": state.get("message", ""),
            })
    return sorted(out, key=lambda a: a["condition"])
