"""The query API over HTTP for the CLI: where it is, which token, and every failure as one line.

Base URL: ``--url``, else ``OTEL_REDIS_API_URL``, else ``http://127.0.0.1:8080``.
Token: ``--token``, else ``OTEL_REDIS_API_TOKEN`` (for admin commands ``OTEL_REDIS_ADMIN_TOKEN`` first),
else the token the service generated into ``<OTEL_REDIS_DATA_DIR>/api-token`` when it runs without
configured tokens on this machine.

Every failure becomes an :class:`ApiError` (a :class:`~otel_redis.cli.CliError`): one line, and an
exit code that says what kind of failure it was (see the ``EXIT_*`` constants).

Plain requests go through the standard library's ``http.client``: a CLI call should cost little
more than starting Python, and importing httpx alone took longer than the whole query. httpx is
imported only for the live-follow event stream (its streaming reads and read timeouts).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol
from urllib.parse import quote, urlencode, urlsplit

if TYPE_CHECKING:
    import httpx

from ..config import API_TOKEN_FILE
from . import CliError
from .sse import Event, iter_events, iter_lines

DEFAULT_URL = "http://127.0.0.1:8080"

EXIT_FAILURE = 1  # the server answered with an error, or a self-check failed
EXIT_USAGE = 2  # a bad argument: rejected locally or by the API (422)
EXIT_UNAVAILABLE = 3  # the API could not be reached (refused, DNS, timeout)
EXIT_AUTH = 4  # missing, wrong or insufficient token (401, 403)

_MAX_DETAIL = 300


class ApiError(CliError):
    """A failed call to the query API, already phrased for the user."""


class Unreachable(ApiError):
    """The API did not answer (connection refused, reset, DNS failure, timeout)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_UNAVAILABLE)


def resolve_url(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    url = (explicit or env.get("OTEL_REDIS_API_URL") or DEFAULT_URL).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"the API URL must start with http:// or https:// (got {url!r})", EXIT_USAGE)
    return url


def token_file(env: Mapping[str, str] | None = None) -> Path:
    """Where ``otel-redis serve`` stores the token it generated (see query_api/auth.py)."""
    env = os.environ if env is None else env
    return Path(env.get("OTEL_REDIS_DATA_DIR") or ".otel-redis") / API_TOKEN_FILE


def resolve_token(explicit: str | None = None, *, admin: bool = False, env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    names = ("OTEL_REDIS_ADMIN_TOKEN", "OTEL_REDIS_API_TOKEN") if admin else ("OTEL_REDIS_API_TOKEN",)
    for candidate in (explicit, *(env.get(n) for n in names)):
        if candidate and candidate.strip():
            return candidate.strip()
    path = token_file(env)
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def path_segment(value: str) -> str:
    """A value placed in a URL path (``/logs/ip/{value}``): every reserved character escaped."""
    return quote(value, safe="")


def clean_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Query parameters with unset ones (None or empty) left out, so the API's defaults apply."""
    out: dict[str, str] = {}
    for name, value in (params or {}).items():
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, float) and value.is_integer():
            value = int(value)  # hours=7, not hours=7.0
        out[name] = str(value)
    return out


def one_line(text: str, limit: int = _MAX_DETAIL) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class _Answer(Protocol):
    """What error handling reads from a response: an httpx one or a :class:`Response`."""

    status_code: int
    text: str
    reason_phrase: str

    def json(self) -> Any: ...


