"""OAuth activity records and flow tracking, through the same pipeline and write path as every log.

``log_oauth_activity`` emits a record with ``oauth.event_type``, ``oauth.client_id`` and
``enduser.id``; the store indexes its key under ``idx:oauth:{event_type}``, ``idx:oauth:client:{id}``
and ``idx:oauth:user:{user}`` (references, not JSON copies) and keeps it for the OAuth retention.
``track_oauth_flow`` emits a record with ``oauth.flow.step`` and ``session.id``; the store appends its
key to the list ``oauth:flow:{session_id}``, which expires ``OTEL_REDIS_OAUTH_FLOW_TTL_S`` (1 h) after
the last step. Secrets in ``details`` and ``data`` (tokens, codes, state, client secrets, passwords)
are masked before anything is queued.
"""

from __future__ import annotations

from typing import Any, Mapping

from . import api
from .counters import COUNTERS
from .levels import INFO, NAME_TO_LEVEL, parse_level
from .masking import default_masker
from .record import safe_str
from .store import OAUTH_FLOW_STEP

COMPONENT = "oauth"


def _masked(data: Mapping[str, Any] | None) -> dict[str, Any]:
    if not data:
        return {}
    try:
        return default_masker().mapping(data)
    except Exception:  # noqa: BLE001 - not a mapping after all
        return {"value": safe_str(data)}


def log_oauth_activity(
    event_type: str,
    client_id: str | None = None,
    user_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    *,
    level: str = "INFO",
    **attributes: Any,
) -> None:
    """``log_oauth_activity("token_issued", "client-1", "github-123", {"scope": "read"})``."""
    try:
        levelno = NAME_TO_LEVEL.get(parse_level(level), INFO)
    except ValueError:
        levelno = INFO
    if levelno < api.level_gate():
        return
    attrs: dict[str, Any] = {"oauth.event_type": safe_str(event_type)}
    if client_id:
        attrs["oauth.client_id"] = safe_str(client_id)
    if user_id:
        attrs["enduser.id"] = safe_str(user_id)
    masked = _masked(details)
    if masked:
        attrs["oauth.details"] = masked
    attrs.update(default_masker().mapping(attributes) if attributes else {})
    api.emit(levelno, f"oauth {event_type}", COMPONENT, attrs, safe_str(event_type))


def track_oauth_flow(session_id: str, step: str, data: Mapping[str, Any] | None = None) -> None:
    """Append a step to the OAuth flow of ``session_id`` (``oauth:flow:{session_id}``, 1 h TTL)."""
    if not session_id:
        COUNTERS.add("internal_errors")
        return
    attrs: dict[str, Any] = {"session.id": safe_str(session_id), OAUTH_FLOW_STEP: safe_str(step)}
    masked = _masked(data)
    if masked:
        attrs["oauth.flow.data"] = masked
    api.emit(INFO, f"oauth flow {step}", COMPONENT, attrs, "oauth_flow_step")
