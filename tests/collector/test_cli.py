"""`otel-redis receive` and `otel-redis serve` with the receiver: real subprocesses, real ports."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest
import redis
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter

from otel_redis import schema
from otel_redis.config import load_settings
from otel_redis.store import RedisStore
from tests.servers import ROOT, free_port

from .otlp_helpers import SdkSender, service_on_free_ports

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-c", "import sys; from otel_redis.cli import main; sys.exit(main())"]


def test_receive_command_stores_what_the_sdk_sends(redis_url, tmp_path):
    def argv(ports: dict[str, int]) -> tuple[list[str], int]:
        return [*CLI, "receive", "--otlp-http-port", str(ports["http"]), "--otlp-grpc-port", str(ports["grpc"])], ports["http"]

    env = {"REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data")}
    with service_on_free_ports(argv, names=("http", "grpc"), env=env, tmp_path=tmp_path, name="receive") as (service, ports):
        http_port = ports["http"]
        sender = SdkSender(HttpExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/logs"), {"service.name": "cli-svc"})
        sender.logger("s").emit(LogRecord(body="through the receive command"))
        sender.close()
        assert "OTLP/gRPC on 127.0.0.1" in service.output()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    (key,) = client.zrange("idx:log:component:cli-svc", 0, -1)
    assert client.hget(key, "body") == "through the receive command"


def test_serve_runs_the_receiver_beside_the_query_api(redis_url, tmp_path):
    def argv(ports: dict[str, int]) -> tuple[list[str], int]:
        return [*CLI, "serve", "--port", "{port}", "--otlp-http-port", str(ports["http"]), "--otlp-grpc-port", "0"], ports["api"]

    env = {"REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data"), "OTEL_REDIS_API_TOKENS": "t"}
    with service_on_free_ports(argv, names=("api", "http"), env=env, tmp_path=tmp_path, name="serve") as (_s, ports):
        api_port, http_port = ports["api"], ports["http"]
        sender = SdkSender(HttpExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/logs"), {"service.name": "beside"})
        sender.logger("s").emit(LogRecord(body="beside the API"))
        sender.close()
        health = httpx.get(f"http://127.0.0.1:{api_port}/healthz").json()
        assert health["status"] == "ok"
        assert health["collector"]["receiver"]["accepted_records"] == 1  # the receiver runs in this process
        assert health["collector"]["forwarder"]["forwarded"] == 0 and health["collector"]["backlog"] == {}
        assert health["collector"]["forwarders"] == {}
        redis.Redis.from_url(redis_url).xgroup_create("stream:logs", "otel-redis-forwarder", id="0")
        health = httpx.get(f"http://127.0.0.1:{api_port}/healthz").json()
        assert health["collector"]["backlog"] == {"stream:logs": {"lag": 1, "pending": 0}}
        # a forwarder elsewhere published its counters: /metrics shows them beside the receiver's
        RedisStore(redis.Redis.from_url(redis_url), load_settings({})).publish_counters(
            schema.FORWARDERS, "fwd-x", schema.forwarder_stats("fwd-x"), {"forwarded": 7, "retried": 2}, 60
        )
        metrics = httpx.get(f"http://127.0.0.1:{api_port}/metrics", headers={"Authorization": "Bearer t"}).text
        assert "otel_redis_receiver_accepted_records_total 1.0" in metrics
        assert 'otel_redis_forwarder_forwarded_total{consumer="fwd-x"} 7.0' in metrics
        assert 'otel_redis_forwarder_retried_total{consumer="fwd-x"} 2.0' in metrics
        assert 'otel_redis_forwarder_backlog{stream="stream:logs"} 1.0' in metrics
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.zcard("idx:log:component:beside") == 1


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(argv, env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_taken_ports_are_one_clear_line(redis_url, tmp_path):
    env = {"REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data"), "OTEL_REDIS_API_TOKENS": "t"}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        for argv, flag in (
            ([*CLI, "serve", "--port", str(taken), "--no-otlp"], "--port"),
            ([*CLI, "serve", "--port", str(free_port()), "--otlp-http-port", str(taken)], "--otlp-http-port"),
            ([*CLI, "serve", "--port", str(free_port()), "--otlp-grpc-port", str(taken)], "--otlp-grpc-port"),
            ([*CLI, "receive", "--otlp-http-port", "0", "--otlp-grpc-port", str(taken)], "--otlp-grpc-port"),
        ):
            result = _run(argv, env)
            assert result.returncode != 0, result.stderr
            errors = [line for line in result.stderr.splitlines() if line.startswith("otel-redis: cannot listen")]
            assert len(errors) == 1 and f"127.0.0.1:{taken}" in errors[0] and flag in errors[0], result.stderr
            assert "Traceback" not in result.stderr


def test_bad_port_flag_and_nothing_to_receive_are_clear(redis_url, tmp_path):
    env = {"REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data")}
    result = _run([*CLI, "receive", "--otlp-http-port", "0", "--otlp-grpc-port", "0"], env)
    assert result.returncode == 2 and "nothing to receive" in result.stderr
    result = _run([*CLI, "receive", "--otlp-http-port", "70000"], env)
    assert result.returncode == 2 and "not a port" in result.stderr and "Traceback" not in result.stderr


def test_forward_configuration_errors_are_one_line(redis_url, tmp_path):
    env = {"REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data")}
    for extra, message in (
        ({"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/json"}, "speaks http/protobuf or grpc"),
        ({"OTEL_REDIS_FORWARD_START": "yesterday"}, "OTEL_REDIS_FORWARD_START"),
        ({"OTEL_REDIS_FORWARD_BATCH_SIZE": "many"}, "OTEL_REDIS_FORWARD_BATCH_SIZE"),
    ):
        result = _run([*CLI, "forward", "--once"], {**env, **extra})
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_bad_otlp_exporter_values_are_one_line(redis_url, tmp_path):
    """A bad standard variable stops ``forward`` with one line naming it, before any record is read."""
    env = {"REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "data")}
    for extra, message in (
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "brotli"}, "COMPRESSION='brotli'"),
        ({"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "soon"}, "TIMEOUT='soon'"),
        ({"OTEL_EXPORTER_OTLP_CERTIFICATE": str(tmp_path / "missing.pem")}, "no such file"),
        ({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "127.0.0.1:4318/v1/logs"}, "must start with http://"),
    ):
        result = _run([*CLI, "forward", "--once"], {**env, **extra})
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
