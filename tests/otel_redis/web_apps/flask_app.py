"""A Flask app for the web-door tests: ``python -m tests.otel_redis.web_apps.flask_app PORT [instrument]``.

With ``instrument`` it calls ``otel_redis.configure()`` + ``instrument_app(app)``; without, it relies on
``opentelemetry-instrument`` (zero-code) or logs nothing (the benchmark's baseline).
"""

from __future__ import annotations

import os
import sys
import time

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> str:
    return "ok"


@app.get("/items/<int:item_id>")
def item(item_id: int) -> Response:
    request.environ["otel_redis.user_id"] = f"user-{item_id}"
    response = jsonify(item=item_id, name="widget")
    response.headers["X-Worker"] = str(os.getpid())  # which gunicorn worker answered
    return response


@app.get("/boom")
def boom() -> str:
    raise RuntimeError("kaput")


@app.get("/stream")
def stream() -> Response:
    def chunks():
        for i in range(3):
            yield f"chunk-{i}\n"

    return Response(chunks(), mimetype="text/plain")


@app.get("/held")
def held() -> Response:
    """A first chunk at once, the last one after ``?seconds=`` (a request still in flight at Ctrl-C)."""
    seconds = float(request.args.get("seconds", "0"))

    def chunks():
        yield "first\n"
        time.sleep(seconds)
        yield "last\n"

    return Response(chunks(), mimetype="text/plain")


if os.environ.get("WEB_APP_INSTRUMENT") == "1":
    import otel_redis
    from otel_redis.wsgi import instrument_app

    otel_redis.configure()
    instrument_app(app)


if __name__ == "__main__":
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=True)
