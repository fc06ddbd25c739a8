"""Bearer-token auth for every /logs route: read tokens, an admin token, constant-time comparison.

Tokens come from ``OTEL_REDIS_API_TOKENS`` (comma-separated read tokens) and
``OTEL_REDIS_ADMIN_TOKEN``. When neither is set the service does not run open: it generates a token
on first start, stores it in ``<data dir>/api-token`` (mode 0600) and prints it once; that token is
both read and admin. Tokens are never logged.
"""

from __future__ import annotations

import hmac
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from otel_redis.config import API_TOKEN_FILE, Settings

TOKEN_FILE = API_TOKEN_FILE

#: declares the bearer scheme in OpenAPI; the checks below read the header themselves
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="a read token (OTEL_REDIS_API_TOKENS) or the admin token (OTEL_REDIS_ADMIN_TOKEN)",
)


@dataclass(frozen=True)
class Tokens:
    read: tuple[str, ...]
    admin: tuple[str, ...]
    generated: bool = False

    def is_read(self, token: str) -> bool:
        return _matches(token, self.read) or _matches(token, self.admin)

    def is_admin(self, token: str) -> bool:
        return _matches(token, self.admin)


def _matches(token: str, candidates: tuple[str, ...]) -> bool:
    found = False
    for candidate in candidates:  # compare against all, in constant time each
        found |= hmac.compare_digest(token.encode(), candidate.encode())
    return found


def load_tokens(settings: Settings, env: dict[str, str] | None = None, announce: bool = True) -> Tokens:
    env = dict(os.environ) if env is None else env
    read = tuple(t.strip() for t in env.get("OTEL_REDIS_API_TOKENS", "").split(",") if t.strip())
    admin = tuple(t.strip() for t in env.get("OTEL_REDIS_ADMIN_TOKEN", "").split(",") if t.strip())
    if read or admin:
        return Tokens(read=read, admin=admin)
    path = Path(settings.data_dir) / TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            return Tokens(read=(token,), admin=(token,), generated=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    if announce:
        print(
            f"otel-redis: no OTEL_REDIS_API_TOKENS set; generated an API token (read and admin), stored in {path}:\n"
            f"  {token}",
            file=sys.stderr,
            flush=True,
        )
    return Tokens(read=(token,), admin=(token,), generated=True)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status_code=401,
            detail="missing bearer token (send 'Authorization: Bearer <token>')",
            headers={"WWW-Authenticate": 'Bearer realm="otel-redis"'},
        )
    return token.strip()


def require_read(
    request: Request, _credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme)
) -> None:
    """FastAPI dependency: any read or admin token."""
    token = _bearer(request)
    if not request.app.state.tokens.is_read(token):
        raise HTTPException(
            status_code=401,
            detail="invalid token",
            headers={"WWW-Authenticate": 'Bearer realm="otel-redis", error="invalid_token"'},
        )


def require_admin(
    request: Request, _credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme)
) -> None:
    """FastAPI dependency: the admin token."""
    token = _bearer(request)
    tokens = request.app.state.tokens
    if not tokens.is_admin(token):
        if tokens.is_read(token):
            raise HTTPException(status_code=403, detail="this operation needs the admin token")
        raise HTTPException(
            status_code=401,
            detail="invalid token",
            headers={"WWW-Authenticate": 'Bearer realm="otel-redis", error="invalid_token"'},
        )
