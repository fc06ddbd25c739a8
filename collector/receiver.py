"""Run the OTLP receiver: the HTTP app on its own uvicorn server (a thread) and the gRPC server.

Ports are bound in :meth:`Receiver.start` before anything is served, so a port in use is one
:class:`PortInUse` error naming the port and the flag that changes it, never a traceback from a
server thread. Port 0 disables that protocol.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from otel_redis.config import Settings

from .config import ReceiverSettings
from .grpc_receiver import create_grpc_server
from .http_receiver import create_receiver_app
from .ingest import Ingestor


class PortInUse(RuntimeError):
    """A listening port could not be bound."""


def bind_socket(host: str, port: int, what: str) -> socket.socket:
    """A listening TCP socket on ``host:port``, or PortInUse with a clear message."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise PortInUse(f"cannot listen on {host}:{port} for {what}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class Receiver:
    """OTLP/HTTP and OTLP/gRPC listeners in front of one :class:`Ingestor`."""

    def __init__(self, settings: Settings, receiver: ReceiverSettings, host: str = "127.0.0.1") -> None:
        self.settings = settings
        self.config = receiver
        self.host = host
        self.ingestor = Ingestor(settings, receiver)
        self._http_server: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc_server = None
        self.http_port = 0
        self.grpc_port = 0

    def start(self) -> "Receiver":
        http_sock = None
        if self.config.http_port:
            http_sock = bind_socket(self.host, self.config.http_port, "OTLP/HTTP (--otlp-http-port)")
            self.http_port = http_sock.getsockname()[1]
        if self.config.grpc_port:
            try:
                self._start_grpc()
            except PortInUse:
                if http_sock is not None:
                    http_sock.close()
                raise
        if http_sock is not None:
            self._start_http(http_sock)
        return self

    def _start_grpc(self) -> None:
        what = "OTLP/gRPC (--otlp-grpc-port)"
        bind_socket(self.host, self.config.grpc_port, what).close()  # a clear error before gRPC tries
        server = create_grpc_server(self.ingestor)
        try:
            port = server.add_insecure_port(f"{self.host}:{self.config.grpc_port}")
        except RuntimeError as exc:
            raise PortInUse(f"cannot listen on {self.host}:{self.config.grpc_port} for {what}: {exc}") from None
        server.start()
        self._grpc_server = server
        self.grpc_port = port

    def _start_http(self, sock: socket.socket) -> None:
        config = uvicorn.Config(
            create_receiver_app(self.ingestor), log_level="warning", lifespan="off", access_log=False
        )
        server = uvicorn.Server(config)
        self._http_server = server
        self._http_thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="otlp-http", daemon=True
        )
        self._http_thread.start()
        deadline = time.monotonic() + 10
        while not server.started and self._http_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self, grace_s: float = 5.0) -> None:
        if self._http_server is not None:
            self._http_server.should_exit = True
        if self._grpc_server is not None:
            self._grpc_server.stop(grace_s).wait(grace_s)
        if self._http_thread is not None:
            self._http_thread.join(grace_s)
        self.ingestor.close()

    def describe(self) -> str:
        parts = []
        if self.http_port:
            parts.append(f"OTLP/HTTP on http://{self.host}:{self.http_port}/v1/logs")
        if self.grpc_port:
            parts.append(f"OTLP/gRPC on {self.host}:{self.grpc_port}")
        auth = "bearer token required" if self.config.tokens else "no ingest token set: open to anyone who can connect"
        return ", ".join(parts) + f" ({auth})" if parts else "OTLP receiver disabled"
