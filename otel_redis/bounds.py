"""Bounds on the client- and sender-controlled values that become parts of Redis keys or hash fields.

A request path, a status code, a user id or a User-Agent is chosen by whoever sends the request (or,
through the OTLP receiver, by whoever sends the record). Each distinct value becomes an index key or
a ``stats:*`` hash field, so without a bound a scanner creates keys without end. Every dimension here
lets a fixed number of distinct values through and indexes the rest as :data:`OTHER`; the record hash
always keeps the raw value. The store applies them once, where it chooses the key parts, so every
door (log calls, stdlib, ASGI, WSGI, span exporter, OTLP receiver) is bounded the same way.
"""

from __future__ import annotations

import functools
import ipaddress
import threading
import time
from typing import Callable

from .config import Settings
from .paths import UNMATCHED, normalize_path

#: the index value of every value beyond a bound (OpenTelemetry's convention for methods)
OTHER = "_OTHER"

#: request methods indexed as they are; any other is ``_OTHER``
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"})

#: the suffix of a path collapsed to its first segment (``/spa/anything`` -> ``/spa/*``)
PREFIX_SUFFIX = "/*"


class BoundedNames:
    """The first ``limit`` distinct values seen by this process pass; later new ones become ``_OTHER``.

    With ``window_s``, the set empties at each window's start (wall clock), so a long-running process
    keeps indexing new users or sessions while each window adds at most ``limit`` keys."""

    def __init__(self, limit: int, window_s: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._window = self._current_window()
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.overflowed = 0

    def _current_window(self) -> int:
        return int(self._clock() // self.window_s) if self.window_s else 0

    def admits(self, name: str) -> bool:
        """True when ``name`` may be used as it is (seen already, or room for one more)."""
        if name in self._seen:
            return True
        with self._lock:
            if self.window_s:
                window = self._current_window()
                if window != self._window:
                    self._window = window
                    self._seen = set()
            if name in self._seen:
                return True
            if len(self._seen) < self.limit:
                self._seen.add(name)
                return True
            self.overflowed += 1
            return False

    def __call__(self, name: str) -> str:
        return name if self.admits(name) else OTHER


def bounded_status(code: int) -> int | str:
    """A status code of HTTP's range (100-599) as it is, anything else ``_OTHER``."""
    return code if 100 <= code <= 599 else OTHER


def bounded_method(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER


class PathBound:
    """The indexed path of a request: its route template as it is (the application defines those),
    ``/{unmatched}`` for a 404/405 without one; any other path without a route is normalised
    (``/users/{id}``) and the first ``max_paths`` distinct ones pass; beyond them a path is collapsed
    to its first segment (``/private/*``, the first ``max_path_prefixes`` distinct ones), else
    ``_OTHER``. At most ``max_paths + max_path_prefixes + 1`` paths per method (the method is bounded
    too), so one ``stats:paths`` hash has at most that many fields per method."""

    def __init__(self, max_paths: int, max_prefixes: int) -> None:
        self.paths = BoundedNames(max_paths)
        self.prefixes = BoundedNames(max_prefixes)

    def __call__(self, route: str, path: str, status_code: int) -> str:
        if route:
            return route
        if status_code in (404, 405):
            return UNMATCHED
        normalised = normalize_path(path)
        if self.paths.admits(normalised):
            return normalised
        first = normalised.split("/", 2)[1] if normalised.startswith("/") else ""
        prefix = f"/{first}{PREFIX_SUFFIX}" if first else OTHER
        return prefix if prefix != OTHER and self.prefixes.admits(prefix) else OTHER


def is_collapsed(indexed_path: str) -> bool:
    """True for an indexed path that stands for many raw paths (a query checks their raw path)."""
    return indexed_path == OTHER or indexed_path == UNMATCHED or indexed_path.endswith(PREFIX_SUFFIX)


HOUR_S = 3600

#: the network prefix an address beyond the per-hour bound is indexed under
IPV4_PREFIX = 24
IPV6_PREFIX = 48


@functools.lru_cache(maxsize=8192)
def ip_prefix(ip: str) -> str:
    """``10.1.2.0/24`` for ``10.1.2.3``, ``2001:db8:7::/48`` for ``2001:db8:7:1::9``; ``_OTHER`` for
    text that is not an address."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return OTHER
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = IPV4_PREFIX if addr.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


class IpBound:
    """The indexed form of a client address: the first ``max_ips`` distinct addresses of each hour as
    they are, later new ones under their network (:func:`ip_prefix`, the first ``max_prefixes``
    distinct networks of the hour), else ``_OTHER``. An IPv6 spray from one /48 makes one key; a
    query by address reads its own index, its network's and ``_OTHER``, and checks the address."""

    def __init__(self, max_ips: int, max_prefixes: int) -> None:
        self.ips = BoundedNames(max_ips, HOUR_S)
        self.prefixes = BoundedNames(max_prefixes, HOUR_S)

    def __call__(self, ip: str) -> str:
        """``ip`` itself (the same object) when admitted, else its network or ``_OTHER``."""
        if self.ips.admits(ip):
            return ip
        prefix = ip_prefix(ip)
        return prefix if prefix != OTHER and self.prefixes.admits(prefix) else OTHER


class KeyBounds:
    """Every bounded dimension of one store, built from the settings (see docs/configuration.md)."""

    def __init__(self, settings: Settings) -> None:
        self.path = PathBound(settings.max_paths, settings.max_path_prefixes)
        self.hostname = BoundedNames(settings.max_hostnames)
        self.component = BoundedNames(settings.max_components)
        self.event = BoundedNames(settings.max_events)
        self.user = BoundedNames(settings.max_users_per_hour, HOUR_S)
        self.session = BoundedNames(settings.max_sessions_per_hour, HOUR_S)
        self.client = BoundedNames(settings.max_oauth_clients_per_hour, HOUR_S)
        self.user_agent = BoundedNames(settings.max_user_agents_per_hour, HOUR_S)
        #: reverse-DNS names of client addresses (an OTLP sender states them as it likes)
        self.client_hostname = BoundedNames(settings.max_client_hostnames_per_hour, HOUR_S)
        #: resource ``service.name`` of every record (an OTLP sender names it as it likes)
        self.service = BoundedNames(settings.max_services)
        #: client addresses (requests, and the ip attributes of application logs)
        self.ip = IpBound(settings.max_ips_per_hour, settings.max_ip_prefixes_per_hour)
        #: the other application-log index fields (``idx:log:{name}:{value}``)
        self.log_fields: dict[str, BoundedNames] = {
            "client": self.client,
            "user": self.user,
            "session": self.session,
            "host": self.hostname,
        }
