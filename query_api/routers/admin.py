"""POST /logs/test (emit through the real pipeline, read back) and DELETE /logs (admin only)."""

from __future__ import annotations

import asyncio
import secrets
import time

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request

import otel_redis
from otel_redis import api, console_cache, pipeline, query, query_stats
from otel_redis.clear import clear_owned
from otel_redis.levels import ERROR, INFO, NAME_TO_LEVEL, WARNING
from otel_redis.record import entry_to_dict, normalize_trace_id

from .. import deps
from ..auth import require_admin
from ..models import ClearResult, Problem, TestResult
from ..respond import JSONBytes

router = APIRouter(prefix="/logs", tags=["admin"])

TEST_COMPONENT = "logs-test"
READ_BACK_TIMEOUT_S = 5.0


@router.post("/test", summary="Emit test records through the real pipeline and read them back",
             response_model=TestResult, response_class=JSONBytes,
             responses={503: {"model": Problem, "description": "Redis unavailable, or no pipeline in this process"}})
async def logs_test(request: Request) -> JSONBytes:
    current = pipeline.current()
    if current is None:
        raise HTTPException(
            status_code=503,
            detail="the logging pipeline is not configured in this process (run the service with `otel-redis serve`)",
        )
    marker = f"logs-test-{secrets.token_hex(8)}"
    gate = NAME_TO_LEVEL[current.settings.log_level]
    started = time.perf_counter()
    calls = [
        (INFO, lambda: api.log_info("logs test: info", component=TEST_COMPONENT, trace_id=marker, test_id=marker)),
        (WARNING, lambda: api.log_warning("logs test: warning", component=TEST_COMPONENT, trace_id=marker,
                                          test_id=marker)),
        (ERROR, lambda: api.log_error("logs test: error", component=TEST_COMPONENT, trace_id=marker, test_id=marker)),
        (INFO, lambda: api.log_event("logs_test", {"test_id": marker}, component=TEST_COMPONENT, trace_id=marker)),
    ]
    emitted = 0
    for level, call in calls:
        call()
        emitted += level >= gate
    await anyio.to_thread.run_sync(lambda: otel_redis.force_flush(int(READ_BACK_TIMEOUT_S * 1000)))
    client = deps.redis_client(request)
    group = query.group_trace(normalize_trace_id(marker), deps.settings_of(request).retention.requests)
    since = int(time.time() * 1000) - 3_600_000
    deadline = time.monotonic() + READ_BACK_TIMEOUT_S
    while True:
        page = await query.search(client, [group], since_ms=since, limit=100)
        if len(page.records) >= emitted or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    found = len(page.records)
    return JSONBytes(
        {
            "ok": found == emitted and emitted > 0,
            "emitted": emitted,
            "found": found,
            "trace_id": marker,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
            "records": [entry_to_dict(k, e) for k, e in page.records],
        }
    )


@router.delete("", summary="Delete every log record, index, stream and statistic this system wrote (admin)",
               response_model=ClearResult, response_class=JSONBytes, dependencies=[Depends(require_admin)],
               responses={403: {"model": Problem, "description": "a read token: this needs the admin token"}})
async def clear(request: Request) -> JSONBytes:
    removed = await clear_owned(deps.redis_client(request))
    query_stats.forget_cached()
    console_cache.clear()
    current = pipeline.current()
    if current is not None and current.exporter is not None:
        current.exporter.store.forget_refreshes()
    return JSONBytes({"removed": sum(removed.values()), "by_pattern": removed})
