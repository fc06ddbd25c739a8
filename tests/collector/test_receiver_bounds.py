"""Remote senders cannot create unbounded keys: 10,000 hostile records per dimension through the real
OTLP/HTTP receiver (status codes, paths, methods, service names, components, events, users,
sessions, OAuth clients, client hostnames and log IPs), on the real Redis. The bounds are otel_redis/bounds.py's, applied by
the store the receiver writes through; every record is stored with its raw value."""

from __future__ import annotations

import random
from typing import Any, Iterator

import httpx
import pytest
import redis
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from collector.receiver import Receiver
from otel_redis import schema
from otel_redis.bounds import OTHER
from otel_redis.config import load_settings
from otel_redis.embedded import EmbeddedRedis

from .otlp_helpers import start_receiver_on_free_ports

N = 10_000
BOUND = 30
PER_REQUEST = 1000
HOSTILE = "abcxyz019:*?[]{}%/ \t\x00é中"


@pytest.fixture
def bounded_receiver(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """A fresh receiver per test: the bounds are per process (the receiver's store), so a test sees
    only its own values."""
    settings = load_settings({}).with_overrides(
        redis_url=redis_server.url, data_dir=tmp_path_factory.mktemp("data"), retry_attempts=0,
        max_paths=BOUND, max_path_prefixes=5, max_components=BOUND, max_events=BOUND,
        max_users_per_hour=BOUND, max_sessions_per_hour=BOUND, max_oauth_clients_per_hour=BOUND,
        max_client_hostnames_per_hour=BOUND, max_services=BOUND,
    )
    rec = start_receiver_on_free_ports(settings)
    yield rec
    rec.stop()


def hostile(rng: random.Random, i: int) -> str:
    return "".join(rng.choice(HOSTILE) for _ in range(10)) + f"#{i}"


def _set(attrs: Any, key: str, value: str | int) -> None:
    kv = attrs.add()
    kv.key = key
    if isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.string_value = value


def send(receiver: Receiver, records: list[dict[str, str | int]], service: str | None = None,
         services: list[str] | None = None) -> None:
    """POST the records (attribute dicts) in requests of PER_REQUEST; with ``services`` each record
    gets a resource of its own with that ``service.name``."""
    for start in range(0, len(records), PER_REQUEST):
        request = ExportLogsServiceRequest()
        chunk = records[start:start + PER_REQUEST]
        if services is None:
            rl = request.resource_logs.add()
            _set(rl.resource.attributes, "service.name", service or "sender")
            groups = [(rl, chunk)]
        else:
            groups = []
            for i, attrs in enumerate(chunk):
                rl = request.resource_logs.add()
                _set(rl.resource.attributes, "service.name", services[start + i])
                groups.append((rl, [attrs]))
        for rl, items in groups:
            scope = rl.scope_logs.add()
            for attrs in items:
                rec = scope.log_records.add()
                rec.body.string_value = "x"
                rec.severity_number = 9
                for key, value in attrs.items():
                    if key == "event_name":
                        rec.event_name = str(value)
                    else:
                        _set(rec.attributes, key, value)
        response = httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/logs", content=request.SerializeToString(),
                              headers={"content-type": "application/x-protobuf"}, timeout=60)
        assert response.status_code == 200, response.text
        assert response.content in (b"", b"{}") or b"rejected" not in response.content


def count(r: redis.Redis, pattern: str) -> int:
    return sum(1 for _ in r.scan_iter(pattern, count=5000))


def stored(r: redis.Redis) -> int:
    return r.zcard("idx:log:all") + r.zcard("idx:req:all")


def request(method: str, path: str, status: int, **extra: str) -> dict[str, str | int]:
    return {"http.request.method": method, "url.path": path, "http.response.status_code": status, **extra}


def test_status_codes_from_a_sender_are_bounded(bounded_receiver, r):
    send(bounded_receiver, [request("GET", "/s", i) for i in range(N)])
    assert stored(r) == N
    assert count(r, "idx:req:status:*") == 500 + 1  # 100-599, then _OTHER
    assert r.zcard(f"idx:req:status:{OTHER}") == N - 500
    assert r.zcard("idx:req:status:503") == 1  # a known status is still its own index
    odd = {r.hget(k, "status_code") for k in r.zrange(f"idx:req:status:{OTHER}", 0, -1)}
    assert len(odd) == N - 500


