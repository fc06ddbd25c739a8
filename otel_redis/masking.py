"""Masking of secrets before anything is stored: headers, query strings, URLs and OAuth details.

On by default. The built-in names cover credentials (``Authorization``, cookies, API-key headers)
and the OAuth parameters that grant access (``access_token``, ``code``, ``state``, ``client_secret``,
``password``, ...). ``OTEL_REDIS_MASK_HEADERS`` and ``OTEL_REDIS_MASK_QUERY_PARAMS`` add names.
A masked value keeps its name and becomes :data:`MASK`, so the record still shows the value was there.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping
from urllib.parse import quote, unquote_plus

from .config import load_settings

MASK = "***"

#: the nesting depth past which a value is masked whole (shared with scrub.py)
MAX_DEPTH = 24

SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-auth-token",
        "x-access-token",
        "x-csrf-token",
        "x-xsrf-token",
        "x-amz-security-token",
        "x-goog-api-key",
    }
)

SENSITIVE_PARAMS: frozenset[str] = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "code",
        "code_verifier",
        "state",
        "nonce",
        "client_secret",
        "client_assertion",
        "assertion",
        "password",
        "passwd",
        "secret",
        "api_key",
        "apikey",
        "key",
        "signature",
        "sig",
        "session",
        "sessionid",
        "jwt",
    }
)


class Masker:
    """Decides which names are secret and masks them in the places requests carry them."""

    def __init__(self, headers: Iterable[str] = (), params: Iterable[str] = ()) -> None:
        self.headers = SENSITIVE_HEADERS | {h.lower() for h in headers}
        self.params = SENSITIVE_PARAMS | {p.lower() for p in params}

    def is_secret_header(self, name: str) -> bool:
        name = name.lower()
        return name in self.headers or "api-key" in name or "apikey" in name or name.endswith("-token")

    def is_secret_param(self, name: str) -> bool:
        name = name.lower()
        return name in self.params or name.endswith(("_token", "_secret", "password"))

    def header(self, name: str, value: str) -> str:
        return MASK if self.is_secret_header(name) else value

    def query(self, query: str) -> str:
        """``a=1&code=xyz`` -> ``a=1&code=***`` (order, other parameters and encoding kept)."""
        if not query:
            return query
        parts = query.split("&")
        changed = False
        for i, part in enumerate(parts):
            name, eq, _value = part.partition("=")
            if eq and self.is_secret_param(unquote_plus(name)):
                parts[i] = f"{name}={quote(MASK)}"
                changed = True
        return "&".join(parts) if changed else query

    def url(self, url: str) -> str:
        """Mask the query string and any ``user:password@`` of a URL (a Referer, say)."""
        if not url:
            return url
        base, hashmark, fragment = url.partition("#")
        path, qmark, query = base.partition("?")
        scheme, sep, rest = path.partition("://")
        if sep and "@" in rest.split("/", 1)[0]:
            userinfo, _, after = rest.partition("@")
            path = f"{scheme}://{userinfo.split(':', 1)[0]}:{quote(MASK)}@{after}" if ":" in userinfo else path
        fragment = self.query(fragment) if "=" in fragment else fragment
        return f"{path}{qmark}{self.query(query)}{hashmark}{fragment}"

    def mapping(self, data: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
        """A copy of ``data`` (OAuth details, form fields) with secret keys masked, in nested dicts
        and lists; past :data:`MAX_DEPTH` the rest is masked whole, never kept in clear."""
        out: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key)
            if self.is_secret_param(name) or self.is_secret_header(name.replace("_", "-")):
                out[name] = MASK
            else:
                out[name] = self._nested(value, depth + 1)
        return out

    def _nested(self, value: Any, depth: int) -> Any:
        if isinstance(value, Mapping):
            return MASK if depth >= MAX_DEPTH else self.mapping(value, depth)
        if isinstance(value, (list, tuple)):
            return MASK if depth >= MAX_DEPTH else [self._nested(v, depth + 1) for v in value]
        return value


_default: Masker | None = None


def default_masker() -> Masker:
    """The masker of the environment's settings (built once)."""
    global _default
    if _default is None:
        try:
            settings = load_settings()
            _default = Masker(settings.mask_headers, settings.mask_query_params)
        except Exception:  # noqa: BLE001 - a bad variable is reported by configure(); mask the defaults
            _default = Masker()
    return _default
