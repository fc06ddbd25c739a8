"""The settings table (``config.SETTINGS``) is what the loaders read: names, defaults and bounds."""

from __future__ import annotations

import importlib
import re
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

import pytest

from otel_redis import alert_rules, config
from otel_redis.config import SETTINGS, ConfigError, Setting, Settings, load_settings
from tests.servers import ROOT

SOURCES = [p for pkg in ("otel_redis", "query_api", "collector") for p in (ROOT / pkg).rglob("*.py")]
NAME = re.compile(r"OTEL_REDIS_[A-Z0-9_]*")
#: every OTEL_REDIS_ALERT_<RULE>_<FIELD>, from the rule dataclasses
RULE_NAMES = {f"OTEL_REDIS_ALERT_{rule.upper()}_{f.name.upper()}" for rule, cls in alert_rules.RULES.items()
              for f in fields(cls)}
LOADED = [s for s in SETTINGS if s.field is not None]


def loader(s: Setting) -> Callable[[dict[str, str]], Any]:
    module, _, attr = s.read_by.partition(":")
    target: Any = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def loaded(s: Setting, env: dict[str, str]) -> Any:
    value: Any = loader(s)(env)
    for part in s.field.split("."):  # type: ignore[union-attr]
        value = getattr(value, part)
    return value


def test_every_otel_redis_name_in_the_sources_is_in_the_table():
    table = {s.name for s in SETTINGS} | RULE_NAMES
    missing = {}
    for path in SOURCES:
        for name in set(NAME.findall(path.read_text(encoding="utf-8"))):
            known = name in table if not name.endswith("_") else any(t.startswith(name) for t in table)
            if not known:
                missing.setdefault(name, str(path.relative_to(ROOT)))
    assert not missing, f"read in the sources but not in config.SETTINGS: {missing}"


def test_every_row_without_a_loader_field_is_read_where_it_says():
    """(A row with a field is proven by test_each_loader_reads_the_rows_name.)"""
    for s in SETTINGS:
        if "<" in s.name or s.field is not None:
            continue
        module = s.read_by.partition(":")[0]
        source = Path(importlib.import_module(module).__file__).read_text(encoding="utf-8")  # type: ignore[arg-type]
        assert f'"{s.name}"' in source, f"{s.name} is not read in {module}"


def test_names_are_unique_and_sections_known():
    assert len({s.name for s in SETTINGS}) == len(SETTINGS)
    assert {s.section for s in SETTINGS} <= {key for key, _ in config.SECTIONS}
    assert {s.kind for s in SETTINGS} <= set(config.PARSERS)


def test_the_dataclass_defaults_are_the_tables():
    assert load_settings({}) == Settings()
    held = {s.field.split(".")[0] for s in SETTINGS if s.read_by == config._LOAD and s.field}
    assert held == {f.name for f in fields(Settings)}, "a Settings field without a row, or a row without a field"


@pytest.mark.parametrize("s", LOADED, ids=[s.name for s in LOADED])
def test_each_loader_has_the_rows_default(s: Setting):
    value = loaded(s, {})
    assert value == (s.default * s.scale if s.scale != 1 else s.default) or (
        s.kind == "path" and value == Path(str(s.default))
    ), f"{s.read_by} gives {s.field}={value!r}, the table says {s.default!r}"


#: a valid value other than the default, per kind (the loader must pick it up under the row's name)
def other_value(s: Setting) -> str:
    special = {"OTEL_REDIS_METRICS_WINDOWS": "120", "OTEL_REDIS_FORWARD_START": "$",
               "OTEL_REDIS_ALERT_WEBHOOKS": "http://hooks.example/x"}
    if s.name in special:
        return special[s.name]
    if s.kind in ("int", "float"):
        return str(int(s.minimum or 0) + 1 if s.default != int(s.minimum or 0) + 1 else int(s.minimum or 0) + 2)
    return {"bool": "false" if s.default else "true", "text": "other", "path": "/tmp/elsewhere",
            "list": "a,b", "names": "X-A", "networks": "10.0.0.0/8", "url": "redis://elsewhere:1",
            "level": "DEBUG", "choice": "true"}[s.kind]


@pytest.mark.parametrize("s", LOADED, ids=[s.name for s in LOADED])
def test_each_loader_reads_the_rows_name(s: Setting):
    assert loaded(s, {s.name: other_value(s)}) != loaded(s, {})


BOUNDED = [s for s in LOADED if s.kind in ("int", "float") and s.minimum is not None]


@pytest.mark.parametrize("s", BOUNDED, ids=[s.name for s in BOUNDED])
def test_each_loader_enforces_the_rows_bounds(s: Setting):
    low = s.minimum - (1 if s.kind == "int" else 0.01)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=s.name):
        loaded(s, {s.name: str(low)})
    loaded(s, {s.name: str(s.minimum)})
    if s.maximum is not None:
        with pytest.raises(ConfigError, match=s.name):
            loaded(s, {s.name: str(s.maximum + 1)})
        loaded(s, {s.name: str(s.maximum)})


def test_a_fallback_variable_is_the_default_and_validated_too():
    assert load_settings({"OTEL_BLRP_MAX_QUEUE_SIZE": "7"}).max_queue_size == 7
    assert load_settings({"OTEL_BLRP_MAX_QUEUE_SIZE": "7", "OTEL_REDIS_MAX_QUEUE_SIZE": "9"}).max_queue_size == 9
    with pytest.raises(ConfigError, match="OTEL_BLRP_MAX_QUEUE_SIZE"):
        load_settings({"OTEL_BLRP_MAX_QUEUE_SIZE": "x", "OTEL_REDIS_MAX_QUEUE_SIZE": "9"})


@pytest.mark.parametrize(("env", "message"), [
    ({"OTEL_REDIS_SHARDS": "257"}, "OTEL_REDIS_SHARDS='257' must be between 1 and 256"),
    ({"OTEL_REDIS_WRITER_NICE": "20"}, r"must be between 0 and 19 \(a niceness increment\)"),
    ({"OTEL_REDIS_CLUSTER": "maybe"}, "OTEL_REDIS_CLUSTER='maybe' must be auto, true or false"),
    ({"OTEL_REDIS_TRUSTED_PROXIES": "10.0.0.0/8,nope"}, "'nope' is not an IP address or CIDR network"),
    ({"OTEL_REDIS_DNS_TIMEOUT_S": "x"}, "OTEL_REDIS_DNS_TIMEOUT_S='x' is not a number"),
])
def test_messages_of_the_parsers(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_parsed_values():
    s = load_settings({"OTEL_REDIS_MASK_HEADERS": " X-One ,x-two,", "OTEL_REDIS_CLUSTER": "YES",
                       "LOG_RETENTION_STATS_DAYS": "2", "OTEL_REDIS_DATA_DIR": "/d", "OTEL_REDIS_TRUSTED_PROXIES": "10.1.2.3/8"})
    assert s.mask_headers == ("x-one", "x-two") and s.cluster == "true" and s.retention.stats == 2 * 86400
    assert s.data_dir == Path("/d") and s.trusted_proxies == ("10.0.0.0/8",)


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_every_otel_redis_name_the_docs_use_is_a_setting(page: Path):
    table = {s.name for s in SETTINGS} | RULE_NAMES
    names = set(NAME.findall(page.read_text(encoding="utf-8")))
    unknown = [n for n in names if (n not in table if not n.endswith("_") else not any(t.startswith(n) for t in table))]
    assert not unknown, f"{page.name} names variables that no code reads: {unknown}"