def test_paths_and_methods_from_a_sender_are_bounded(bounded_receiver, r):
    rng = random.Random(11)
    send(bounded_receiver, [request(hostile(rng, i) if i % 2 else "GET", f"/{i % 7}x/{hostile(rng, i)}", 200)
                            for i in range(N)])
    assert stored(r) == N
    assert sorted(r.scan_iter("idx:req:method:*")) == ["idx:req:method:GET", f"idx:req:method:{OTHER}"]
    assert count(r, "idx:req:path:*") <= 2 * (BOUND + 5 + 1)
    fields = [f for key in r.scan_iter("stats:paths:*") for f in r.hkeys(key)]
    assert len(fields) <= 2 * (BOUND + 5 + 1)
    raw = {r.hget(k, "path") for k in r.zrange("idx:req:all", 0, -1)}
    assert len(raw) == N


def test_service_names_components_and_events_from_senders_are_bounded(bounded_receiver, r):
    rng = random.Random(12)
    services = ["known-svc" if i == 0 else hostile(rng, i) for i in range(N)]
    send(bounded_receiver, [{"event_name": "known" if i == 0 else hostile(rng, i)} for i in range(N)],
         services=services)
    assert stored(r) == N
    assert count(r, "idx:log:component:*") <= BOUND + 1  # the service name is the component
    assert count(r, "idx:log:event:*") <= BOUND + 1
    assert len([f for k in r.scan_iter("stats:events:*") for f in r.hkeys(k)]) <= BOUND + 1
    assert r.zcard(schema.idx_log_component("known-svc")) == 1
    assert r.zcard(schema.idx_log_event("known")) == 1
    comps = {r.hget(k, "component") for k in r.zrange(schema.idx_log_component(OTHER), 0, -1)}
    assert len(comps) == N - BOUND
    # the resource service.name index (service= queries): the same bound
    assert count(r, "idx:service:*") == BOUND + 1
    assert r.zcard(schema.idx_service("known-svc")) == 1
    assert r.zcard(schema.idx_service(OTHER)) == N - BOUND


@pytest.mark.parametrize("dimension,attribute", [
    ("user", "enduser.id"), ("session", "session.id"), ("client", "oauth.client_id"), ("component", "component"),
])
def test_ids_and_components_from_a_sender_are_bounded(bounded_receiver, r, dimension, attribute):
    rng = random.Random(13)
    values = ["known" if i == 0 else hostile(rng, i) for i in range(N)]
    send(bounded_receiver, [{attribute: v} for v in values])
    assert stored(r) == N
    assert count(r, f"idx:log:{dimension}:*") <= BOUND + 1
    index = schema.idx_log_component if dimension == "component" else (lambda v: schema.idx_log_field(dimension, v))
    assert r.zcard(index("known")) == 1
    assert r.zcard(index(OTHER)) == N - BOUND


def test_client_hostnames_and_log_ips_from_a_sender_are_bounded(bounded_receiver, r):
    rng = random.Random(14)
    requests = [request("GET", "/h", 200, **{"client.hostname": "known.test" if i == 0 else hostile(rng, i)})
                for i in range(N // 2)]
    # not addresses (an address is indexed as it is, like a request's client IP)
    logs = [{"client.address": "10.1.2.3" if i == 0 else "x" + hostile(rng, i)} for i in range(N // 2)]
    send(bounded_receiver, requests + logs)
    assert stored(r) == N
    assert count(r, "idx:req:fqdn:*") <= BOUND + 1
    assert r.zcard(schema.idx_req_fqdn("known.test")) == 1
    assert sorted(r.scan_iter("idx:log:ip:*")) == [schema.idx_log_field("ip", "10.1.2.3"),
                                                    schema.idx_log_field("ip", OTHER)]
    raw = {r.hget(k, "client_hostname") for k in r.zrange(schema.idx_req_fqdn(OTHER), 0, -1)}
    assert len(raw) == N // 2 - BOUND
