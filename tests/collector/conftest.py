"""Collector fixtures: a real OTLP receiver (HTTP and gRPC on free ports) on the suite's Redis."""

from __future__ import annotations

from typing import Iterator

import pytest

from collector.receiver import Receiver
from otel_redis.config import load_settings
from otel_redis.embedded import EmbeddedRedis
from otel_redis.store import RedisStore

from .otlp_helpers import start_receiver_on_free_ports

import redis

INGEST_TOKEN = "ingest-secret-token"


def _receiver(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory, **overrides: object) -> Receiver:
    settings = load_settings({}).with_overrides(
        redis_url=redis_server.url, data_dir=tmp_path_factory.mktemp("data"), retry_attempts=0
    )
    return start_receiver_on_free_ports(settings, **overrides)


@pytest.fixture(scope="module")
def receiver(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """An open receiver with a 256 KiB body limit."""
    rec = _receiver(redis_server, tmp_path_factory, max_body_bytes=256 * 1024)
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def guarded_receiver(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """A receiver that wants a bearer token and takes one request at a time."""
    rec = _receiver(redis_server, tmp_path_factory, tokens=(INGEST_TOKEN,), max_inflight=1)
    yield rec
    rec.stop()


@pytest.fixture
def store(receiver: Receiver, redis_url: str) -> Iterator[RedisStore]:
    """A reader on the test's (emptied) database."""
    client = redis.Redis.from_url(redis_url)
    yield RedisStore(client, receiver.settings)
    client.close()
