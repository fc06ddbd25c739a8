"""``otel-redis receive`` (the OTLP receiver alone) and ``otel-redis forward`` (Redis -> upstream OTLP)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from ..config import load_settings
from . import CliError


def add_receiver_flags(p: argparse.ArgumentParser) -> None:
    """The OTLP port flags, shared by ``serve`` and ``receive`` (defaults from the environment)."""
    p.add_argument("--otlp-http-port", type=int, default=None, metavar="PORT",
                   help="OTLP/HTTP port (default OTEL_REDIS_OTLP_HTTP_PORT or 4318; 0 disables)")
    p.add_argument("--otlp-grpc-port", type=int, default=None, metavar="PORT",
                   help="OTLP/gRPC port (default OTEL_REDIS_OTLP_GRPC_PORT or 4317; 0 disables)")


def receiver_settings(args: argparse.Namespace, disabled: bool = False) -> Any:
    from collector.config import load_receiver_settings

    config = load_receiver_settings()
    overrides = {}
    for name in ("http_port", "grpc_port"):
        value = getattr(args, f"otlp_{name}", None)
        if disabled:
            value = 0
        if value is not None:
            if not 0 <= value <= 65535:
                raise CliError(f"--otlp-{name.replace('_', '-')} {value} is not a port (0 disables)", 2)
            overrides[name] = value
    return config.with_overrides(**overrides)


def start_receiver(settings: Any, config: Any, host: str) -> Any:
    """Start the receiver, or raise CliError (one line) when a port is taken."""
    from collector.receiver import PortInUse, Receiver

    receiver = Receiver(settings, config, host)
    try:
        return receiver.start()
    except PortInUse as exc:
        receiver.ingestor.close()
        raise CliError(str(exc)) from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("receive", help="run the OTLP receiver (HTTP and gRPC) that writes into Redis")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    add_receiver_flags(p)
    p.set_defaults(func=run_receive)

    f = subparsers.add_parser(
        "forward", help="forward stored records to an upstream OTLP collector (OTEL_EXPORTER_OTLP_* settings)"
    )
    f.add_argument("--once", action="store_true", help="forward what is there, then exit")
    f.set_defaults(func=run_forward)


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()

    def _handler(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


def run_receive(args: argparse.Namespace) -> int:
    from ..connection import resolve_url

    settings = load_settings()
    config = receiver_settings(args)
    if not config.http_port and not config.grpc_port:
        raise CliError("both OTLP ports are disabled: nothing to receive", 2)
    url = resolve_url(settings)
    stop = _wait_for_signal()
    receiver = start_receiver(settings, config, args.host)
    print(f"otel-redis: Redis at {url}; {receiver.describe()}", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        receiver.stop()
    return 0


def run_forward(args: argparse.Namespace) -> int:
    from collector.config import load_forwarder_settings
    from collector.forwarder import Forwarder
    from collector.upstream import UpstreamError, make_upstream

    settings = load_settings()
    config = load_forwarder_settings()
    try:
        upstream = make_upstream(config.protocol)
    except UpstreamError as exc:
        raise CliError(str(exc), 2) from None
    stop = _wait_for_signal()
    forwarder = Forwarder.connect(settings, config, upstream)
    print(
        f"otel-redis: forwarding {', '.join(forwarder.streams)} as consumer {config.consumer!r} of group "
        f"{config.group!r} to {upstream.describe()}",
        file=sys.stderr,
        flush=True,
    )
    try:
        if args.once:
            forwarder.drain(stop)
        else:
            forwarder.run(stop)
    finally:
        forwarder.close()
    return 0
