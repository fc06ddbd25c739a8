"""GET /logs/stream: live follow over SSE, exact resume with Last-Event-ID, filters."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from typing import Any, Iterator

import httpx
import orjson
import pytest

from otel_redis import api
from otel_redis.levels import ERROR, INFO, WARNING

from query_api.routers.stream import parse_position

from .conftest import READ_TOKEN, Stack, emit_request

pytestmark = pytest.mark.xdist_group("query_api_stream")

WAIT_S = 20.0  # generous upper bound for a record to arrive; a passing run takes milliseconds


class SSE:
    """Reads one SSE response with httpx's async client on its own loop thread; events go to a
    queue as (id, record). Closing cancels the read, which closes the connection at once."""

    def __init__(self, stack: Stack, params: dict[str, Any] | None = None, last_id: str | None = None) -> None:
        self.headers = {"Authorization": f"Bearer {READ_TOKEN}"}
        if last_id:
            self.headers["Last-Event-ID"] = last_id
        self.base_url = stack.base_url
        self.params = params or {}
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.ready = threading.Event()
        self.position = ""
        self.failure: BaseException | None = None
        self.loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        assert self.ready.wait(WAIT_S), f"no ': ready' comment ({self.failure!r})"

    async def _start(self) -> None:
        self._task = asyncio.current_task()
        try:
            await self._read()
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by the waiting test
            self.failure = exc
            self.ready.set()

    async def _read(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(60.0, connect=10.0)) as client:
            async with client.stream("GET", "/logs/stream", params=self.params, headers=self.headers) as resp:
                assert resp.status_code == 200, await resp.aread()
                assert resp.headers["content-type"].startswith("text/event-stream")
                event_id, data = "", []
                async for line in resp.aiter_lines():
                    if line.startswith(": ready "):
                        self.position = line[len(": ready ") :]
                        self.ready.set()
                    elif line.startswith("id: "):
                        event_id = line[4:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line == "" and data:
                        self.events.put((event_id, orjson.loads("\n".join(data))))
                        event_id, data = "", []

    def take(self, n: int) -> list[tuple[str, dict[str, Any]]]:
        return [self.events.get(timeout=WAIT_S) for _ in range(n)]

    def until(self, body: str) -> list[tuple[str, dict[str, Any]]]:
        """Every event up to and including the record with ``body``."""
        out = []
        while True:
            item = self.events.get(timeout=WAIT_S)
            out.append(item)
            if item[1]["body"] == body:
                return out

    def close(self) -> None:
        if self.loop.is_closed():
            return
        if self._task is not None:
            self.loop.call_soon_threadsafe(self._task.cancel)
        try:
            self._future.result(timeout=WAIT_S)
        except (asyncio.CancelledError, concurrent.futures.CancelledError):
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=WAIT_S)
        self.loop.close()


@pytest.fixture
def sse_factory(writer: Stack) -> Iterator[Any]:
    opened: list[SSE] = []

    def make(**kw: Any) -> SSE:
        s = SSE(writer, **kw)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def _emit_mixed(prefix: str, n: int) -> list[str]:
    bodies = []
    for i in range(n):
        body = f"{prefix}-{i}"
        if i % 3 == 2:
            emit_request(body, method="GET", path=f"/items/{i}", status_code=200, client_ip="10.1.1.1",
                         proxy_hostname="api.example.com")
        else:
            api.log_info(body, component="sse")
        bodies.append(body)
    return bodies


def test_delivers_records_written_after_connecting(writer, sse_factory):
    api.log_info("before-connect", component="sse")
    writer.flush()
    sse = sse_factory()
    bodies = _emit_mixed("live", 9)
    writer.flush()
    got = sse.take(9)
    assert sorted(r["body"] for _id, r in got) == sorted(bodies)
    # each stream's records arrive in the order they were written
    for kind in ("log", "request"):
        assert [r["body"] for _i, r in got if r["kind"] == kind] == [
            b for b in bodies if (int(b.rsplit("-", 1)[1]) % 3 == 2) == (kind == "request")
        ]
    assert all(r["id"].startswith(("log:", "req:")) for _i, r in got)
    ids = [i for i, _r in got]
    assert all("," in i for i in ids) and len(set(ids)) == len(ids)


def test_reconnect_with_last_event_id_loses_and_repeats_nothing(writer, sse_factory):
    first = sse_factory()
    part_a = _emit_mixed("a", 12)
    writer.flush()
    got_a = first.take(12)
    assert sorted(r["body"] for _i, r in got_a) == sorted(part_a)
    resume_id = got_a[4][0]
    seen = [r["body"] for _i, r in got_a[:5]]
    first.close()

    part_b = _emit_mixed("b", 12)  # written while no one is connected
    writer.flush()
    second = sse_factory(last_id=resume_id)
    api.log_info("sentinel", component="sse")
    writer.flush()
    rest = [r["body"] for _i, r in second.until("sentinel")]
    assert len(rest) == len(set(rest)), "a record was delivered twice"
    assert sorted(seen + rest) == sorted(part_a + part_b + ["sentinel"])


def test_resume_position_can_also_be_a_query_parameter(writer, sse_factory):
    first = sse_factory()
    api.log_info("q-1", component="sse")
    writer.flush()
    (event_id, _rec), = first.take(1)
    first.close()
    api.log_info("q-2", component="sse")
    writer.flush()
    second = sse_factory(params={"last_event_id": event_id})
    assert second.take(1)[0][1]["body"] == "q-2"


def test_filters_event_level_hostname(writer, sse_factory):
    sse = sse_factory(params={"level": "error", "hostname": "api.example.com"})
    api.log_at(ERROR, "skip-other-host", component="sse", hostname="auth.example.com")
    api.log_at(WARNING, "skip-warning", component="sse", hostname="api.example.com")
    api.log_at(ERROR, "keep-1", component="sse", hostname="api.example.com")
    api.log_at(INFO, "skip-info", component="sse")
    # a request has the level its status maps to (INFO below 400, WARNING 4xx, ERROR 5xx), as in queries
    emit_request("keep-request", method="GET", path="/boom", status_code=500, client_ip="10.1.1.1",
                 proxy_hostname="api.example.com", level=ERROR)
    emit_request("skip-404", method="GET", path="/nope", status_code=404, client_ip="10.1.1.1",
                 proxy_hostname="api.example.com", level=WARNING)
    emit_request("keep-503-sent-as-info", method="GET", path="/down", status_code=503, client_ip="10.1.1.1",
                 proxy_hostname="api.example.com", level=INFO)  # the status decides, not the level it came with
    emit_request("skip-500-other-host", method="GET", path="/boom", status_code=500, client_ip="10.1.1.1",
                 proxy_hostname="auth.example.com", level=ERROR)
    api.log_at(ERROR, "keep-2", component="sse", hostname="api.example.com")
    writer.flush()
    got = [r["body"] for _i, r in sse.take(4)]  # one batch: logs and requests interleave by stream id
    assert sorted(got) == ["keep-1", "keep-2", "keep-503-sent-as-info", "keep-request"]
    assert got.index("keep-1") < got.index("keep-2")

    by_event = sse_factory(params={"event": "deploy"})
    api.log_event("other", {"x": 1})
    api.log_event("deploy", {"version": "1.2"})
    writer.flush()
    (_id, rec), = by_event.take(1)
    assert rec["event"] == "deploy" and rec["attributes"]["version"] == "1.2"


def test_source_filter_matches_component_or_hostname_at_a_word_boundary(writer, sse_factory):
    sse = sse_factory(params={"source": "api"})
    api.log_info("keep-component", component="api")
    api.log_info("skip-apiary", component="apiary")
    api.log_info("keep-component-prefix", component="api_server")
    api.log_info("skip-worker", component="worker", hostname="www.example.com")
    api.log_info("keep-log-hostname", component="worker", hostname="api.example.com")
    emit_request("keep-request-host", method="GET", path="/", status_code=200, client_ip="10.1.1.1",
                 proxy_hostname="api.example.com")
    emit_request("skip-request-host", method="GET", path="/", status_code=200, client_ip="10.1.1.1",
                 proxy_hostname="apiary.example.com")
    api.log_info("keep-last", component="api-gateway")
    writer.flush()
    got = [r["body"] for _i, r in sse.take(5)]  # one batch: logs and requests interleave by stream id
    assert sorted(got) == ["keep-component", "keep-component-prefix", "keep-last", "keep-log-hostname",
                           "keep-request-host"]
    assert sse.events.empty()


def test_a_standard_client_takes_the_start_position_as_its_last_event_id(writer):
    """httpx-sse (a standard SSE client): the opening block is an id without data, so a client that
    drops before its first record and reconnects with its last event id gets what was written meanwhile."""
    from httpx_sse import connect_sse

    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    params = {"event": "std_client"}
    with httpx.Client(base_url=writer.base_url, timeout=httpx.Timeout(WAIT_S, connect=10.0)) as client:
        with connect_sse(client, "GET", "/logs/stream", params=params, headers=headers) as source:
            opening = next(source.iter_sse())
        assert opening.data == "" and opening.retry == 2000  # no record: EventSource dispatches nothing
        start = opening.id
        assert start and parse_position(start)
        api.log_event("std_client", {"n": 1}, message="written-while-away")  # the client is gone
        writer.flush()
        with connect_sse(client, "GET", "/logs/stream", params=params,
                         headers={**headers, "Last-Event-ID": start}) as source:
            events = source.iter_sse()
            resumed = next(events)
            assert resumed.data == "" and resumed.id == start  # the server starts where the client was
            record = next(e for e in events if e.data)
    assert orjson.loads(record.data)["body"] == "written-while-away"
    assert record.id != start


@pytest.mark.parametrize("bad", ["x", "1-0", "1-0,", "1-0,2", "abc,def", "1-0,2-0,3-0"])
def test_malformed_last_event_id_is_422(stack, bad):
    with stack.client() as c:
        resp = c.get("/logs/stream", headers={"Last-Event-ID": bad})
        assert resp.status_code == 422 and "Last-Event-ID" in resp.json()["detail"]
        resp = c.get("/logs/stream", params={"last_event_id": bad})
        assert resp.status_code == 422


def test_stream_needs_a_token(stack):
    with httpx.Client(base_url=stack.base_url) as c:
        assert c.get("/logs/stream").status_code == 401
        assert c.get("/logs/stream", params={"level": "LOUD"}, headers={"Authorization": "Bearer x"}).status_code == 401
    with stack.client() as c:
        assert c.get("/logs/stream", params={"level": "LOUD"}).status_code == 422
