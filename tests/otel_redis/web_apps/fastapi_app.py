"""A FastAPI app without ``instrument_app``: zero-code request logging comes from the span exporter."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
def healthz() -> str:
    return "ok"


@app.get("/items/{item_id}")
def item(item_id: int) -> dict[str, object]:
    return {"item": item_id, "name": "widget"}


@app.get("/boom")
def boom() -> str:
    raise RuntimeError("kaput")
