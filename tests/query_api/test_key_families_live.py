"""Every key the system writes belongs to exactly one family of ``schema.KEY_FAMILIES``, and
``DELETE /logs`` leaves none of the owned ones behind.

The write path runs through every door that is cheap to open, into the module's real Redis: the
log calls, a request record, ``log_request``/``log_response``, the stdlib bridge, OAuth activity and
flows, the OTLP receiver (the official HTTP exporter), an alert evaluation that fires, a periodic
job's lock, a forwarder's published counters and a stats query. A new key family written without
a table row fails here.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import redis
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter

import otel_redis
from otel_redis import api, schema
from otel_redis.alert_rules import AlertConfig, ErrorRateRule
from otel_redis.alerts import AlertEngine
from otel_redis.jobs import PeriodicJob
from otel_redis.stdlib import install_handler, remove_handler
from otel_redis.store import RedisStore
from tests.collector.otlp_helpers import SdkSender, start_receiver_on_free_ports

from .conftest import ADMIN_TOKEN, Stack, emit_request

pytestmark = pytest.mark.xdist_group("query_api_key_families")

LONG_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
#: families a run through these doors must have written (the rest: Cluster-only, or kept by time)
EXPECTED = {
    "log_record_key", "request_record_key", "STREAM_LOGS", "STREAM_REQUESTS", "value_key",
    "IDX_LOG_ALL", "IDX_LOG_ERRORS", "idx_log_level", "idx_log_component", "idx_log_event", "idx_log_field",
    "idx_trace", "IDX_REQ_ALL", "IDX_REQ_ERRORS", "IDX_REQ_SLOW", "idx_req_ip", "idx_req_host", "idx_req_user",
    "idx_req_status", "idx_req_method", "idx_req_path", "idx_req_client", "idx_req_session",
    "idx_oauth_event", "idx_oauth_client", "idx_oauth_user", "oauth_flow",
    "stats_requests", "stats_errors", "stats_unique_ips", "stats_logs", "stats_events", "stats_rt", "stats_rt_all",
    "stats_paths", "stats_hosts", "stats_agents", "stats_referrers", "stats_client_ips", "stats_not_found",
    "stats_route_count", "stats_route_time", "stats_bytes", "stats_error_groups", "stats_error_latest",
    "stats_host_top", "idx_service", "PIPELINE_PROCESSES", "pipeline_counters", "job_lock", "batch_marker", "ALERTS_EVENTS", "ALERTS_STATE", "forwarder_stats", "FORWARDERS",
}


def write_through_every_door(stack: Stack) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    for i, status in enumerate((404, 404, 200)):
        emit_request(f"GET /items/{i} {status}", method="GET", path=f"/items/{i}", status_code=status, client_ip="10.0.0.7",
                     proxy_hostname="api.example.com", user_id="u1", session_id="s1", oauth_client_id="c1",
                     response_time_ms=5000.0, user_agent=LONG_AGENT, referrer="https://ref.example/", route="/items/{id}",
                     trace_id=trace, bytes_sent=10)
    trace_id = otel_redis.log_request("POST", "/login", "10.0.0.8", "auth.example.com", user_agent="curl/8")
    otel_redis.log_response(trace_id, 500)
    api.log_info("hello", component="worker", user_id="u2", ip="10.0.0.9", session_id="s2", client_id="c2",
                 hostname="h.example.com", trace_id=trace)
    api.log_event("order_placed", {"order": 1}, component="shop")
    try:
        raise ValueError("broken")
    except ValueError as exc:
        api.log_error("failed", component="worker", error=exc)
    otel_redis.log_oauth_activity("login_failed", "c3", "u3", {"ip": "10.0.0.10"})
    otel_redis.track_oauth_flow("s3", "authorize")
    logger = logging.getLogger("keyfamilies.stdlib")
    handler = install_handler(logger)
    try:
        logger.warning("through the stdlib")
    finally:
        remove_handler(handler, logger)
    stack.flush()

    receiver = start_receiver_on_free_ports(replace(stack.settings, retry_attempts=0))
    try:
        sender = SdkSender(HttpExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/logs"),
                           {"service.name": "otlp-door", "deployment.environment": "x" * 80})
        sender.logger("otlp").emit(LogRecord(body="over OTLP", attributes={"user_id": "u4"}))
        sender.close()
    finally:
        receiver.stop()

    client = redis.Redis.from_url(stack.redis_url)
    try:
        config = AlertConfig(error_rate=ErrorRateRule(threshold=0.01, min_requests=1))
        assert AlertEngine(client, config).evaluate(), "the error-rate rule should have fired"
        job = PeriodicJob("cleanup", 60, lambda: None, client)
        job.run_once()
        RedisStore(client, stack.settings).publish_counters(
            schema.FORWARDERS, "fwd-1", schema.forwarder_stats("fwd-1"), {"forwarded": 1}, 60)
    finally:
        client.close()
    with stack.client() as c:
        assert c.get("/logs/stats").status_code == 200


def test_every_key_written_is_of_exactly_one_family_and_delete_leaves_none(writer: Stack):
    write_through_every_door(writer)
    keys = sorted(writer.r.scan_iter(count=1000))
    assert len(keys) > 80
    unknown = {k: [f.name for f in schema.families_matching(k)] for k in keys if len(schema.families_matching(k)) != 1}
    assert not unknown, f"keys of no family (or of several) in schema.KEY_FAMILIES: {unknown}"
    seen = {schema.family_of(k).name for k in keys}  # type: ignore[union-attr]
    assert EXPECTED <= seen, f"not written by any door: {sorted(EXPECTED - seen)}"

    with writer.client(token=ADMIN_TOKEN) as c:
        body = c.delete("/logs").json()
    assert body["removed"] >= len(keys) - 1
    left = sorted(writer.r.scan_iter(count=1000))
    assert all(not schema.family_of(k).owned for k in left), left  # type: ignore[union-attr]
    counted = {p for p, n in body["by_pattern"].items() if n}
    assert {"lock:job:*", "wp:batch:*", "idx:oauth:client:*", "alerts:events"} <= counted
