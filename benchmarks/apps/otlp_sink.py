"""A local OTLP/HTTP sink for the request benchmark: accepts any POST, answers 200 with an empty body."""

from __future__ import annotations


async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/x-protobuf"), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
