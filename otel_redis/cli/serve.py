"""``otel-redis serve``: the query API (and, with --demo, a demo emitting logs and showing them read back).

The pipeline, redis-py and the store are imported by the functions that run them, so that building
the ``otel-redis`` parser (every command does) stays cheap.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from typing import Any, Callable

from ..config import load_settings
from . import CliError
from .collector import add_receiver_flags, receiver_settings, start_receiver


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run the query API on Redis (embedded unless REDIS_URL is set)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port of the query API (default 8080)")
    p.add_argument("--demo", action="store_true", help="emit demo records and print them as they are read back")
    p.add_argument("--demo-interval", type=float, default=0.5, help="seconds between demo records (default 0.5)")
    add_receiver_flags(p)
    p.add_argument("--no-otlp", action="store_true", help="do not run the OTLP receiver beside the query API")
    p.add_argument(
        "--forward",
        metavar="URL",
        help="also forward stored records to this upstream OTLP endpoint (default: when "
        "OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is set)",
    )
    p.add_argument("--no-forward", action="store_true", help="do not forward, even with OTEL_EXPORTER_OTLP_* set")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from query_api.app import create_app
    from query_api.background import check_config

    from .. import pipeline
    from ..connection import resolve_url

    settings = load_settings()
    check_config()
    otlp_config = receiver_settings(args, disabled=args.no_otlp)
    upstream_env = forward_env(args)
    api_sock = _bind_api(args.host, args.port)
    url = resolve_url(settings)
    where = "external" if settings.redis_url else f"embedded, data in {settings.data_dir.resolve()}"
    print(f"otel-redis: Redis at {url} ({where})", file=sys.stderr, flush=True)
    try:
        _check_redis(settings, url)
    except CliError:
        api_sock.close()
        raise
    pipeline.configure(settings=settings)
    try:
        receiver = start_receiver(settings, otlp_config, args.host)
    except CliError:
        api_sock.close()
        pipeline.shutdown()
        raise
    if receiver.http_port or receiver.grpc_port:
        print(f"otel-redis: {receiver.describe()}", file=sys.stderr, flush=True)
    app = create_app(settings)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    forwarder = None
    if upstream_env is not None:
        try:
            forwarder = start_forwarder(settings, upstream_env)
        except CliError:
            api_sock.close()
            receiver.stop()
            pipeline.shutdown()
            raise
        threads.append(threading.Thread(target=forwarder.run, args=(stop,), name="otel-redis-forwarder", daemon=True))
    if args.demo:
        # the query API logs its own requests, and a demo client sends it real HTTP traffic
        from ..instrumentation import instrument_app

        instrument_app(app, settings=settings, exclude_paths=["/healthz", "/logs/stream"])
        base = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::', '') else args.host}:{args.port}"
        threads.append(threading.Thread(target=_demo_traffic, args=(app, base, stop, args.demo_interval * 2),
                                        daemon=True))
        threads.append(threading.Thread(target=_demo_emitter, args=(stop, args.demo_interval), daemon=True))
        threads.append(threading.Thread(target=_console_tail, args=(settings, stop), daemon=True))
    for t in threads:
        t.start()
    print(
        f"otel-redis: query API on http://{args.host}:{args.port}  (docs at /docs, health at /healthz)",
        file=sys.stderr,
        flush=True,
    )
    # live-follow streams (GET /logs/stream) never end by themselves: give them 3 s on shutdown
    server = _server_class()(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=3),
        app.state.stopping,
    )
    try:
        server.run(sockets=[api_sock])
    finally:
        stop.set()
        receiver.stop()
        if forwarder is not None:
            for t in threads:
                if t.name == "otel-redis-forwarder":
                    t.join(timeout=10)
            forwarder.close()
        pipeline.shutdown()
    return 0


def forward_env(args: argparse.Namespace, env: Any = None) -> dict[str, str] | None:
    """The environment the upstream is read from, or None when ``serve`` does not forward.

    ``--forward URL`` stands for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (so ``/v1/logs`` is appended for
    HTTP, as the OTel exporters do); otherwise serve forwards when either endpoint variable is set.
    """
    import os

    env = dict(os.environ if env is None else env)
    if args.no_forward:
        return None
    if args.forward:
        if not args.forward.startswith(("http://", "https://")):
            raise CliError(f"--forward {args.forward!r}: the upstream URL must start with http:// or https://", 2)
        env.pop("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", None)
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = args.forward
        return env
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"):
        return env
    return None


def start_forwarder(settings: Any, env: dict[str, str]) -> Any:
    """Connect the forwarder (Redis streams -> upstream OTLP); its thread is started by the caller."""
    from collector.config import load_forwarder_settings
    from collector.forwarder import Forwarder
    from collector.upstream import UpstreamError, make_upstream

    try:
        config = load_forwarder_settings(env)
        upstream = make_upstream(config.protocol, env)
    except (UpstreamError, ValueError) as exc:
        raise CliError(str(exc), 2) from None
    forwarder = Forwarder.connect(settings, config, upstream)
    print(f"otel-redis: forwarding stored records to {upstream.describe()} (consumer {config.consumer!r})",
          file=sys.stderr, flush=True)  # fmt: skip
    return forwarder


def _server_class() -> Any:
    """Built on first use: uvicorn is imported only when the service really starts."""
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server that, on SIGINT/SIGTERM, first tells the app's live-follow streams to end."""

        def __init__(self, config: Any, stopping: threading.Event) -> None:
            super().__init__(config)
            self.stopping = stopping

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.stopping.set()
            super().handle_exit(sig, frame)

    return Server


#: exit code of ``serve`` when Redis does not answer at start (1 is any other error, 2 a usage error)
EXIT_REDIS_UNREACHABLE = 3


