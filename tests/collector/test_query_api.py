"""OTLP in, query API out: the official exporters send to `otel-redis serve`'s receiver, /logs reads back."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter

from otel_redis.embedded import EmbeddedRedis
from otel_redis.record import iso_from_ns

from .otlp_helpers import SdkSender, service_on_free_ports, span_context

pytestmark = pytest.mark.e2e

TOKEN = "collector-read-token"
T0 = (time.time_ns() // 1_000_000_000 - 60) * 1_000_000_000 + 987_654_321


class Serve:
    def __init__(self, base_url: str, http_port: int, grpc_port: int) -> None:
        self.base_url = base_url
        self.http_port = http_port
        self.grpc_port = grpc_port

    def get(self, path: str, **params: object) -> dict:
        response = httpx.get(self.base_url + path, params=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """``otel-redis serve`` with its OTLP receiver, on a Redis of this module's own."""
    tmp = tmp_path_factory.mktemp("serve-otlp")
    server = EmbeddedRedis(tmp / "redis", persist=False)
    server.start()

    def argv(ports: dict[str, int]) -> tuple[list[str], int]:
        return [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}",
                "--otlp-http-port", str(ports["http"]), "--otlp-grpc-port", str(ports["grpc"])], ports["api"]

    env = {"REDIS_URL": server.url, "OTEL_REDIS_DATA_DIR": str(tmp / "data"), "OTEL_REDIS_API_TOKENS": TOKEN}
    try:
        with service_on_free_ports(argv, names=("api", "http", "grpc"), env=env, tmp_path=Path(tmp),
                                   name="serve-otlp") as (service, ports):
            yield Serve(service.base_url, ports["http"], ports["grpc"])
    finally:
        server.stop()


@pytest.mark.parametrize("protocol,trace_id", [("http", 0xA1 << 100 | 1), ("grpc", 0xB2 << 100 | 2)])
def test_records_sent_over_otlp_read_back_through_the_query_api(protocol, trace_id, serve):
    if protocol == "http":
        exporter = HttpExporter(endpoint=f"http://127.0.0.1:{serve.http_port}/v1/logs")
    else:
        exporter = GrpcExporter(endpoint=f"127.0.0.1:{serve.grpc_port}", insecure=True)
    resource = {"service.name": f"api-{protocol}", "deployment.environment": "ci"}
    sender = SdkSender(exporter, resource)
    logger = sender.logger("readback", "1.0")
    span = 0x1122334455667788
    logger.emit(LogRecord(timestamp=T0, context=span_context(trace_id, span), severity_number=SeverityNumber.WARN,
                          body={"msg": "quota low", "left": 3}, event_name="quota.low",
                          attributes={"component": "billing", "enduser.id": f"user-{protocol}", "ratio": 0.1}))
    logger.emit(LogRecord(timestamp=T0 + 1_000, context=span_context(trace_id, span), severity_number=SeverityNumber.ERROR,
                          body="POST /charge", attributes={
                              "http.request.method": "POST", "http.response.status_code": 503, "url.path": "/charge",
                              "client.address": "203.0.113.5", "server.address": "pay.example",
                              "http.server.response_time_ms": 12.25, "retry": True}))
    sender.close()
    sent_resource = dict(sender.memory.get_finished_logs()[0].resource.attributes)

    page = serve.get(f"/logs/trace/{trace_id:032x}")
    assert page["count"] == 2
    log, req = page["records"]  # oldest first
    assert log["kind"] == "log" and req["kind"] == "request"
    assert log["timestamp"] == iso_from_ns(T0) and req["timestamp"] == iso_from_ns(T0 + 1_000)
    assert log["body"] == {"msg": "quota low", "left": 3}
    assert (log["level"], log["severity_number"]) == ("WARNING", 13)
    assert log["component"] == "billing" and log["event"] == "quota.low"
    assert log["trace_id"] == f"{trace_id:032x}" and log["span_id"] == f"{span:016x}"
    assert log["attributes"] == {"enduser.id": f"user-{protocol}", "ratio": 0.1}
    assert log["resource"] == sent_resource
    assert req["body"] == "POST /charge" and (req["level"], req["severity_number"]) == ("ERROR", 17)
    assert req["component"] == f"api-{protocol}"  # service.name when no component attribute
    assert (req["method"], req["path"], req["status_code"]) == ("POST", "/charge", 503)
    assert (req["client_ip"], req["proxy_hostname"], req["response_time_ms"]) == ("203.0.113.5", "pay.example", 12.25)
    assert req["attributes"] == {"retry": True} and req["resource"] == sent_resource

    # and the other indexes find them too
    assert [r["id"] for r in serve.get(f"/logs/user/user-{protocol}")["records"]] == [log["id"]]
    assert req["id"] in [r["id"] for r in serve.get("/logs/status/503")["records"]]
    assert req["id"] in [r["id"] for r in serve.get("/logs/ip/203.0.113.5")["records"]]
