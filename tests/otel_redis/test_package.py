"""The package facade: every public name resolves on first use, and importing the package or building
the ``otel-redis`` parser loads neither the OpenTelemetry SDK nor redis-py (the CLI's start-up cost)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import otel_redis

HEAVY = ("opentelemetry.sdk", "redis", "otel_redis.exporter", "otel_redis.alerts", "otel_redis.store", "query_api")


def _loaded_after(code: str) -> list[str]:
    """Heavy modules present after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.e2e
def test_import_and_the_cli_parser_load_no_sdk_and_no_redis():
    assert _loaded_after("import otel_redis") == []
    assert _loaded_after("import otel_redis.cli as c\nc.build_parser()") == []
    # a name that needs the pipeline loads it
    assert "opentelemetry.sdk" in _loaded_after("import otel_redis\notel_redis.log_info")


@pytest.mark.parametrize("name", otel_redis.__all__)
def test_every_public_name_resolves(name):
    assert getattr(otel_redis, name) is not None
    assert name in dir(otel_redis)


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no_such_name"):
        otel_redis.no_such_name  # noqa: B018
    from otel_redis import log_info as direct
    from otel_redis.api import log_info

    assert direct is log_info


def test_cli_rule_choices_are_the_rules():
    from otel_redis.alert_rules import RULES
    from otel_redis.cli.alerts import RULE_NAMES

    assert RULE_NAMES == tuple(RULES)