def _check_redis(settings: Any, url: str) -> None:
    """Fail at start, in one line naming the URL, rather than in a background job 30 s later."""
    import redis

    from ..connection import make_client

    client = make_client(settings, url, retries=0)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise CliError(f"cannot reach Redis at {url}: {exc}", EXIT_REDIS_UNREACHABLE) from None
    finally:
        client.close()


def _bind_api(host: str, port: int) -> Any:
    """Bind the query API port up front: a port in use is one line, not a server traceback."""
    from collector.receiver import PortInUse, bind_socket

    try:
        return bind_socket(host, port, "the query API (--port)")
    except PortInUse as exc:
        raise CliError(str(exc)) from None


_COMPONENTS = ("api_server", "proxy", "auth", "scheduler", "monitor")


def _demo_emitter(stop: threading.Event, interval: float) -> None:
    """Emit a varied stream of records through the real pipeline."""
    from .. import api

    rng = random.Random()
    n = 0
    api.log_info("demo started", component="demo")
    while not stop.wait(interval):
        n += 1
        component = rng.choice(_COMPONENTS)
        roll = rng.random()
        if roll < 0.55:
            api.log_info(f"handled job {n}", component=component, job_id=n, duration_ms=round(rng.uniform(1, 90), 1))
        elif roll < 0.7:
            api.log_debug(f"cache probe {n}", component=component, hit=rng.random() < 0.8)
        elif roll < 0.82:
            api.log_warning("high memory usage", component="monitor", memory_mb=rng.randint(900, 2000))
        elif roll < 0.92:
            api.log_event("proxy_created", {"hostname": rng.choice(["api.example.com", "auth.example.com"])})
        else:
            try:
                raise ConnectionError("upstream refused the connection")
            except ConnectionError as exc:
                api.log_error("Connection failed", component="proxy", error=exc, upstream="10.0.0.7:8443")


_DEMO_AGENTS = ("curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0", "python-httpx/0.28")


def _demo_traffic(app: Any, base: str, stop: threading.Event, interval: float) -> None:
    """Real HTTP requests to the query API itself, so request records flow through instrument_app."""
    import httpx

    rng = random.Random()
    with httpx.Client(base_url=base, timeout=5) as client:
        token = ""
        while not stop.wait(interval):
            if not token:
                tokens = getattr(app.state, "tokens", None)  # loaded by the app's lifespan
                token = tokens.read[0] if tokens is not None and tokens.read else ""
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            path, headers = rng.choice(
                [
                    ("/logs?limit=5", auth),
                    ("/logs/errors?hours=1&limit=5", auth),
                    ("/logs/stats?hours=1", auth),
                    ("/logs/ip/127.0.0.1?limit=3", auth),
                    ("/logs?limit=5", {}),  # 401: no token
                    ("/logs/status/abc", auth),  # 4xx: bad input
                    (f"/wp-admin/{rng.randrange(1000)}.php", {}),  # 404: a scanner
                ]
            )
            try:
                client.get(path, headers={**headers, "User-Agent": rng.choice(_DEMO_AGENTS),
                                          "Referer": "https://console.example.com/?code=demo-secret"})
            except httpx.HTTPError:
                continue  # the server is starting or stopping


def _stream_reader(client: Any) -> Callable[[], list[tuple[Any, list[Any]]] | None]:
    """A function returning the stream entries added since its last call (from now on; None when
    there are none). On a standalone server one blocking XREAD of both streams; on a Cluster the
    streams are split into parts on several slots, so every part is read in one pipeline (no
    multi-slot XREAD) and the caller waits a moment when nothing came."""
    from ..connection import is_cluster_client, read_layout
    from ..schema import STREAMS, stream_parts

    cluster = is_cluster_client(client)
    parts = stream_parts(read_layout(client)) if cluster else list(STREAMS)
    last: dict[str, str] = {part: "$" for part in parts}
    if cluster:  # "$" means "newest" only in a blocking read: start after each part's newest entry
        for part in parts:
            newest = client.xrevrange(part, count=1)
            last[part] = _text(newest[0][0]) if newest else "0-0"

    def advance(rows: Any) -> list[tuple[Any, list[Any]]]:
        out = []
        for stream, entries in rows or []:
            if entries:
                last[_text(stream)] = _text(entries[-1][0])
                out.append((stream, entries))
        return out

    def read() -> list[tuple[Any, list[Any]]] | None:
        if not cluster:
            return advance(client.xread(last, block=1000, count=500)) or []
        pipe = client.pipeline(transaction=False)
        for part in parts:
            pipe.xread({part: last[part]}, count=500)
        rows = [row for reply in pipe.execute() for row in (reply or [])]
        return advance(rows) or None

    return read


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _console_tail(settings: Any, stop: threading.Event) -> None:
    """Follow the Redis streams and print each stored record: proof that logs flow end to end."""
    from .. import schema
    from ..connection import make_client, resolve_url
    from ..record import entry_to_dict
    from ..render import render_record, to_ansi, want_color
    from ..store import RedisStore

    client = make_client(settings, resolve_url(settings))
    store = RedisStore(client, settings)
    color = want_color(sys.stdout)
    read = _stream_reader(client)
    while not stop.is_set():
        try:
            rows = read()
        except Exception as exc:  # noqa: BLE001 - the console keeps going
            print(f"otel-redis: console follow paused: {exc}", file=sys.stderr, flush=True)
            time.sleep(1)
            continue
        if rows is None:  # nothing new on any stream part
            stop.wait(0.1)
            continue
        for stream, entries in rows:
            keys = []
            for _sid, fields in entries:
                keys.append(schema.stream_record_key(fields))
            for key, entry in store.fetch(keys):
                line = to_ansi(render_record(entry_to_dict(key, entry)), color)
                print(f"stored {line}", flush=True)
