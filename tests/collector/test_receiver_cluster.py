"""The OTLP receiver on a Redis Cluster (3 masters): records sent by the official exporters are stored
by the write path in the sharded layout, each once."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter
from redis.cluster import RedisCluster

from otel_redis import schema
from otel_redis.config import load_settings
from tests.redis_cluster import LocalRedisCluster

from .otlp_helpers import SdkSender, start_receiver_on_free_ports

pytestmark = pytest.mark.cluster
SHARDS = 12


def test_official_exporters_store_every_record_once_on_a_cluster(redis_cluster: LocalRedisCluster, tmp_path: Path) -> None:
    settings = load_settings({}).with_overrides(redis_url=redis_cluster.url, data_dir=tmp_path / "data")
    receiver = start_receiver_on_free_ports(settings)
    t0 = (time.time_ns() // 1_000_000_000 - 60) * 1_000_000_000
    try:
        senders = [
            SdkSender(HttpExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/logs"), {"service.name": "http"}),
            SdkSender(GrpcExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True,
                                   compression=grpc.Compression.NoCompression), {"service.name": "grpc"}),
        ]
        for n, sender in enumerate(senders):
            logger = sender.logger("cluster.scope")
            for i in range(40):
                attributes = {"component": "otlp"}
                if i % 4 == 0:  # a request record
                    attributes.update({"http.request.method": "GET", "http.response.status_code": 200 + i % 3 * 100,
                                       "url.path": f"/o/{i}", "client.address": "10.9.0.1"})
                logger.emit(LogRecord(timestamp=t0 + (n * 40 + i) * 1_000_000, severity_number=SeverityNumber.INFO,
                                      body=f"otlp {n} {i}", attributes=attributes))
            sender.close()
    finally:
        receiver.stop()
    with RedisCluster.from_url(redis_cluster.url, decode_responses=True) as rc:
        assert schema.parse_layout(rc.hgetall(schema.LAYOUT_KEY)) == SHARDS
        logs = [m for part in schema.sharded(schema.IDX_LOG_ALL, SHARDS) for m in rc.zrange(part, 0, -1)]
        requests = [m for part in schema.sharded(schema.IDX_REQ_ALL, SHARDS) for m in rc.zrange(part, 0, -1)]
        assert len(logs) == len(set(logs)) == 60
        assert len(requests) == len(set(requests)) == 20
        bodies = {rc.hget(key, "body") for key in logs}
        assert {f"otlp {n} {i}" for n in range(2) for i in range(40) if i % 4} == bodies
        streamed = [f["k"] for part in schema.stream_parts(SHARDS) for _id, f in rc.xrange(part)]
        assert sorted(streamed) == sorted(logs + requests)
        assert rc.exists(schema.IDX_LOG_ALL, schema.STREAM_LOGS) == 0  # only the sharded names
