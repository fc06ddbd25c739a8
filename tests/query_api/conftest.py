"""The real service for the /logs tests: one Redis, one ``otel-redis serve`` and one writer per module.

Each test module gets its own redis-server (so its data set is its own whatever else runs on the
worker), the service as a subprocess on a free port (``otel-redis serve``, which configures the
real pipeline in the service), and the real pipeline in the test process writing into the same
Redis. Modules are pinned to one xdist worker (``xdist_group``) so their tests run in order.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import redis

import otel_redis
from otel_redis import api, pipeline
from otel_redis.config import Settings, load_settings
from otel_redis.embedded import EmbeddedRedis
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.levels import INFO
from otel_redis.record import REQUEST_ATTRIBUTES
from tests.servers import Service, run_service

READ_TOKEN = "read-token-for-tests"
ADMIN_TOKEN = "admin-token-for-tests"


@dataclass
class Stack:
    redis_url: str
    settings: Settings
    service: Service
    r: redis.Redis
    writer: pipeline.Pipeline | None = None

    @property
    def base_url(self) -> str:
        return self.service.base_url

    def client(self, token: str | None = READ_TOKEN, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def ensure_writer(self) -> None:
        """The real pipeline of this process, pointed at this module's Redis (re-made if another
        module's test replaced it)."""
        if self.writer is None or pipeline.current() is not self.writer:
            api.pending().records.clear()
            exporter = RedisLogRecordExporter(settings=self.settings)
            self.writer = otel_redis.configure(
                settings=self.settings, exporter=exporter, set_global_provider=False, level="TRACE"
            )

    def flush(self) -> None:
        assert otel_redis.force_flush(30_000)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("query-api")
    server = EmbeddedRedis(tmp / "redis", persist=False)
    server.start()
    settings = load_settings({}).with_overrides(redis_url=server.url, data_dir=tmp / "data", log_level="TRACE")
    env = {
        "REDIS_URL": server.url,
        "OTEL_REDIS_DATA_DIR": str(tmp / "service-data"),
        "OTEL_REDIS_API_TOKENS": READ_TOKEN,
        "OTEL_REDIS_ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "INFO",
        # no periodic jobs writing records of their own while a test compares exact result sets
        "OTEL_REDIS_CLEANUP_INTERVAL_S": "0",
        "OTEL_REDIS_ALERTS_ENABLED": "false",
        # a module's own service settings (e.g. a small OTEL_REDIS_ATTR_SCAN_LIMIT)
        **getattr(request.module, "SERVICE_ENV", {}),
    }
    argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        with run_service(argv, env=env, tmp_path=Path(tmp), name="query-api") as service:
            s = Stack(redis_url=server.url, settings=settings, service=service, r=client)
            yield s
            if s.writer is not None and pipeline.current() is s.writer:
                otel_redis.shutdown()
    finally:
        client.close()
        server.stop()


@pytest.fixture
def writer(stack: Stack) -> Stack:
    stack.ensure_writer()
    return stack


def emit_request(
    body: str, *, level: int = INFO, trace_id: Any = None, attributes: dict[str, Any] | None = None, **fields: Any
) -> None:
    """One HTTP request record through the real pipeline: the specification's field names are
    given as the OTel attributes the instrumentation uses (otel_redis.record.REQUEST_ATTRIBUTES)."""
    attrs = dict(attributes or {})
    attrs.update({REQUEST_ATTRIBUTES[name]: value for name, value in fields.items()})
    if trace_id is not None:
        attrs["trace_id"] = trace_id
    api.log_at(level, body, **attrs)
