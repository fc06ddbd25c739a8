"""The client address and the proxy hostname of a request, trusting forwarding headers only from
configured proxies.

``Forwarded`` (RFC 7239) and ``X-Forwarded-For`` are read only when the socket peer is in
``OTEL_REDIS_TRUSTED_PROXIES`` (IP addresses or CIDR networks). The chain is walked from the right:
each hop that is itself a trusted proxy lets us look one hop further; the first address that is not
a trusted proxy is the client. Every value is parsed as an IP address; anything else (``unknown``,
obfuscated identifiers, garbage) stops the walk, so a client-chosen string never becomes a key.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HEADER_CHARS = 4096
MAX_HOPS = 32
MAX_HOSTNAME = 253
_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\.?")


@lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPAddress | None:
    """An address from a header or socket value: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``;
    IPv4-mapped IPv6 becomes IPv4. None when it is not an address."""
    text = text.strip().strip('"')
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _forwarded_for(header: str) -> list[str]:
    """The ``for=`` values of a ``Forwarded`` header, in order (missing ones as empty strings)."""
    out = []
    for element in header[:MAX_HEADER_CHARS].split(",")[-MAX_HOPS:]:
        value = ""
        for pair in element.split(";"):
            name, eq, raw = pair.partition("=")
            if eq and name.strip().lower() == "for":
                value = raw.strip()
        out.append(value)
    return out


def _forwarded_host(header: str) -> str:
    """The ``host=`` of the last element of a ``Forwarded`` header (the one our proxy added)."""
    element = header[:MAX_HEADER_CHARS].rsplit(",", 1)[-1]
    for pair in element.split(";"):
        name, eq, raw = pair.partition("=")
        if eq and name.strip().lower() == "host":
            return raw.strip().strip('"')
    return ""


def clean_hostname(value: str) -> str:
    """A Host header value as a bounded, lower-case hostname or IP literal without port; "" if invalid."""
    host = value.strip().lower()
    if not host or len(host) > MAX_HOSTNAME + 7:
        return ""
    if host.startswith("["):
        addr = parse_ip(host)
        return str(addr) if addr is not None else ""
    if host.count(":") == 1:
        host, _, port = host.partition(":")
        if not port.isdigit():
            return ""
    if len(host) > MAX_HOSTNAME or not _HOSTNAME.fullmatch(host):
        return ""
    return host.rstrip(".")


class TrustedProxies:
    """A set of networks whose forwarding headers are believed."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, addr: IPAddress) -> bool:
        key = str(addr)
        hit = self._cache.get(key)
        if hit is None:
            hit = any(addr.version == n.version and addr in n for n in self.networks)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def resolve(
        self,
        peer: str,
        forwarded: str = "",
        x_forwarded_for: str = "",
        host: str = "",
        x_forwarded_host: str = "",
    ) -> tuple[str, str]:
        """``(client_ip, proxy_hostname)`` of one request. ``peer`` is the socket address."""
        addr = parse_ip(peer) if peer else None
        hostname = host
        if addr is not None and self.networks and self.trusts(addr) and (forwarded or x_forwarded_for):
            chain = _forwarded_for(forwarded) if forwarded else x_forwarded_for[:MAX_HEADER_CHARS].split(",")[-MAX_HOPS:]
            for raw in reversed(chain):
                hop = parse_ip(raw)
                if hop is None:
                    break
                addr = hop
                if not self.trusts(hop):
                    break
            forwarded_host = _forwarded_host(forwarded) if forwarded else x_forwarded_host.rsplit(",", 1)[-1]
            if forwarded_host.strip():
                hostname = forwarded_host
        elif addr is not None and self.networks and self.trusts(addr) and x_forwarded_host:
            hostname = x_forwarded_host.rsplit(",", 1)[-1]
        return (str(addr) if addr is not None else ""), clean_hostname(hostname)


_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")


def valid_ip(text: str) -> str:
    """``text`` as a canonical IP address string, or "" when it is not one."""
    if _IPV4.fullmatch(text):
        return text  # canonical dotted quad already (the common case, without ipaddress' cost)
    addr = parse_ip(text) if text else None
    return str(addr) if addr is not None else ""
