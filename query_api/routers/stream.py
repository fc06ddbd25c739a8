"""GET /logs/stream: live follow as Server-Sent Events, built on XREAD BLOCK over both streams.

Event ids are a *multi-stream position*: ``<stream:logs id>,<stream:requests id>``, for example
``1718000000000-0,1718000000123-4``: the last entry of each stream that the server has passed
(delivered or filtered out) when it sent the event. A client that reconnects with that id in
``Last-Event-ID`` (or ``?last_event_id=``) resumes with XREAD from exactly those positions, so it
gets every later record once: nothing lost (while the streams still hold it) and nothing repeated.
Without an id the stream starts at the current end of both streams: records written after
connecting. The first block, sent once the position is fixed, is ``retry: 2000``, a
``: ready <position>`` comment and ``id: <position>`` without data: standard clients (EventSource,
httpx-sse) take the id as their last event id without dispatching an event, so one that
reconnects before its first record arrives still resumes where the server started reading. Idle
connections get a ``: keepalive`` comment every 15 s. When the server shuts down, each stream ends
with ``event: shutdown`` (its ``id`` is the position to resume from) within one read (at most 1 s).

On a Redis Cluster each stream is split into S parts (docs/cluster.md): the position then lists
the last id of every part, the S parts of ``stream:logs`` then the S of ``stream:requests`` (the
order of ``schema.sharded``), so order within each part and exact resume are kept. Each part is
read with its own XREAD (a multi-key XREAD would span slots), without blocking, in one pipeline.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any, AsyncIterator, Callable

import redis
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from otel_redis import levels, query, schema
from otel_redis.record import LogEntry, dumps, entry_to_dict

from .. import deps
from ..deps import MAX_VALUE

router = APIRouter(prefix="/logs", tags=["stream"])

STREAMS = (schema.STREAM_LOGS, schema.STREAM_REQUESTS)
_ID = schema.STREAM_ID
READ_COUNT = 500
KEEPALIVE_S = 15.0
#: a cluster poll with nothing new waits this long before the next (standalone XREAD blocks)
CLUSTER_POLL_S = 0.1
#: longest position: one id (at most 41 characters and a comma) per part of the two streams
MAX_POSITION = 2 * schema.MAX_SHARDS * 42


def parse_position(text: str, shards: int = 1) -> dict[str, str]:
    parts = schema.stream_parts(shards)
    ids = text.strip().split(",")
    if len(ids) != len(parts) or not all(_ID.fullmatch(i) for i in ids):
        expected = "'<stream:logs id>,<stream:requests id>'" if shards == 1 else f"{len(parts)} stream ids"
        deps.bad_input("header", "Last-Event-ID", f"must be {expected} as sent in an event id")
    return dict(zip(parts, ids))


def format_position(pos: dict[str, str]) -> str:
    return ",".join(pos.values())


async def current_position(client: Any, shards: int = 1) -> dict[str, str]:
    parts = schema.stream_parts(shards)
    pipe = client.pipeline(transaction=False)
    for stream in parts:
        pipe.xrevrange(stream, "+", "-", count=1)
    out = {}
    for stream, rows in zip(parts, await pipe.execute()):
        out[stream] = _text(rows[0][0]) if rows else "0-0"
    return out


async def read_new(client: Any, pos: dict[str, str], block_ms: int, shards: int) -> list[Any]:
    """``[(stream, entries), ...]`` after ``pos``: one blocking XREAD over both streams on a
    standalone Redis; on a cluster layout one XREAD per part in a pipeline, then a short pause
    when nothing was new."""
    if shards == 1:
        return list(await client.xread(dict(pos), count=READ_COUNT, block=block_ms) or [])
    pipe = client.pipeline(transaction=False)
    for stream, sid in pos.items():
        pipe.xread({stream: sid}, count=READ_COUNT)
    rows = [row for reply in await pipe.execute() for row in (reply or [])]
    if not rows:
        await asyncio.sleep(min(CLUSTER_POLL_S, block_ms / 1000))
    return rows


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_key(sid: str) -> tuple[int, int]:
    return schema.parse_stream_id(sid)


#: what may follow a source name inside a longer component or hostname (``api`` -> ``api_server``)
SOURCE_SEPARATORS = (".", "_", "-", ":")


def source_matches(source: str, value: str) -> bool:
    """``value`` (a component or hostname) is ``source`` or starts with it at a word boundary."""
    return value == source or (value.startswith(source) and value[len(source) : len(source) + 1] in SOURCE_SEPARATORS)


def _matcher(
    event: str | None, level: str | None, hostname: str | None, source: str | None = None
) -> Callable[[LogEntry], bool]:
    def match(entry: LogEntry) -> bool:
        if event is not None and entry.event != event:
            return False
        if source is not None and not (
            source_matches(source, entry.component) or source_matches(source, entry.index_value("host"))
        ):
            return False
        if level is not None:  # as in every query: a request has the level its status maps to
            req = entry.request
            if (entry.level if req is None else levels.request_level(req.status_code)) != level:
                return False
        if hostname is not None and entry.index_value("host") != hostname:
            return False
        return True

    return match


async def follow(request: Request, pos: dict[str, str], match: Any, shards: int = 1) -> AsyncIterator[bytes]:
    client = deps.redis_client(request)
    settings = deps.settings_of(request)
    block_ms = max(50, min(1000, int(settings.socket_timeout_s * 500)))
    start = format_position(pos)
    yield f"retry: 2000\n: ready {start}\nid: {start}\n\n".encode()
    idle = 0.0
    while True:
        if deps.stopping(request):
            # the server is stopping: say so, with the position to resume from, and end the response
            yield (f"event: shutdown\nid: {format_position(pos)}\n"
                   'data: {"reason":"the server is shutting down"}\n\n').encode()
            return
        try:
            rows = await read_new(client, pos, block_ms, shards)
        except redis.RedisError as exc:
            yield f": redis unavailable ({type(exc).__name__}), retrying\n\n".encode()
            await asyncio.sleep(1.0)
            continue
        if not rows:
            if await request.is_disconnected():
                return  # the client went away while nothing was written
            idle += block_ms / 1000 if shards == 1 else CLUSTER_POLL_S
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield b": keepalive\n\n"
            continue
        idle = 0.0
        items: list[tuple[tuple[int, int], str, str, str]] = []
        for stream, entries in rows:
            name = _text(stream)
            for sid, fields in entries:
                sid_text = _text(sid)
                items.append((_id_key(sid_text), name, sid_text, schema.stream_record_key(fields) or ""))
        items.sort()
        try:
            records = dict(await query.fetch(client, [key for *_rest, key in items if key]))
        except redis.RedisError:
            await asyncio.sleep(0.2)
            continue  # positions not advanced: the same entries are read again
        out = []
        for _order, name, sid, key in items:
            pos[name] = sid
            entry = records.get(key)
            if entry is None or not match(entry):
                continue
            out.append(b"id: " + format_position(pos).encode() + b"\ndata: " + dumps(entry_to_dict(key, entry)) + b"\n\n")
        if out:
            yield b"".join(out)


@router.get(
    "/stream",
    summary="Live follow (Server-Sent Events); resume exactly with Last-Event-ID",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "an event per record: id + JSON record"}},
)
async def stream(
    request: Request,
    event: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
    level: Annotated[str | None, Query(max_length=32)] = None,
    hostname: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
    source: Annotated[
        str | None,
        Query(
            max_length=MAX_VALUE,
            description="records whose component or proxy hostname is this name or starts with it followed by "
            ". _ - or : (api matches api_server and api.example.com)",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None, Query(max_length=MAX_POSITION, description="same as the Last-Event-ID header")
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=MAX_POSITION)] = None,
) -> StreamingResponse:
    lvl = deps.check_level("query", "level", level) if level else None
    given = last_event_id_header or last_event_id
    shards = await deps.shard_count(request)
    pos = parse_position(given, shards) if given else await current_position(deps.redis_client(request), shards)
    return StreamingResponse(
        follow(request, pos, _matcher(event or None, lvl, hostname or None, source or None), shards),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
