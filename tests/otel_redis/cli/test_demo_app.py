"""The compose project's demo app (examples/demo_app.py) run by uvicorn on the test Redis, seen through
the recipes: its own background traffic and the requests a client sends it arrive in the store."""

from __future__ import annotations

import sys
from typing import Iterator

import httpx
import pytest
import yaml

from tests.servers import Service, free_port, run_service

from .conftest import READ_TOKEN, ROOT, Stack, module_stack, run_just
from tests.waiting import wait_until

pytestmark = pytest.mark.xdist_group("cli-demo")

CLIENT_IP = "198.51.100.77"  # outside the demo's own traffic (203.0.113.0/24)


stack = module_stack("cli-demo")


@pytest.fixture(scope="module")
def demo(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    port = free_port()
    env = {"REDIS_URL": stack.redis.url, "DEMO_PORT": str(port), "DEMO_TRAFFIC_INTERVAL": "0.05",
           "OTEL_REDIS_TRUSTED_PROXIES": "127.0.0.1"}
    argv = [sys.executable, "-m", "uvicorn", "examples.demo_app:app", "--port", "{port}", "--log-level", "warning"]
    with run_service(argv, env=env, port=port, tmp_path=tmp_path_factory.mktemp("demo"), health_path="/",
                     name="demo") as service:
        yield service


def _wait_for(stack: Stack, path: str, count: int) -> None:
    with httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {READ_TOKEN}"}) as client:
        wait_until(lambda: client.get(path).json()["count"] >= count, interval=0.1,
                   message=f"{path} to have {count} records")


def test_requests_to_the_demo_app_are_shown_by_the_recipes(stack, demo, data_dir):
    headers = {"X-Forwarded-For": CLIENT_IP, "Host": "shop.example.com"}
    with httpx.Client(base_url=demo.base_url, headers=headers) as client:
        for path in ("/users/1", "/users/404", "/boom", "/orders/3", "/oauth/token"):
            client.get(path)
    _wait_for(stack, f"/logs/ip/{CLIENT_IP}", 5)
    done = run_just("logs-ip", CLIENT_IP, env=stack.env(data_dir))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    expected = ["/users/1 200", "/users/404 404", "/boom 502", "/orders/3 200", "/oauth/token 200"]
    assert len(lines) == len(expected), done.stdout
    for line, text in zip(lines, expected):
        assert text in line and f"client={CLIENT_IP}" in line and "host=shop.example.com" in line, line


def test_the_demo_app_generates_traffic_of_its_own(stack, demo, data_dir):
    _wait_for(stack, "/logs/search?hostname=api.example.com&kind=request", 3)
    done = run_just("logs-proxy", "api.example.com", env=stack.env(data_dir))
    assert done.returncode == 0, done.stderr
    assert any("client=203.0.113." in line for line in done.stdout.splitlines())


def test_compose_file_runs_the_demo_app_and_the_service_on_one_redis():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "otel-redis", "demo"}
    assert services["demo"]["command"][:2] == ["uvicorn", "examples.demo_app:app"]
    for name in ("otel-redis", "demo"):
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["build"] == "."
