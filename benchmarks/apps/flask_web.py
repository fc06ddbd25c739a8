"""The minimal Flask app of the web benchmark; ``BENCH_VARIANT`` picks the instrumentation.

- ``plain``: no instrumentation (also the app that ``opentelemetry-instrument`` wraps for the
  zero-code rows, which set ``OTEL_TRACES_EXPORTER`` themselves);
- ``ours``: the documented default, ``otel_redis.configure()`` + ``instrument_app(app)``.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify

variant = os.environ.get("BENCH_VARIANT", "plain")
app = Flask(__name__)


@app.get("/items/<int:item_id>")
def item(item_id: int):
    return jsonify(id=item_id, ok=True)


@app.get("/healthz")
def healthz():
    return jsonify(ok=True)


if variant == "ours":
    import otel_redis

    otel_redis.configure()
    otel_redis.instrument_app(app)
