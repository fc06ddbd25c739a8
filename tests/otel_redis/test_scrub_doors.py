"""End to end, per door, on a real Redis: a planted secret appears in no key and no value."""

from __future__ import annotations

import json
import logging
import threading
from typing import Iterator

import httpx
import pytest
from flask import Flask
from werkzeug.serving import make_server

import otel_redis
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.scrub import SCRUBBED_ATTRIBUTE
from tests.redis_dump import dump_all

PLANTED = "PLANTED-s3cr3t-VALUE"


def _attrs(r) -> list[dict]:
    return [json.loads(r.hget(k, "attrs") or "{}") for k in r.zrange("idx:log:all", 0, -1)]


def _assert_clean(r) -> None:
    everything = dump_all(r)
    assert everything, "nothing was stored"
    assert PLANTED not in everything


def test_log_calls_and_events(pipeline, r):
    otel_redis.log_info("login", password=PLANTED, token=PLANTED, user="ann")
    otel_redis.log_warning(f"retry with Bearer {PLANTED}", nested={"a": [{"api_key": PLANTED}]})
    otel_redis.log_event("signup", {"client_secret": PLANTED, "plan": "pro"})
    assert otel_redis.force_flush()
    _assert_clean(r)
    scrubbed = sorted(p for a in _attrs(r) for p in a.get(SCRUBBED_ATTRIBUTE, []))
    assert "attributes.password" in scrubbed and "attributes.token" in scrubbed
    assert "attributes.nested.a[0].api_key" in scrubbed and "body" in scrubbed
    assert any(a.get("user") == "ann" for a in _attrs(r))


def test_stdlib_extra(settings, counters, r):
    exporter = RedisLogRecordExporter(settings=settings, counters=counters)
    otel_redis.configure(settings=settings, exporter=exporter, capture_stdlib=True, set_global_provider=False)
    try:
        logging.getLogger("myapp").warning("db connect", extra={"db_password": PLANTED, "cfg": {"secret": PLANTED}})
        assert otel_redis.force_flush()
    finally:
        otel_redis.shutdown()
    _assert_clean(r)
    (attrs,) = _attrs(r)
    assert attrs["db_password"] == "***" and attrs["cfg"] == {"secret": "***"}


def test_oauth_details_lists_and_deep_nesting(pipeline, r):
    deep: dict = {"refresh_token": PLANTED}
    for _ in range(40):
        deep = {"inner": deep}
    otel_redis.log_oauth_activity("token_issued", "client-1", "user-1",
                                  {"grants": [{"access_token": PLANTED}, {"scope": "read"}], "deep": deep})
    otel_redis.track_oauth_flow("sess-1", "callback", {"code": PLANTED, "items": [{"state": PLANTED}]})
    assert otel_redis.force_flush()
    _assert_clean(r)
    assert r.llen("oauth:flow:sess-1") == 1  # the flow's session id is kept: it is the key


@pytest.fixture
def werkzeug_app(pipeline) -> Iterator[str]:
    """A real Flask app served by werkzeug in this process, its access log captured from stdlib."""
    from otel_redis import stdlib

    handler = stdlib.install_handler()
    app = Flask("scrub-app")
    app.add_url_rule("/cb", "cb", lambda: "ok")
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        stdlib.remove_handler(handler)


def test_werkzeug_access_line(werkzeug_app, r):
    url = f"{werkzeug_app}/cb?code={PLANTED}&state={PLANTED}&access_token={PLANTED}"
    assert httpx.get(url).status_code == 200
    assert httpx.get(f"http://u:{PLANTED}@{werkzeug_app.split('//')[1]}/cb").status_code == 200
    assert otel_redis.force_flush()
    bodies = [r.hget(k, "body") for k in r.zrange("idx:log:all", 0, -1)]
    assert any("GET /cb?code=***&state=***&access_token=***" in b for b in bodies), bodies
    _assert_clean(r)


def test_the_indexed_session_id_is_kept_and_other_spellings_index_nothing(pipeline, r):
    """``session_id`` is the specification's indexed field (the OAuth flow's correlation key), so it
    stays in clear; a masked spelling (``sessionId``) leaves no ``***`` key behind."""
    otel_redis.log_info("one", session_id="flow-7", sessionId=PLANTED)
    otel_redis.log_info("two", sessionId="other-secret")
    assert otel_redis.force_flush()
    _assert_clean(r)
    assert [k for k in r.scan_iter("idx:log:session:*") if "flow-7" in k]
    assert not [k for k in r.scan_iter("*") if "***" in k]
