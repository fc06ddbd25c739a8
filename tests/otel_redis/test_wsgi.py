"""``instrument_app`` on a Flask app under gunicorn with 2 workers forked after import (real HTTP, real
Redis): every worker's records stored, every schema field, errors, streaming, one record per request."""

from __future__ import annotations

import sys

import httpx
import pytest

from tests.otel_redis.web_apps.check import (
    by_path, check_error_record, check_item_record, check_totals, instrument_argv, serve, standard_requests,
    stop_gracefully, wait_records, zero_code_env,
)

pytestmark = [pytest.mark.xdist_group("web-wsgi"), pytest.mark.e2e]


def gunicorn_argv(app: str, workers: int = 2) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--preload", "-w", str(workers), "-b", "127.0.0.1:{port}", app]


def env_for(redis_url: str, name: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "WEB_APP_INSTRUMENT": "1", "OTEL_SERVICE_NAME": name,
            "OTEL_REDIS_BATCH_DELAY_MS": "10", "OTEL_REDIS_TRUSTED_PROXIES": "127.0.0.1/32"}


def test_flask_instrument_app_under_gunicorn_two_workers(r, redis_url, tmp_path):
    with serve(gunicorn_argv("tests.otel_redis.web_apps.flask_app:app"), env_for(redis_url, "wsgi-flask"),
               tmp_path, "wsgi-flask") as svc:
        responses = standard_requests(svc.base_url)
        with httpx.Client(timeout=10) as c:
            streamed = c.get(svc.base_url + "/stream")
            pids = {c.get(svc.base_url + f"/items/{i}").headers.get("x-worker", "") for i in range(40)}
        stop_gracefully(svc)
    assert streamed.text == "chunk-0\nchunk-1\nchunk-2\n"
    recs = wait_records(r, 3 + 1 + 40)
    check_totals(r, recs, 44)
    paths = {rec["path"]: (key, rec) for key, rec in recs.items()}
    key, rec = next((k, v) for k, v in recs.items() if v["path"] == "/items/42" and v.get("query"))
    check_item_record(r, key, rec, "/items/<int:item_id>", responses["item"].content, service="wsgi-flask",
                     route_count=41)
    check_error_record(r, *paths["/boom"])
    assert paths["/nope"][1]["status_code"] == "404"
    assert int(paths["/stream"][1]["bytes_sent"]) == len(streamed.content)
    assert len(pids - {""}) == 2, pids  # both workers answered, and both workers' records are stored


def test_django_middleware_under_gunicorn(r, redis_url, tmp_path):
    with serve(gunicorn_argv("tests.otel_redis.web_apps.django_wsgi:application", 1),
               env_for(redis_url, "wsgi-django"), tmp_path, "wsgi-django") as svc:
        responses = standard_requests(svc.base_url)
        stop_gracefully(svc)
    recs = wait_records(r, 3)
    paths = by_path(recs)
    key, rec = paths["/items/42"]
    check_item_record(r, key, rec, "/items/<int:item_id>", responses["item"].content, service="wsgi-django")
    check_error_record(r, *paths["/boom"])
    check_totals(r, recs, 3)


@pytest.mark.parametrize("logs_exporter", ["none", "redis"])
def test_instrument_app_and_opentelemetry_instrumentation_give_one_record_per_request(
    r, redis_url, tmp_path, logs_exporter
):
    """The app calls configure() itself under OTEL_TRACES_EXPORTER=redis. With OTEL_LOGS_EXPORTER=none
    that configure() once replaced the span door's pipeline with one storing nothing: no record at all."""
    env = {**zero_code_env(redis_url, "both"), "WEB_APP_INSTRUMENT": "1", "OTEL_LOGS_EXPORTER": logs_exporter}
    with serve(instrument_argv(sys.executable, "-m", "tests.otel_redis.web_apps.flask_app", "{port}"), env,
               tmp_path, "both") as svc:
        standard_requests(svc.base_url)
        stop_gracefully(svc)
    recs = wait_records(r, 4, timeout=3)
    assert sorted(rec["path"] for rec in recs.values()) == ["/boom", "/items/42", "/nope"]
