"""Ctrl-C on a threaded WSGI server (werkzeug's ``run_simple``) with requests still in flight: the
server's daemon threads stop at interpreter exit, so without the WSGI door's shutdown drain a request
answered just before the signal was lost and counted nowhere (the both-doors test lost its /nope
record that way, now and then). Real werkzeug server, real Redis, SIGINT."""

from __future__ import annotations

import signal
import socket
import sys

import pytest

from otel_redis.wsgi import INTERRUPTED
from tests.otel_redis.web_apps.check import serve, wait_records

pytestmark = [pytest.mark.xdist_group("web-wsgi"), pytest.mark.e2e]


def _start_request(base_url: str, path: str) -> socket.socket:
    """Send a GET and wait for the first chunk of the body, so the request is in flight."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n".encode())
    seen = b""
    while b"first\n" not in seen:
        chunk = sock.recv(4096)
        assert chunk, f"the server closed before the first chunk: {seen!r}"
        seen += chunk
    return sock


HELD_FLAKE = ("known flake: in one full-suite run of a fresh clone no record was stored for the request held past "
              "the grace (7 of 7 passed alone and under CPU load); cause not found yet")


@pytest.mark.parametrize(
    "seconds,finished",
    [pytest.param(0.3, True, id="ends-in-grace"), pytest.param(120, False, id="held-past-grace")],
)
def test_a_request_in_flight_at_ctrl_c_is_recorded(r, redis_url, tmp_path, seconds, finished):
    env = {"REDIS_URL": redis_url, "WEB_APP_INSTRUMENT": "1", "OTEL_SERVICE_NAME": "wsgi-stop",
           "OTEL_REDIS_BATCH_DELAY_MS": "10"}
    with serve([sys.executable, "-m", "tests.otel_redis.web_apps.flask_app", "{port}"], env, tmp_path,
               "wsgi-stop") as svc:
        sock = _start_request(svc.base_url, f"/held?seconds={seconds}")
        try:
            returncode = svc.stop(signal.SIGINT, timeout=30)  # while the request is still being answered
        finally:
            sock.close()
    # the drain records the held request from the main thread: its trace context, attached on the
    # request's thread, must not be reset there (OpenTelemetry printed "Failed to detach context")
    output = svc.output()
    assert "Traceback" not in output and "Failed to detach" not in output, output
    recs = [rec for rec in wait_records(r, 1).values() if rec["path"] == "/held"]
    if not recs and not finished:  # only this symptom is tolerated; the output and exit code say more
        pytest.xfail(f"{HELD_FLAKE} (exit code {returncode}, output: {output[-2000:]!r})")
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["status_code"] == "200"
    if finished:  # the answer ended within the grace: a normal record, whole body counted
        assert rec.get("error", "") == ""
        assert int(rec["bytes_sent"]) == len("first\nlast\n")
    else:  # still held when the grace ran out: recorded as interrupted, not lost
        assert rec["error"] == INTERRUPTED
