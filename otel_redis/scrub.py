"""Secret scrubbing of every record before it is stored, whichever door it came in by.

One scrubber serves ``log_*`` attributes, ``log_event`` data, stdlib ``extra``, OAuth details,
request captures and OTLP-received records: :func:`otel_redis.record.from_readable` and
``collector.convert`` call :func:`scrub_entry_parts` on what they build. It runs in the exporter
(off the caller's path), so an enabled ``log_info`` call pays nothing for it.

* Attribute names matching :data:`DEFAULT_PATTERNS` (one precompiled regex, decisions cached per
  name) have their value replaced by :data:`MASK`, in nested dicts and lists to any depth; past
  :data:`MAX_DEPTH` the rest of a value is masked, never stored in clear.
* Message text (and string values) have credential-looking pieces masked: ``access_token=…``,
  ``password=…``, ``?code=`` / ``&state=``, ``Bearer …`` and ``user:pass@`` in URLs.
* The record lists what was scrubbed in the attribute ``otel_redis.scrubbed`` (paths such as
  ``attributes.oauth.details.client_secret`` or ``body``).

``OTEL_REDIS_SCRUB=false`` turns it off; ``OTEL_REDIS_SCRUB_PATTERNS`` adds name patterns and
``OTEL_REDIS_SCRUB_ALLOW`` keeps exact attribute names (see docs/configuration.md).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from .config import load_settings
from .masking import MASK, MAX_DEPTH

#: the attribute that lists the scrubbed paths
SCRUBBED_ATTRIBUTE = "otel_redis.scrubbed"

__all__ = ["MASK", "MAX_DEPTH", "SCRUBBED_ATTRIBUTE", "Scrubber", "default_scrubber", "scrub_entry_parts"]

#: name patterns (regex, matched case-insensitively anywhere in the attribute name)
DEFAULT_PATTERNS: tuple[str, ...] = (
    r"password",
    r"passwd",
    r"secret",
    r"token(?!s|iz)",  # access_token, x-auth-token; not total_tokens or tokenizer
    r"api[._ -]?key",
    r"authori[sz]ation",
    r"(?<![a-z])auth(?![a-z])",  # auth, x-auth, auth_header; not oauth.* or author
    r"cookie",
    r"session[._ -]?id",
    r"credential",
    r"private[._ -]?key",
    r"jwt",
    r"(?<![a-z])ssn(?![a-z])",
    r"credit[._ -]?card",
)

#: exact names kept in clear by default: the session id the schema indexes (``session.id``, and the
#: specification's ``session_id`` field) is the OAuth flow's correlation key (``idx:session:*``,
#: ``oauth:flow:{session_id}``), not a session cookie; other spellings are masked
DEFAULT_ALLOW: tuple[str, ...] = ("session.id", "session_id", SCRUBBED_ATTRIBUTE)

_TEXT = re.compile(
    r"(?P<kv>\b(?:access_token|refresh_token|id_token|token|client_secret|secret|password|passwd|api_key|apikey)"
    r"=)[^&\s\"'<>]+"
    r"|(?P<q>[?&](?:code|state)=)[^&\s\"'<>]+"
    r"|(?P<bearer>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{4,}"
    r"|(?P<user>://[^/\s:@]+:)[^/\s@]+(?=@)",
    re.IGNORECASE,
)


_SCALARS = frozenset({int, float, bool, type(None), bytes})


def _text_sub(match: re.Match[str]) -> str:
    return (match.group("kv") or match.group("q") or match.group("bearer") or match.group("user")) + MASK


class Scrubber:
    """Masks secret-named values and credential-looking text; reports the paths it touched."""

    def __init__(self, patterns: Iterable[str] = (), allow: Iterable[str] = (), enabled: bool = True) -> None:
        self.enabled = enabled
        self.names = re.compile("|".join((*DEFAULT_PATTERNS, *patterns)), re.IGNORECASE)
        self.allow = frozenset(a.lower() for a in (*DEFAULT_ALLOW, *allow))
        self._cache: dict[str, bool] = {}

    def is_secret(self, name: str) -> bool:
        """True when values under ``name`` are masked (cached: attribute names repeat)."""
        hit = self._cache.get(name)
        if hit is None:
            lowered = name.lower()
            hit = lowered not in self.allow and self.names.search(lowered) is not None
            if len(self._cache) < 10_000:
                self._cache[name] = hit
        return hit

    def text(self, text: str) -> str:
        """``text`` with credential-looking pieces masked (the same object when nothing matched)."""
        if "=" not in text and "@" not in text and "earer" not in text and "asic" not in text:
            return text  # cheap pre-check: nothing :data:`_TEXT` could match
        return _TEXT.sub(_text_sub, text)

    def value(self, value: Any, path: str, found: list[str], depth: int = 0) -> Any:
        """A copy of ``value`` with secrets masked; ``value`` itself when nothing was."""
        kind = type(value)
        if kind is str:
            out = self.text(value)
            if out == value:
                return value
            found.append(path)
            return out
        if kind in _SCALARS:
            return value
        if kind is dict or isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                found.append(path)
                return MASK
            return self._mapping(value, path, found, depth)
        if isinstance(value, (list, tuple, set, frozenset)):
            if depth >= MAX_DEPTH:
                found.append(path)
                return MASK
            items = list(value)
            new_items = [self.value(item, f"{path}[{i}]", found, depth + 1) for i, item in enumerate(items)]
            if any(a is not b for a, b in zip(items, new_items)):
                return new_items
            return value
        if isinstance(value, str):  # a str subclass
            return self.value(str(value), path, found, depth)
        return value

    def _mapping(self, value: Mapping[Any, Any], path: str, found: list[str], depth: int) -> Any:
        changed = False
        result: dict[Any, Any] = {}
        is_secret, text = self.is_secret, self.text
        for key, item in value.items():
            name = key if type(key) is str else str(key)
            kind = type(item)
            if is_secret(name) and not (kind is str and item == MASK):
                found.append(f"{path}.{name}")
                new: Any = MASK
            elif kind is str:
                new = text(item)
                if new != item:
                    found.append(f"{path}.{name}")
                else:
                    new = item
            elif kind in _SCALARS:
                new = item
            else:
                new = self.value(item, f"{path}.{name}", found, depth + 1)
            if new is not item:
                changed = True
            result[key] = new
        return result if changed else value

    def attributes(self, attributes: Mapping[str, Any], found: list[str]) -> Mapping[str, Any]:
        """``attributes`` scrubbed (the same mapping when nothing was), paths under ``attributes.``."""
        if not attributes:
            return attributes
        return self.value(attributes, "attributes", found)


_default: Scrubber | None = None


def default_scrubber() -> Scrubber:
    """The scrubber of the environment's settings (built once)."""
    global _default
    if _default is None:
        try:
            settings = load_settings()
            _default = Scrubber(settings.scrub_patterns, settings.scrub_allow, settings.scrub)
        except Exception:  # noqa: BLE001 - a bad variable or pattern is reported elsewhere; scrub the defaults
            _default = Scrubber()
    return _default


