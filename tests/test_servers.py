"""The suite's service starter: a port taken between choosing and binding it is chosen again."""

from __future__ import annotations

import socket
import sys

import httpx
import pytest

from tests import servers

pytestmark = pytest.mark.e2e

#: a tiny HTTP server that says "Address already in use" when it cannot bind, as uvicorn and werkzeug do
APP = [sys.executable, "-c", "import http.server as h, sys; h.HTTPServer(('127.0.0.1', int(sys.argv[1])), "
       "h.SimpleHTTPRequestHandler).serve_forever()", "{port}"]


def test_a_port_taken_after_it_was_chosen_is_chosen_again(tmp_path, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        ports = iter([taken_port])
        real = servers.free_port
        monkeypatch.setattr(servers, "free_port", lambda: next(ports, None) or real())
        with servers.run_service(APP, env={}, tmp_path=tmp_path, health_path="/") as svc:
            assert svc.base_url != f"http://127.0.0.1:{taken_port}"
            assert httpx.get(svc.base_url + "/").status_code == 200
        assert (tmp_path / f"service-{taken_port}.log").read_text().lower().count("address already in use") == 1


def test_a_port_given_by_the_caller_is_not_changed(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(servers.PortTaken):
            with servers.run_service(APP, env={}, port=taken.getsockname()[1], tmp_path=tmp_path, health_path="/"):
                pass
