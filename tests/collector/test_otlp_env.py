"""How the forwarder reads the standard OTEL_EXPORTER_OTLP_* variables (pure functions, no I/O)."""

from __future__ import annotations

import email.utils
import time

import pytest

from collector.otlp_env import UpstreamError, otlp_settings, retry_after_s


def test_logs_specific_values_win_over_generic_ones():
    s = otlp_settings("grpc", {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4317", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://logs:4317",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "3", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "7.5",
        "OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "b=2",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
    })
    assert (s.endpoint, s.grpc_target, s.timeout_s, s.headers) == ("https://logs:4317", "logs:4317", 7.5, {"b": "2"})
    assert s.insecure is False  # an https endpoint is never plaintext


@pytest.mark.parametrize("endpoint, insecure_env, expected", [
    ("http://h:4317", None, True), ("h:4317", None, False), ("h:4317", "true", True), ("http://h:4317", "false", False),
])
def test_grpc_plaintext_rule(endpoint, insecure_env, expected):
    env = {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": endpoint}
    if insecure_env is not None:
        env["OTEL_EXPORTER_OTLP_LOGS_INSECURE"] = insecure_env
    assert otlp_settings("grpc", env).insecure is expected


def test_defaults_and_generic_http_endpoint():
    assert otlp_settings("http/protobuf", {}).endpoint == "http://localhost:4318/v1/logs"
    assert otlp_settings("grpc", {}).grpc_target == "localhost:4317"
    assert otlp_settings("http/protobuf", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1/base/"}).endpoint == \
        "http://c:1/base/v1/logs"


@pytest.mark.parametrize("env", [{"OTEL_EXPORTER_OTLP_TIMEOUT": "-1"}, {"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
                                 {"OTEL_EXPORTER_OTLP_CLIENT_KEY": "/nonexistent/key.pem"}])
def test_bad_values_name_the_variable(env):
    with pytest.raises(UpstreamError, match="OTEL_EXPORTER_OTLP_"):
        otlp_settings("http/protobuf", env)


def test_retry_after_seconds_and_http_date():
    assert retry_after_s("3") == 3.0
    assert retry_after_s(None) is None and retry_after_s("soon") is None
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 50 < retry_after_s(later) <= 61