@dataclass
class Response:
    """A finished plain (non-streaming) answer, read whole by ``http.client``."""

    status_code: int
    reason_phrase: str
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def _detail(response: _Answer) -> str:
    """The API's own explanation of an error response (FastAPI ``detail``), else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        return one_line(response.text) or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI's default validation shape
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "path", "body"))
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        detail = "; ".join(parts)
    text = one_line(detail if detail not in (None, "") else response.reason_phrase)
    # "query.hours: must be ..." -> "hours: must be ...": the user typed an argument, not a location
    return re.sub(r"(^|; )(?:query|path|header|body)\.", r"\1", text)


class ApiClient:
    """A small synchronous client of the query API."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 30.0, verbose: bool = False) -> None:
        self.base_url = base_url
        self.token = token
        self.verbose = verbose
        self.timeout = timeout
        self.headers = {"User-Agent": "otel-redis-cli"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._stream_client: Any = None  # an httpx.Client, made by the first event stream

    def close(self) -> None:
        if self._stream_client is not None:
            self._stream_client.close()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plain requests

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send one request; the decoded JSON body on success, an :class:`ApiError` otherwise."""
        query = clean_params(params)
        self._announce(method, path, query)
        try:
            response = self._send(method, path, query)
        except (TimeoutError, socket.timeout):
            raise Unreachable(f"the query API at {self.base_url} did not answer in time") from None
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(self._unreachable_message(exc)) from None
        self.raise_for_status(response)
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"the query API answered {method} {path} with something that is not JSON") from None

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params)

    def url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        return f"{self.base_url}{path}" + (f"?{urlencode(query)}" if query else "")

    def _send(self, method: str, path: str, query: Mapping[str, str]) -> Response:
        """One request on a fresh connection, the body read whole."""
        parts = urlsplit(self.url(path, query))
        conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_class(parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, target, headers={"Accept": "*/*", **self.headers})
            answer = conn.getresponse()
            body = answer.read()
            return Response(answer.status, answer.reason, body, {k.lower(): v for k, v in answer.getheaders()})
        finally:
            conn.close()

    def _streams(self) -> Any:
        """The httpx client of the event streams, imported and built on first use."""
        if self._stream_client is None:
            import httpx

            self._stream_client = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=self.timeout)
        return self._stream_client

    # ------------------------------------------------------------------ streaming (SSE)

    @contextlib.contextmanager
    def event_stream(
        self, path: str, params: Mapping[str, Any] | None, last_event_id: str | None, read_timeout: float
    ) -> Iterator[Iterator[Event]]:
        """Open a Server-Sent Events stream; yields an iterator of :class:`~otel_redis.cli.sse.Event`.

        Transport failures raise :class:`Unreachable` (also while iterating), so a caller can
        tell "reconnect" from "give up" (any other :class:`ApiError`).
        """
        import httpx

        query = clean_params(params)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self._announce("GET", path, query, last_event_id)
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            with self._streams().stream("GET", path, params=query, headers=headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    self.raise_for_status(response)
                kind = response.headers.get("content-type", "").partition(";")[0].strip()
                if kind != "text/event-stream":
                    raise ApiError(f"the query API answered {path} with {kind or 'no content type'}, not an event stream")
                yield iter_events(iter_lines(_guarded(response.iter_bytes(), self)))
        except httpx.TimeoutException:
            raise Unreachable(f"the event stream of {self.base_url} went silent") from None
        except httpx.TransportError as exc:
            raise Unreachable(self._unreachable_message(exc)) from None

    # ------------------------------------------------------------------ errors

    def raise_for_status(self, response: _Answer) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = _detail(response)
        if status == 401:
            hint = (
                "no token was sent: pass --token or set OTEL_REDIS_API_TOKEN"
                if not self.token
                else "pass the right --token or set OTEL_REDIS_API_TOKEN"
            )
            raise ApiError(f"the query API rejected the request (401 {detail}); {hint}", EXIT_AUTH)
        if status == 403:
            raise ApiError(f"forbidden (403): {detail} (--token or OTEL_REDIS_ADMIN_TOKEN)", EXIT_AUTH)
        if status in (400, 422):
            raise ApiError(f"bad argument: {detail}", EXIT_USAGE)
        if status == 404:
            raise ApiError(f"not found (404): {detail} (is {self.base_url} an otel-redis query API?)")
        if status in (502, 503, 504):
            raise Unreachable(f"the query API is unavailable ({status} {detail})")
        raise ApiError(f"the query API failed ({status} {detail})")

    def _unreachable_message(self, exc: Exception) -> str:
        reason = one_line(str(exc) or type(exc).__name__, 120)
        return (
            f"cannot reach the query API at {self.base_url} ({reason}); "
            "start it with `python3 dev.py serve` or set OTEL_REDIS_API_URL"
        )

    def _announce(self, method: str, path: str, query: Mapping[str, str], last_event_id: str | None = None) -> None:
        if not self.verbose:
            return
        url = self.url(path, query)
        extra = f" (Last-Event-ID: {last_event_id})" if last_event_id else ""
        print(f"otel-redis: {method} {url}{extra}", file=sys.stderr, flush=True)


def _guarded(chunks: Iterator[bytes], client: ApiClient) -> Iterator[bytes]:
    """Re-raise transport failures that happen mid-stream as :class:`Unreachable`."""
    import httpx

    try:
        yield from chunks
    except httpx.TimeoutException:
        raise Unreachable(f"the event stream of {client.base_url} went silent") from None
    except httpx.TransportError as exc:
        raise Unreachable(f"the event stream of {client.base_url} was cut ({one_line(str(exc) or type(exc).__name__, 120)})") from None


__all__ = [
    "ApiClient",
    "ApiError",
    "DEFAULT_URL",
    "EXIT_AUTH",
    "EXIT_FAILURE",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "Unreachable",
    "clean_params",
    "path_segment",
    "resolve_token",
    "resolve_url",
]
