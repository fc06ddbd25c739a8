"""Zero-code request logging: ``opentelemetry-instrument`` with ``OTEL_TRACES_EXPORTER=redis`` in front
of Flask, Django and FastAPI apps that never call otel_redis (real servers, real HTTP, real Redis)."""

from __future__ import annotations

import sys

import pytest

from tests.otel_redis.web_apps.check import (
    by_path, check_error_record, check_item_record, check_totals, instrument_argv, serve, standard_requests,
    stop_gracefully, wait_records, zero_code_env,
)

pytestmark = [pytest.mark.xdist_group("web-zero-code"), pytest.mark.e2e]


def run_zero_code(argv: list[str], redis_url: str, tmp_path, name: str, exporters: str = "redis"):
    env = zero_code_env(redis_url, name, exporters)
    with serve(instrument_argv(*argv), env, tmp_path, name) as svc:
        responses = standard_requests(svc.base_url)
        stop_gracefully(svc)
    return responses, svc


def check_zero_code(r, responses, svc, route: str, service: str, sizes_known: bool = False) -> None:
    recs = wait_records(r, 3)
    assert len(recs) == 3, (recs, r.keys("*"), svc.output()[-3000:])  # /healthz (the readiness probe) is excluded
    paths = by_path(recs)
    key, rec = paths["/items/42"]
    check_item_record(r, key, rec, route, responses["item"].content, user_id=None, service=service,
                     sizes_known=sizes_known)
    check_error_record(r, *paths["/boom"])
    assert paths["/nope"][1]["status_code"] == "404"
    check_totals(r, recs, 3)


def test_flask_under_opentelemetry_instrument(r, redis_url, tmp_path):
    responses, svc = run_zero_code([sys.executable, "-m", "tests.otel_redis.web_apps.flask_app", "{port}"],
                                   redis_url, tmp_path, "zero-flask")
    assert responses["item"].status_code == 200 and responses["boom"].status_code == 500
    check_zero_code(r, responses, svc, "/items/<int:item_id>", "zero-flask")


def test_django_under_opentelemetry_instrument(r, redis_url, tmp_path):
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.otel_redis.web_apps.django_site")
    responses, svc = run_zero_code(
        [sys.executable, "-m", "gunicorn", "-w", "1", "-b", "127.0.0.1:{port}",
         "tests.otel_redis.web_apps.django_wsgi:application"], redis_url, tmp_path, "zero-django")
    assert responses["item"].status_code == 200 and responses["boom"].status_code == 500
    check_zero_code(r, responses, svc, "/items/<int:item_id>", "zero-django")



def test_redis_and_otlp_exporters_together_keep_traces_flowing(r, redis_url, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    )

    spans: list[str] = []

    class TraceSink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            request = ExportTraceServiceRequest.FromString(raw)
            spans.extend(s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans)
            body = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    sink = ThreadingHTTPServer(("127.0.0.1", 0), TraceSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        env = {**zero_code_env(redis_url, "zero-both", "redis,otlp"),
               "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{sink.server_port}/v1/traces"}
        with serve(instrument_argv(sys.executable, "-m", "tests.otel_redis.web_apps.flask_app", "{port}"), env,
                   tmp_path, "zero-both") as svc:
            responses = standard_requests(svc.base_url)
            stop_gracefully(svc)
    finally:
        sink.shutdown()
        sink.server_close()
    check_zero_code(r, responses, svc, "/items/<int:item_id>", "zero-both")
    # every request's server span reached the collector too (the readiness probe's included)
    assert sorted(n for n in spans if n != "GET /healthz") == ["GET /boom", "GET /items/<int:item_id>", "GET /nope"]


def test_fastapi_under_opentelemetry_instrument(r, redis_url, tmp_path):
    responses, svc = run_zero_code(
        [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}",
         "tests.otel_redis.web_apps.fastapi_app:app"], redis_url, tmp_path, "zero-fastapi")
    assert responses["item"].status_code == 200 and responses["boom"].status_code == 500
    check_zero_code(r, responses, svc, "/items/{item_id}", "zero-fastapi")