def set_default_scrubber(scrubber: Scrubber | None) -> None:
    """Replace (or, with None, reset to the environment's) the scrubber every door uses."""
    global _default
    _default = scrubber


def scrub_entry_parts(attributes: Any, body: Any) -> tuple[Any, Any]:
    """Scrub a record's raw attributes and body; the attributes gain :data:`SCRUBBED_ATTRIBUTE`
    listing the scrubbed paths when there were any. Never raises: on a failure the attributes
    are replaced by one masked marker rather than stored unchecked."""
    scrubber = default_scrubber()
    if not scrubber.enabled:
        return attributes, body
    found: list[str] = []
    try:
        attributes = scrubber.attributes(attributes, found)
        if body is not None:
            body = scrubber.value(body, "body", found) if not isinstance(body, str) else _body_text(scrubber, body, found)
    except Exception:  # noqa: BLE001 - an odd value (a Mapping whose items() raises): store nothing of it
        return {SCRUBBED_ATTRIBUTE: ["attributes"]}, MASK
    if found:
        attributes = dict(attributes)
        attributes[SCRUBBED_ATTRIBUTE] = found
    return attributes, body


def _body_text(scrubber: Scrubber, body: str, found: list[str]) -> str:
    out = scrubber.text(body)
    if out != body:
        found.append("body")
    return out
