"""Filters by resource ``service.name`` (an index) and by attribute ``attr.<name>=<value>`` (a
bounded scan that says when it stopped early), through the real service, the real write path and
the CLI.

Records come in through the official OpenTelemetry SDK (one LoggerProvider per service, our
exporter behind it), with decoys of other services and other attribute values interleaved.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from otel_redis.exporter import RedisLogRecordExporter

from .conftest import READ_TOKEN, Stack

pytestmark = pytest.mark.xdist_group("query_api_service_attr")

#: the service's scan bound in this module: small, so the partial answer is reached with few records
SCAN_LIMIT = 40
SERVICE_ENV = {"OTEL_REDIS_ATTR_SCAN_LIMIT": str(SCAN_LIMIT)}

REQUEST = {"http.request.method": "GET", "http.response.status_code": 200, "url.path": "/pay",
           "client.address": "10.1.1.1", "http.server.response_time_ms": 4.0}


def emit(stack: Stack, service: str, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """``rows`` (body, attributes) as records of ``service`` through the SDK and our exporter."""
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(RedisLogRecordExporter(settings=stack.settings)))
    logger = provider.get_logger("filters-test")
    for body, attributes in rows:
        logger.emit(LogRecord(body=body, severity_number=SeverityNumber.INFO, severity_text="INFO", attributes=attributes))
    provider.shutdown()


@pytest.fixture(scope="module")
def data(stack: Stack) -> Iterator[Stack]:
    for n in range(6):  # interleaved: billing, its decoy shop, then a third service
        emit(stack, "billing", [(f"billing-{n}", {"tenant": "acme" if n % 2 else "globex", "n": n})])
        emit(stack, "shop", [(f"shop-{n}", {"tenant": "acme", "n": n})])
    emit(stack, "billing", [("billing-request", REQUEST)])
    emit(stack, "shop", [("shop-request", REQUEST)])
    yield stack


def bodies(page: dict[str, Any]) -> list[str]:
    return [r["body"] for r in page["records"]]


def get(stack: Stack, url: str, params: Any) -> dict[str, Any]:
    with stack.client() as c:
        response = c.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("url", ["/logs", "/logs/search"])
def test_service_filter_returns_that_service_only(data: Stack, url: str) -> None:
    page = get(data, url, {"service": "billing"})
    assert sorted(bodies(page)) == sorted([f"billing-{n}" for n in range(6)] + ["billing-request"])
    assert {r["resource"]["service.name"] for r in page["records"]} == {"billing"}
    assert page["partial"] is False and page["scanned"] is None
    assert get(data, url, {"service": "nobody"})["records"] == []


def test_service_index_holds_logs_and_requests(data: Stack) -> None:
    members = data.r.zrange("idx:service:billing", 0, -1)
    assert len(members) == 7
    assert sum(m.startswith("req:") for m in members) == 1


def test_service_combines_with_kind(data: Stack) -> None:
    page = get(data, "/logs", {"service": "shop", "kind": "request"})
    assert [r["resource"]["service.name"] for r in page["records"]] == ["shop"]
    assert page["records"][0]["kind"] == "request"


@pytest.mark.parametrize("url", ["/logs", "/logs/search"])
def test_attribute_filter_with_service_and_decoys(data: Stack, url: str) -> None:
    page = get(data, url, {"service": "billing", "attr.tenant": "acme"})
    assert bodies(page) == ["billing-1", "billing-3", "billing-5"]
    assert page["partial"] is False and page["scanned"] == 7  # the billing records, checked one by one


def test_attribute_values_compare_as_text_and_names_and(data: Stack) -> None:
    assert bodies(get(data, "/logs/search", {"attr.n": "4"})) == ["billing-4", "shop-4"]
    assert bodies(get(data, "/logs/search", {"attr.n": "4", "attr.tenant": "acme"})) == ["shop-4"]
    # several values of one name are alternatives
    assert bodies(get(data, "/logs/search", [("attr.n", "1"), ("attr.n", "2"), ("service", "shop")])) == ["shop-1", "shop-2"]
    assert get(data, "/logs/search", {"attr.tenant": "initech"})["records"] == []


def test_scan_stops_at_the_limit_and_says_partial(stack: Stack) -> None:
    # SCAN_LIMIT + 20 newer records without the attribute above one old match: the bounded scan
    # stops before reaching it, says so, and its cursor goes on from where it stopped
    emit(stack, "bulk", [("old-match", {"flag": "yes"})])
    emit(stack, "bulk", [(f"filler-{i}", {"flag": "no"}) for i in range(SCAN_LIMIT + 20)])
    page = get(stack, "/logs", {"service": "bulk", "attr.flag": "yes"})
    assert page["records"] == []
    assert page["partial"] is True and page["scanned"] == SCAN_LIMIT
    assert page["next_cursor"]
    rest = get(stack, "/logs", {"service": "bulk", "attr.flag": "yes", "cursor": page["next_cursor"]})
    assert bodies(rest) == ["old-match"]
    assert rest["partial"] is False and rest["scanned"] == 21


@pytest.mark.parametrize("params", [{"attr.": "x"}, {"attr. ": "x"}, {"attr.a": "x" * 600}])
def test_malformed_attribute_filter_is_a_422(data: Stack, params: dict[str, str]) -> None:
    with data.client() as c:
        response = c.get("/logs/search", params=params)
    assert response.status_code == 422, response.text
    assert "attr." in response.text


@pytest.mark.parametrize("name", ["atr.tenant", "attrs.tenant", "attr"])
def test_misspelt_attribute_prefix_is_still_unknown(data: Stack, name: str) -> None:
    with data.client() as c:
        response = c.get("/logs/search", params={name: "acme"})
    assert response.status_code == 422, response.text
    assert f"query.{name}: unknown query parameter" in response.json()["detail"]


def test_routes_without_attribute_filters_reject_them(data: Stack) -> None:
    with data.client() as c:
        response = c.get("/logs/errors", params={"attr.tenant": "acme"})
    assert response.status_code == 422, response.text


def test_cli_service_and_attr(data: Stack) -> None:
    cli = str(Path(sys.executable).parent / "otel-redis")
    env = {"PATH": "/usr/bin:/bin", "OTEL_REDIS_API_URL": data.base_url, "OTEL_REDIS_API_TOKEN": READ_TOKEN}
    done = subprocess.run([cli, "logs", "search", "--service", "billing", "--attr", "tenant=acme", "--json"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line.count('"billing-') for line in done.stdout.splitlines()] == [1, 1, 1]
    done = subprocess.run([cli, "logs", "recent", "--service", "shop", "--attr", "n=2"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "shop-2" in done.stdout and "shop-1" not in done.stdout, done.stderr
    bad = subprocess.run([cli, "logs", "search", "--attr", "novalue"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_services_past_the_bound_share_other_and_are_still_found(stack: Stack) -> None:
    """With OTEL_REDIS_MAX_SERVICES=1 in the writer, the second and third services are indexed
    under idx:service:_OTHER; a query by either still finds exactly its records."""
    settings = stack.settings.with_overrides(max_services=1)
    exporter = RedisLogRecordExporter(settings=settings)
    for service in ("first-svc", "second-svc", "third-svc"):
        provider = LoggerProvider(resource=Resource.create({"service.name": service}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        provider.get_logger("bound").emit(LogRecord(body=f"{service}-rec", severity_number=SeverityNumber.INFO))
        provider.force_flush()
    exporter.shutdown()
    assert stack.r.zcard("idx:service:_OTHER") == 2
    assert not stack.r.exists("idx:service:second-svc")
    assert bodies(get(stack, "/logs", {"service": "second-svc"})) == ["second-svc-rec"]
    assert bodies(get(stack, "/logs", {"service": "first-svc"})) == ["first-svc-rec"]
