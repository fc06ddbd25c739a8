"""The query API while a Redis Cluster master is down and nothing took over its slots: every route
answers 503 with a message (never a 500 or a traceback), 200 again once the master is back, and\n503 again with every node gone."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.redis_cluster import LocalRedisCluster
from tests.servers import run_service
from tests.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("query-api-cluster-down")]
TOKEN = "cluster-down-token"
ROUTES = ["/logs", "/logs/search?level=ERROR", "/logs/stats", "/logs/ip/127.0.0.1", "/logs/errors", "/metrics"]


def test_every_route_answers_503_while_cluster_nodes_are_down(tmp_path: Path) -> None:
    cluster = LocalRedisCluster(tmp_path / "cluster", masters=3, replicas=1).start()
    try:
        env = {"REDIS_URL": cluster.url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data"),
               "OTEL_REDIS_API_TOKENS": TOKEN, "OTEL_LOGS_EXPORTER": "none"}
        argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
        with run_service(argv, env=env, tmp_path=tmp_path, name="serve-cluster-down") as svc:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=svc.base_url, headers=headers, timeout=60) as c:
                assert {route: c.get(route).status_code for route in ROUTES} == {route: 200 for route in ROUTES}
                down = cluster.nodes[1]
                cluster.kill(down)
                answers = {route: c.get(route) for route in ROUTES}
                # a route whose keys all live on the other masters may still answer; none may fail otherwise
                assert {a.status_code for a in answers.values()} <= {200, 503}, {
                    route: a.text[:200] for route, a in answers.items()}
                assert answers["/logs"].status_code == 503  # /logs merges the shards of every master
                assert all(a.json()["detail"] for a in answers.values() if a.status_code == 503)
                cluster.wait_failover()  # its replica takes over
                def all_answer() -> bool:  # the client finds the new master on its next slot-map refresh
                    codes = {route: c.get(route).status_code for route in ROUTES}
                    assert set(codes.values()) <= {200, 503}, codes
                    return codes == dict.fromkeys(ROUTES, 200)

                wait_until(all_answer, interval=0.5, message="every route to answer 200 after the failover")
                for node in cluster.nodes:  # every node gone: the client cannot even refresh its slot map
                    cluster.kill(node)
                answers = {route: c.get(route) for route in ROUTES}
                assert {route: a.status_code for route, a in answers.items()} == {route: 503 for route in ROUTES}, {
                    route: a.text[:200] for route, a in answers.items()}
            assert "Traceback" not in svc.output()
    finally:
        cluster.stop()


def test_healthz_is_degraded_while_a_master_is_down(tmp_path: Path) -> None:
    """No replica takes over: /healthz PINGs every master, so a master down is 503 (``redis``
    false), as the reads that merge every master's shards are, and 200 again once it is back."""
    cluster = LocalRedisCluster(tmp_path / "cluster", masters=3).start()
    try:
        env = {"REDIS_URL": cluster.url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data"),
               "OTEL_REDIS_API_TOKENS": TOKEN, "OTEL_LOGS_EXPORTER": "none"}
        argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
        with run_service(argv, env=env, tmp_path=tmp_path, name="serve-health-down") as svc:
            with httpx.Client(base_url=svc.base_url, timeout=60) as c:
                assert c.get("/healthz").json()["redis"] is True
                down = cluster.nodes[1]  # not the node REDIS_URL names
                down.server.process.send_signal(signal.SIGSTOP)
                try:
                    health = c.get("/healthz")
                finally:
                    down.server.process.send_signal(signal.SIGCONT)
                assert health.status_code == 503 and health.json()["redis"] is False, health.text[:200]
                wait_until(lambda: c.get("/healthz").status_code == 200, interval=0.5,
                           message="/healthz to answer 200 once the master is back")
            assert "Traceback" not in svc.output()
    finally:
        cluster.stop()
