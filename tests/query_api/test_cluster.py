"""The query API on a Redis Cluster (3 masters): every hot index read from all its parts, merged.

The service is the real ``otel-redis serve`` with REDIS_URL naming one node of the cluster. The
records are written by the real write path (``RedisStore`` on a ``RedisCluster`` client:
tests/cluster_data.py ``write_path``), 12 shards spread over the 3 masters; the test of a cold
index intersected with a sharded one lays records out by hand (``write_records``) to choose their
shards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from redis.cluster import RedisCluster

from otel_redis import schema

from tests.cluster_data import log_entry, now_ms, request_entry, write_path, write_records
from tests.redis_cluster import LocalRedisCluster
from tests.servers import Service, run_service

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("query-api-cluster")]
TOKEN = "cluster-read-token"
SHARDS = 12


@pytest.fixture(scope="module")
def service(redis_cluster_server: LocalRedisCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("query-api-cluster")
    env = {
        "REDIS_URL": redis_cluster_server.url,
        "OTEL_REDIS_DATA_DIR": str(tmp / "data"),
        "OTEL_REDIS_API_TOKENS": TOKEN,
        "OTEL_LOGS_EXPORTER": "none",
    }
    argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
    with run_service(argv, env=env, tmp_path=tmp, name="serve-cluster") as svc:
        yield svc


@pytest.fixture
def rc(redis_cluster: LocalRedisCluster) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    yield client
    client.close()


def _get(svc: Service, path: str, /, **params: object) -> dict:
    reply = httpx.get(svc.base_url + path, params=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_healthz_on_a_cluster(service: Service, rc: RedisCluster) -> None:
    assert _get(service, "/healthz")["redis"] is True


def test_every_record_of_every_shard_in_time_order_with_exact_pages(service: Service, redis_cluster: LocalRedisCluster) -> None:
    start = now_ms() - 60_000
    entries = [request_entry(start + i * 10, status=200 + (i % 3)) for i in range(90)]
    keys = write_path(redis_cluster.url, entries)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 25, **({"cursor": cursor} if cursor else {})}
        page = _get(service, "/logs", **params)
        seen = [r["id"] for r in page["records"]] + seen
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == keys  # all 90, once each, oldest first, across 12 parts on 3 masters


def test_status_errors_and_level_filters_read_every_part(service: Service, redis_cluster: LocalRedisCluster) -> None:
    start = now_ms() - 60_000
    entries = [request_entry(start + i, status=500 if i % 4 == 0 else 200) for i in range(40)]
    entries += [log_entry(start + 100 + i, level="ERROR" if i % 2 else "INFO") for i in range(20)]
    keys = write_path(redis_cluster.url, entries)
    errors_500 = {k for k, e in zip(keys, entries) if e.request and e.request.status_code == 500}
    error_logs = {k for k, e in zip(keys, entries) if e.request is None and e.level == "ERROR"}
    assert {r["id"] for r in _get(service, "/logs/status/500", limit=1000)["records"]} == errors_500
    level = {r["id"] for r in _get(service, "/logs/search", level="ERROR", limit=1000)["records"]}
    assert level == errors_500 | error_logs  # request level from the sharded stats hashes' status codes


def test_cold_index_intersected_with_a_sharded_one(service: Service, rc: RedisCluster) -> None:
    start = now_ms() - 60_000
    entries = [request_entry(start + i, status=404 if i % 2 else 200, ip=f"10.0.0.{i % 3}") for i in range(30)]
    keys = write_records(rc, entries, SHARDS)
    want = {k for k, e in zip(keys, entries) if e.request.client_ip == "10.0.0.1" and e.request.status_code == 404}
    got = {r["id"] for r in _get(service, "/logs/search", ip="10.0.0.1", status=404, limit=1000)["records"]}
    assert got == want and want


def test_service_filter_reads_every_part_and_the_shared_other_index(service: Service, rc: RedisCluster,
                                                                   redis_cluster: LocalRedisCluster) -> None:
    """``service=`` on a cluster: the service's index and, for a name beyond OTEL_REDIS_MAX_SERVICES,
    the ``_OTHER`` index are read from all their parts (records written over every shard)."""
    start = now_ms() - 60_000
    names = ["billing", "shipping"]  # max_services=1: billing is indexed by name, shipping as _OTHER
    entries = [replace(log_entry(start + i) if i % 2 else request_entry(start + i), resource={"service.name": names[i >= 10]})
               for i in range(10)]
    entries += [replace(log_entry(start + i) if i % 2 else request_entry(start + i), resource={"service.name": names[i % 2]})
                for i in range(10, 80)]
    keys = write_path(redis_cluster.url, entries, batch=4, max_services=1)
    other = schema.idx_service("_OTHER")
    assert rc.exists(other) == 0 and sum(rc.zcard(p) > 0 for p in schema.sharded(other, SHARDS)) > 1
    for name in names:
        want = {k for k, e in zip(keys, entries) if e.resource["service.name"] == name}
        got = {r["id"] for r in _get(service, "/logs", service=name, limit=1000)["records"]}
        assert got == want and want, name
    assert _get(service, "/logs", service="nobody", limit=10)["records"] == []


def test_stats_and_events_sum_every_part(service: Service, redis_cluster: LocalRedisCluster) -> None:
    start = now_ms() - 1000
    entries = [request_entry(start + i, status=(200, 404, 500)[i % 3]) for i in range(30)]
    entries += [log_entry(start + i, level="WARNING", event="login" if i % 2 else "logout") for i in range(14)]
    write_path(redis_cluster.url, entries)
    stats = _get(service, "/logs/stats", hours=1)
    assert stats["requests"]["total"] == 30
    assert stats["requests"]["by_status"] == {"200": 10, "404": 10, "500": 10}
    assert stats["logs"] == {"total": 14, "by_level": {"WARNING": 14}}
    events = _get(service, "/logs/events", hours=1)
    assert {e["event"]: e["count"] for e in events["events"]} == {"login": 7, "logout": 7}
    assert all(e["last_seen_ms"] for e in events["events"])


def _events(service: Service, want: int, last_event_id: str | None = None, on_ready=None) -> tuple[str, list[tuple[str, str]]]:
    """(the ready position, [(event id, record id)...]) of the first ``want`` records followed."""
    headers = {"Authorization": f"Bearer {TOKEN}", **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    ready, got, current_id = "", [], ""
    with httpx.stream("GET", service.base_url + "/logs/stream", headers=headers, timeout=30) as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            if line.startswith(": ready "):
                ready = line[len(": ready "):]
                if on_ready is not None:
                    on_ready()
            elif line.startswith("id: "):
                current_id = line[4:]
            elif line.startswith("data: "):
                got.append((current_id, json.loads(line[6:])["id"]))
                if len(got) >= want:
                    break
    return ready, got


def test_follow_reads_every_stream_part_and_resumes_exactly(service: Service, redis_cluster: LocalRedisCluster) -> None:
    start = now_ms()
    entries = [request_entry(start + i) for i in range(20)] + [log_entry(start + 20 + i) for i in range(16)]
    written: list[str] = []
    ready, first = _events(service, 10, on_ready=lambda: written.extend(write_path(redis_cluster.url, entries)))
    assert len(ready.split(",")) == 2 * SHARDS  # one position per stream part
    resumed_at = first[-1][0]
    _ready, rest = _events(service, len(entries) - 10, last_event_id=resumed_at)
    keys = [k for _i, k in first] + [k for _i, k in rest]
    assert sorted(keys) == sorted(written) and len(set(keys)) == len(written)  # each once, none lost


def test_a_position_of_the_wrong_layout_is_a_422(service: Service, rc: RedisCluster) -> None:
    rc.hset("meta:layout", "shards", SHARDS)
    reply = httpx.get(
        service.base_url + "/logs/stream", headers={"Authorization": f"Bearer {TOKEN}", "Last-Event-ID": "1-0,2-0"}, timeout=10
    )
    assert reply.status_code == 422 and "24 stream ids" in reply.text


def test_the_cli_lists_records_written_by_the_write_path(service: Service, redis_cluster: LocalRedisCluster) -> None:
    start = now_ms() - 60_000
    entries = [log_entry(start + i, level="WARNING" if i % 2 else "INFO", body=f"cli {i}") for i in range(40)]
    keys = write_path(redis_cluster.url, entries)
    cli = str(Path(sys.executable).parent / "otel-redis")
    common = ["--url", service.base_url, "--token", TOKEN, "--json"]
    done = subprocess.run([cli, "logs", "recent", "--hours", "1", "--limit", "1000", *common], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == keys  # oldest first, each once
    done = subprocess.run([cli, "logs", "search", "--level", "WARNING", "--limit", "1000", *common], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert {json.loads(line)["id"] for line in done.stdout.splitlines()} == set(keys[1::2])


def test_metrics_stream_gauges_sum_every_stream_part(service: Service, redis_cluster: LocalRedisCluster, rc: RedisCluster) -> None:
    for part in schema.sharded(schema.STREAM_LOGS, SHARDS):
        rc.xgroup_create(part, "fwd", id="0", mkstream=True)
    start = now_ms() - 1000
    write_path(redis_cluster.url, [log_entry(start + i) for i in range(30)] + [request_entry(start + 30 + i) for i in range(10)])
    delivered = 0
    for part in schema.sharded(schema.STREAM_LOGS, SHARDS):  # read some of each part, acknowledge none
        for _stream, entries in rc.xreadgroup("fwd", "c1", {part: ">"}, count=2) or []:
            delivered += len(entries)
    assert delivered > 2  # several parts hold entries
    reply = httpx.get(service.base_url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert reply.status_code == 200, reply.text
    lines = reply.text.splitlines()
    assert 'otel_redis_stream_length{stream="stream:logs"} 30.0' in lines
    assert 'otel_redis_stream_length{stream="stream:requests"} 10.0' in lines
    assert f'otel_redis_stream_group_pending{{group="fwd",stream="stream:logs"}} {float(delivered)}' in lines
