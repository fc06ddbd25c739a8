"""``/metrics`` sums the workers of a prefork server: a Flask app under gunicorn with 2 workers
(forked after import, each counting its own records) publishes each worker's counters in Redis,
and the real ``otel-redis serve`` on the same Redis reports their total and each worker's share."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import httpx
import pytest

from otel_redis import schema
from tests.otel_redis.web_apps.check import serve, stop_gracefully
from tests.servers import run_service

pytestmark = pytest.mark.xdist_group("metrics-prefork")

TOKEN = "metrics-prefork-token"
_SAMPLE = re.compile(r'^(otel_redis_\w+?)(?:\{(.*)\})? (\S+)$')


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def per_process(text: str, counter: str) -> dict[str, float]:
    return {lab["process"]: v for name, lab, v in samples(text)
            if name == "otel_redis_process_records_total" and lab.get("counter") == counter}


def total(text: str, name: str) -> float:
    return next(v for n, lab, v in samples(text) if n == name and not lab)


def test_metrics_of_one_process_sum_every_worker(r, redis_url, tmp_path: Path) -> None:
    app_env = {"REDIS_URL": redis_url, "WEB_APP_INSTRUMENT": "1", "OTEL_SERVICE_NAME": "prefork",
               "OTEL_REDIS_BATCH_DELAY_MS": "10", "OTEL_REDIS_COUNTERS_PUBLISH_S": "0.2"}
    argv = [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-b", "127.0.0.1:{port}",
            "tests.otel_redis.web_apps.flask_app:app"]
    serve_env = {"REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "serve-data"),
                 "OTEL_REDIS_API_TOKENS": TOKEN, "OTEL_REDIS_CLEANUP_INTERVAL_S": "0",
                 "OTEL_REDIS_ALERTS_ENABLED": "false", "LOG_LEVEL": "WARNING"}
    serve_argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
    with serve(argv, app_env, tmp_path, "prefork-app") as app, \
            run_service(serve_argv, env=serve_env, tmp_path=tmp_path, name="prefork-serve") as api:
        pids: set[str] = set()
        with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as c:
            for i in range(60):
                pids.add(c.get(f"{app.base_url}/items/{i}").headers["x-worker"])
        assert len(pids) == 2, pids  # both workers answered
        deadline = time.monotonic() + 30
        with httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as c:
            while True:
                text = c.get("/metrics").text
                stored = r.zcard(schema.IDX_REQ_ALL)
                workers = {p: v for p, v in per_process(text, "exported").items() if p.split(":")[-1] in pids}
                if (len(workers) == 2 and sum(workers.values()) == stored >= 60) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        assert len(workers) == 2 and all(v > 0 for v in workers.values()), workers
        assert sum(workers.values()) == stored  # every stored request record, counted by the worker that wrote it
        emitted = per_process(text, "emitted")
        assert total(text, "otel_redis_records_exported_total") == sum(per_process(text, "exported").values())
        assert total(text, "otel_redis_records_emitted_total") == sum(emitted.values())
        assert total(text, "otel_redis_records_emitted_total") >= sum(emitted[p] for p in workers)
        stop_gracefully(app)
    # the workers' hashes expire by themselves (TTL two publish intervals; -2: already gone)
    ttls = [r.ttl(schema.pipeline_counters(p)) for p in workers]
    assert all(t == -2 or 0 <= t <= 2 for t in ttls), ttls
