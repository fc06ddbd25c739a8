"""The web doors with arbitrary requests: the ASGI middleware and the WSGI wrapper, called through
their own protocols (an ASGI scope and messages, a PEP 3333 environ) by hypothesis.

Whatever the method, path, query string and headers, the application's answer reaches the client
unchanged (the instrumentation raises nothing and turns nothing into a 5xx), every request is one
stored record on the real pipeline and Redis, nothing is dropped or counted as an internal error,
and secrets planted in the Authorization header, the cookie, a captured API-key header, the query
string and the referrer appear nowhere in a full dump of Redis.
"""

from __future__ import annotations

import asyncio
import io
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otel_redis
from otel_redis.instrumentation import RequestLoggingMiddleware
from otel_redis.wsgi import WSGIRequestLogging
from tests.redis_dump import dump_all

PLANTED = "PLANTED-w3b-s3cr3t"
FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
#: what a hostile client sends: any text (surrogates and controls included), and bytes
TEXT = st.text(st.characters(exclude_categories=()), max_size=60)
LATIN1 = st.text(st.characters(max_codepoint=255), max_size=60)
METHODS = st.one_of(st.sampled_from(["GET", "POST", "PROPFIND", "get", ""]), st.text(max_size=12))
STATUS = st.integers(min_value=100, max_value=599)
HEADER_NAMES = st.binary(min_size=1, max_size=20).map(bytes.lower)
#: the headers whose values the middleware stores (besides the ones it always reads)
CAPTURED = ("x-api-key", "x-hostile")


def _planted_query(hostile: bytes) -> bytes:
    return b"access_token=" + PLANTED.encode() + b"&password=" + PLANTED.encode() + b"&" + hostile


def _secrets_absent(r) -> None:
    everything = dump_all(r)
    assert everything, "nothing was stored"
    assert PLANTED not in everything


def _request_count(r) -> int:
    return r.zcard("idx:req:all")


async def _asgi_call(app, scope: dict) -> list[dict]:
    sent: list[dict] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict:
        return requests.pop() if requests else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@FEW
@given(method=METHODS, path=TEXT, raw_path=st.binary(max_size=60), query=st.binary(max_size=60),
       headers=st.lists(st.tuples(HEADER_NAMES, st.binary(max_size=60)), max_size=6), agent=st.binary(max_size=300),
       status=STATUS)
def test_asgi_door_with_arbitrary_requests(pipeline, r, counters, settings, method, path, raw_path, query, headers,
                                           agent, status):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": [(b"set-cookie", PLANTED.encode())]})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = RequestLoggingMiddleware(app, settings=settings, exclude_paths=(), capture_headers=CAPTURED,
                                       capture_response_headers=("set-cookie",))
    before, dropped, errors = _request_count(r), counters.dropped, counters.internal_errors
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": raw_path, "query_string": _planted_query(query), "root_path": "",
        "client": ("198.51.100.7", 50000), "server": ("127.0.0.1", 8000),
        "headers": [
            *headers,
            (b"authorization", b"Bearer " + PLANTED.encode()), (b"cookie", b"sid=" + PLANTED.encode()),
            (b"x-api-key", PLANTED.encode()), (b"user-agent", agent),
            (b"referer", b"https://app.example/cb?code=" + PLANTED.encode()),
        ],
    }
    sent = asyncio.run(_asgi_call(wrapped, scope))
    assert sent[0]["status"] == status and sent[-1]["body"] == b"ok"
    assert otel_redis.force_flush()
    assert _request_count(r) - before == 1
    assert (counters.dropped, counters.internal_errors) == (dropped, errors)
    _secrets_absent(r)


@FEW
@given(method=METHODS, path=LATIN1, query=LATIN1, headers=st.dictionaries(
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ_-:*{}", min_size=1, max_size=12).map(lambda n: "HTTP_" + n), LATIN1,
    max_size=6), agent=LATIN1, host=LATIN1, status=STATUS)
def test_wsgi_door_with_arbitrary_requests(pipeline, r, counters, settings, method, path, query, headers, agent, host,
                                           status):
    def app(environ, start_response):
        start_response(f"{status} Whatever", [("Content-Type", "text/plain"), ("Set-Cookie", PLANTED)])
        return [b"ok"]

    wrapped = WSGIRequestLogging(app, settings=settings, exclude_paths=())
    before, dropped, errors = _request_count(r), counters.dropped, counters.internal_errors
    environ = {
        **headers,
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path,
        "QUERY_STRING": _planted_query(query.encode("latin-1")).decode("latin-1"),
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "198.51.100.8",
        "HTTP_HOST": host, "HTTP_USER_AGENT": agent, "HTTP_AUTHORIZATION": f"Bearer {PLANTED}",
        "HTTP_COOKIE": f"sid={PLANTED}", "HTTP_X_API_KEY": PLANTED, "HTTP_REFERER": f"https://app.example/cb?code={PLANTED}",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    got: list[str] = []
    result = wrapped(environ, lambda status_line, _headers, _exc=None: got.append(status_line))
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    assert got == [f"{status} Whatever"] and body == b"ok"
    assert otel_redis.force_flush()
    assert _request_count(r) - before == 1
    assert (counters.dropped, counters.internal_errors) == (dropped, errors)
    _secrets_absent(r)
