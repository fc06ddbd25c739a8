"""stdlib.py: the logging bridge's own rules, through the real pipeline into the test's Redis."""

from __future__ import annotations

import json
import logging
from typing import Iterator

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

import otel_redis
from otel_redis import schema
from otel_redis.stdlib import install_handler, remove_handler


@pytest.fixture
def app_logger(pipeline) -> Iterator[logging.Logger]:
    logger = logging.getLogger("tests.stdlib.app")
    logger.propagate = False
    handler = install_handler(logger)
    yield logger
    remove_handler(handler, logger)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def _records(r) -> list[dict[str, str]]:
    assert otel_redis.force_flush()
    return [r.hgetall(k) for k in r.zrange(schema.IDX_LOG_ALL, 0, -1)]


def test_install_lowers_an_unset_logger_level_to_the_gate(app_logger):
    assert app_logger.level == logging.INFO  # the pipeline's LOG_LEVEL, not NOTSET (WARNING via root)


def test_a_component_extra_wins_over_the_logger_name_and_extras_become_attributes(app_logger, r):
    app_logger.info("one", extra={"component": "billing", "order_id": 7})
    app_logger.warning("two %s", "args")
    first, second = _records(r)
    assert (first["component"], first["body"]) == ("billing", "one")
    attrs = json.loads(first["attrs"])
    assert attrs["order_id"] == 7 and "component" not in attrs and attrs["code.line.number"] > 0
    assert (second["component"], second["body"], second["level"]) == ("tests.stdlib.app", "two args", "WARNING")


def test_records_logged_while_instrumentation_is_suppressed_are_skipped(app_logger, r):
    with suppress_instrumentation():  # what the batch worker does while it exports
        app_logger.warning("from inside the export")
    app_logger.warning("from the app")
    assert [rec["body"] for rec in _records(r)] == ["from the app"]


@pytest.mark.parametrize("name", ["otel_redis.store", "opentelemetry.sdk._logs", "redis.connection"])
def test_the_export_paths_own_loggers_never_feed_the_pipeline(pipeline, r, name):
    logger = logging.getLogger(name)
    level = logger.level
    handler = install_handler(logger)
    try:
        logger.error("would loop back")
    finally:
        remove_handler(handler, logger)
        logger.setLevel(level)
    assert _records(r) == []
