"""Stopping uvicorn with SIGTERM loses no request record, with the export in process and in the
writer process.

uvicorn ends a SIGTERM shutdown by raising the signal again with its default action, which kills
the process before atexit handlers run; ``instrument_app`` flushes the pipeline when the app's
lifespan shutdown completes. The batch delay is a minute, so every record is still queued (or, with
the writer process, handed over and unanswered) when the signal arrives.
"""

from __future__ import annotations

import signal
import uuid

import httpx
import pytest

from otel_redis import schema
from otel_redis.store import trace_keys
from tests.servers import run_service, uvicorn_argv

pytestmark = pytest.mark.e2e  # starts uvicorn apps

PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize("writer_process", ["false", "true"])
def test_every_request_answered_before_sigterm_is_stored_once(redis_server, r, tmp_path, writer_process):
    env = {
        "REDIS_URL": redis_server.url,
        "OTEL_REDIS_BATCH_DELAY_MS": "60000",
        "OTEL_REDIS_WRITER_PROCESS": writer_process,
        "OTEL_SERVICE_NAME": "stop-test",
    }
    traces = [uuid.uuid4().hex for _ in range(40)]
    with run_service(uvicorn_argv("tests.otel_redis.request_app:app"), env=env,
                     tmp_path=tmp_path, name="stop-test") as service:
        with httpx.Client(timeout=10) as client:
            for trace in traces:
                answer = client.get(f"{service.base_url}/items", headers={"traceparent": f"00-{trace}-{PARENT}-01"})
                assert answer.status_code == 200
        service.stop(signal.SIGTERM)
        output = service.output()
    stored = {t: [k for k in trace_keys(r, t) if schema.is_request_key(k)] for t in traces}
    missing = [t for t, keys in stored.items() if len(keys) != 1]
    assert not missing, f"{len(missing)} of {len(traces)} requests not stored exactly once; server output:\n{output}"
