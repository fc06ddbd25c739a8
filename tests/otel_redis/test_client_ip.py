"""Trusted-proxy resolution of the client address, and masking: pure functions."""

from __future__ import annotations

import pytest

from otel_redis.client_ip import TrustedProxies, clean_hostname, parse_ip
from otel_redis.config import ConfigError, load_settings
from otel_redis.masking import Masker

PROXIES = TrustedProxies(["10.0.0.0/8", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("192.0.2.1", "1.2.3.4", "192.0.2.1"),  # untrusted peer: header ignored
        ("10.0.0.5", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.5", "1.2.3.4, 10.1.1.1", "1.2.3.4"),  # two trusted hops
        ("10.0.0.5", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the spoofed left part is not believed
        ("10.0.0.5", "garbage", "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4:5555", "1.2.3.4"),
        ("10.0.0.5", "[2001:db9::1]:80", "2001:db9::1"),
        ("::ffff:10.0.0.5", "1.2.3.4", "1.2.3.4"),  # IPv4-mapped peer
        ("not-an-ip", "1.2.3.4", ""),
    ],
)
def test_x_forwarded_for(peer, xff, expected):
    assert PROXIES.resolve(peer, x_forwarded_for=xff)[0] == expected


def test_forwarded_header_wins_and_carries_host():
    ip, host = PROXIES.resolve("10.0.0.5", forwarded='for=192.0.2.60;proto=http;host="API.Example.com:443"',
                               x_forwarded_for="7.7.7.7", host="internal")
    assert (ip, host) == ("192.0.2.60", "api.example.com")
    assert PROXIES.resolve("10.0.0.5", forwarded="for=unknown")[0] == "10.0.0.5"


def test_no_trusted_proxies_means_the_peer():
    assert TrustedProxies().resolve("10.0.0.5", x_forwarded_for="1.2.3.4") == ("10.0.0.5", "")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("api.example.com", "api.example.com"), ("API.example.com:8080", "api.example.com"),
     ("[::1]:80", "::1"), ("evil host", ""), ("a" * 300, ""), ("x.com:port", ""), ("x{y}.com", "")],
)
def test_hostnames_are_validated(raw, clean):
    assert clean_hostname(raw) == clean


def test_parse_ip_rejects_non_addresses():
    assert parse_ip("1.2.3.4") is not None
    assert parse_ip("1.2.3") is None and parse_ip("") is None and parse_ip("x" * 100) is None


def test_trusted_proxies_setting_is_validated():
    assert load_settings({"OTEL_REDIS_TRUSTED_PROXIES": "10.0.0.1, 172.16.0.0/12"}).trusted_proxies == (
        "10.0.0.1/32", "172.16.0.0/12")
    with pytest.raises(ConfigError, match="OTEL_REDIS_TRUSTED_PROXIES.*nope"):
        load_settings({"OTEL_REDIS_TRUSTED_PROXIES": "nope"})


def test_masking_defaults_and_additions():
    m = Masker(headers=["x-internal"], params=["sid"])
    assert m.header("Authorization", "Bearer x") == "***"
    assert m.header("X-Internal", "v") == "***" and m.header("Accept", "v") == "v"
    assert m.query("a=1&access_token=t&sid=2&b") == "a=1&access_token=%2A%2A%2A&sid=%2A%2A%2A&b"
    assert m.url("https://u:pw@h/p?code=1#state=2") == "https://u:%2A%2A%2A@h/p?code=%2A%2A%2A#state=%2A%2A%2A"
    assert m.mapping({"password": "p", "ok": 1, "refresh_token": "r"}) == {"password": "***", "ok": 1,
                                                                        "refresh_token": "***"}
