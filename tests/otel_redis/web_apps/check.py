"""Shared by the web-door tests: run an app in a subprocess, send requests, read its records."""

from __future__ import annotations

import datetime as dt
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import httpx
import redis

from otel_redis import schema
from otel_redis.histogram import bucket_of
from tests.servers import Service, run_service
from tests.waiting import wait_until

BIN = Path(sys.executable).parent
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def instrument_argv(*argv: str) -> list[str]:
    """``opentelemetry-instrument`` in front of ``argv``."""
    return [str(BIN / "opentelemetry-instrument"), *argv]


def zero_code_env(redis_url: str, service: str, exporters: str = "redis") -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "OTEL_TRACES_EXPORTER": exporters,
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": service,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_REDIS_BATCH_DELAY_MS": "10",
        "OTEL_REDIS_TRUSTED_PROXIES": "127.0.0.1/32",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "x-forwarded-for,forwarded,x-forwarded-host",
    }


def serve(argv: Sequence[str], env: Mapping[str, str], tmp_path: Path, name: str) -> Iterator[Service]:
    return run_service(argv, env=dict(env), tmp_path=tmp_path, name=name)


def stop_gracefully(service: Service) -> None:
    """SIGINT: the server exits normally, so exit hooks flush what is queued."""
    assert service.stop(signal.SIGINT, timeout=30) is not None


def standard_requests(base_url: str) -> dict[str, httpx.Response]:
    """The requests every door test sends: a routed GET with forwarding headers and a secret in the
    query, an error, and a 404. No connection is reused: uvicorn closes one after an unhandled error."""
    with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        return {
            "item": c.get(
                base_url + "/items/42?access_token=SECRET123&x=1",
                headers={
                    "traceparent": f"00-{TRACE}-{PARENT}-01",
                    "X-Forwarded-For": "198.51.100.77, 203.0.113.9",
                    "Host": "api.example.com",
                    "User-Agent": "door-test/1.0",
                },
            ),
            "boom": c.get(base_url + "/boom"),
            "missing": c.get(base_url + "/nope"),
        }


def request_records(r: redis.Redis) -> dict[str, dict[str, str]]:
    return {k: r.hgetall(k) for k in r.zrange(schema.IDX_REQ_ALL, 0, -1)}


def wait_records(r: redis.Redis, count: int, timeout: float = 20) -> dict[str, dict[str, str]]:
    """The request records once there are ``count``, else what is there after ``timeout`` (the caller's
    assertion then shows them)."""
    try:
        return wait_until(lambda: recs if len(recs := request_records(r)) >= count else None, timeout=timeout)
    except AssertionError:
        return request_records(r)


def by_path(recs: Mapping[str, Mapping[str, str]]) -> dict[str, tuple[str, Mapping[str, str]]]:
    out: dict[str, tuple[str, Mapping[str, str]]] = {}
    for key, rec in recs.items():
        assert rec["path"] not in out, f"two records for {rec['path']}: {recs}"
        out[rec["path"]] = (key, rec)
    return out


def check_item_record(r: redis.Redis, key: str, rec: Mapping[str, str], route: str, body: bytes,
                      *, user_id: str | None = "user-42", service: str | None = None,
                      sizes_known: bool = True, route_count: int = 1) -> None:
    """Every Log Entry Schema field of the routed request, its indexes and its stats."""
    ts = dt.datetime.fromisoformat(rec["timestamp"].replace("Z", "")[:26]).replace(tzinfo=dt.timezone.utc)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    assert (ts - epoch) // dt.timedelta(milliseconds=1) == schema.record_time_ms(key)  # the request's own time
    assert rec["client_ip"] == "203.0.113.9"  # the peer 127.0.0.1 is a trusted proxy
    assert rec["proxy_hostname"] == "api.example.com", rec
    assert rec["method"] == "GET"
    assert rec["path"] == "/items/42"
    assert rec["query"].startswith("access_token=") and rec["query"].endswith("&x=1")
    assert "SECRET123" not in str(rec) and "SECRET123" not in str(r.xrange("stream:requests"))
    assert rec["route"] == route
    assert rec["status_code"] == "200"
    assert 0 < float(rec["response_time_ms"]) < 10_000
    if user_id is not None:
        assert rec["user_id"] == user_id
    assert rec["user_agent"] == "door-test/1.0"
    # a span carries the body size only when the instrumentation records it (Flask's does not)
    assert int(rec.get("bytes_sent", 0)) == (len(body) if sizes_known else int(rec.get("bytes_sent", 0)) and len(body))
    assert rec.get("error", "") == ""
    assert rec["trace_id"] == TRACE
    assert len(rec["span_id"]) == 16 and rec["span_id"] != PARENT
    if service is not None:
        assert service in (r.get(schema.value_key(rec["resource_ref"])) or rec.get("resource", ""))
    ms = int(ts.timestamp() * 1000)
    for index in ("idx:req:ip:203.0.113.9", "idx:req:host:api.example.com", "idx:req:status:200",
                  "idx:req:method:GET", schema.idx_req_path("GET", route)):
        assert r.zscore(index, key) is not None, index
    if user_id:
        assert r.zscore(f"idx:req:user:{user_id}", key) is not None
    hour, minute = schema.hour_bucket(ms), schema.minute_bucket(ms)
    assert r.hget(f"stats:paths:{hour}", f"GET {route}") == str(route_count)
    assert r.pfcount(f"stats:unique_ips:api.example.com:{hour}") == 1
    bucket = str(bucket_of(float(rec["response_time_ms"])))
    assert r.hget(f"stats:rt:api.example.com:{minute}", bucket) == "1"


def check_error_record(r: redis.Redis, key: str, rec: Mapping[str, str]) -> None:
    assert rec["status_code"] == "500"
    assert "RuntimeError" in rec["error"] and "kaput" in rec["error"]
    assert r.zscore(schema.IDX_REQ_ERRORS, key) is not None
    assert r.zscore("idx:req:status:500", key) is not None


def check_totals(r: redis.Redis, recs: Mapping[str, Mapping[str, str]], expected: int) -> None:
    """Stats count exactly the stored records."""
    hours = {schema.hour_bucket(int(dt.datetime.fromisoformat(rec["timestamp"].replace("Z", "")[:26])
                                    .replace(tzinfo=dt.timezone.utc).timestamp() * 1000)) for rec in recs.values()}
    assert len(recs) == expected
    assert sum(int(r.hget(f"stats:requests:{h}", "total") or 0) for h in hours) == expected

