"""Client addresses are bounded keys: 10,000 hostile addresses (an IPv6 spray from one /48, IPv4
addresses from many /24s, and application logs carrying addresses) through the real pipeline make at
most OTEL_REDIS_MAX_IPS_PER_HOUR + OTEL_REDIS_MAX_IP_PREFIXES_PER_HOUR + 1 address indexes, every
record is stored, and the real query API still finds exactly the records of any one address."""

from __future__ import annotations

import contextlib
import ipaddress
import random
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

import otel_redis
from otel_redis import api, schema
from otel_redis.bounds import OTHER, IpBound, ip_prefix
from otel_redis.counters import PipelineCounters
from otel_redis.exporter import RedisLogRecordExporter
from otel_redis.oauth import log_oauth_activity
from otel_redis.request_log import emit_request
from tests.servers import run_service

N = 10_000
IPS = 30
PREFIXES = 10
TOKEN = "ip-bound-token"


def count(r, pattern: str) -> int:
    return sum(1 for _ in r.scan_iter(pattern, count=5000))


def test_ip_prefix_and_bound():
    assert ip_prefix("10.1.2.3") == "10.1.2.0/24"
    assert ip_prefix("2001:db8:7:1::9") == "2001:db8:7::/48"
    assert ip_prefix("::ffff:10.1.2.3") == "10.1.2.0/24"
    assert ip_prefix("not an ip") == OTHER
    bound = IpBound(2, 1)
    assert [bound(ip) for ip in ("1.1.1.1", "2.2.2.2", "1.1.1.1", "3.3.3.3", "3.3.3.4", "4.4.4.4")] == [
        "1.1.1.1", "2.2.2.2", "1.1.1.1", "3.3.3.0/24", "3.3.3.0/24", OTHER]


@pytest.fixture
def counters() -> PipelineCounters:
    return PipelineCounters()


@pytest.fixture
def bounded_pipeline(settings, counters) -> Iterator[None]:
    small = settings.with_overrides(max_ips_per_hour=IPS, max_ip_prefixes_per_hour=PREFIXES, batch_delay_ms=10)
    otel_redis.configure(settings=small, exporter=RedisLogRecordExporter(settings=small, counters=counters),
                         set_global_provider=False)
    yield
    otel_redis.shutdown()


def hostile_addresses(rng: random.Random) -> list[str]:
    """Early ordinary addresses, then a spray: 60 % random IPv6 of one /48 (any form), 40 % IPv4
    of random /24s."""
    early = [f"192.0.2.{i}" for i in range(IPS // 2)]
    spray = []
    for i in range(N - len(early)):
        if rng.random() < 0.6:
            addr = ipaddress.IPv6Address((0x20010DB8AAAA << 80) | rng.getrandbits(80))
            spray.append(addr.exploded if i % 3 == 0 else str(addr))  # non-canonical forms too
        else:
            spray.append(str(ipaddress.IPv4Address(rng.getrandbits(32) | 0x01000000)))
    return early + spray


@contextlib.contextmanager
def query_service(redis_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """The real query API (``otel-redis serve``) on the test's Redis, as an authorized client."""
    env = {"REDIS_URL": redis_url, "OTEL_REDIS_DATA_DIR": str(tmp_path / "serve"), "OTEL_REDIS_API_TOKENS": TOKEN,
           "OTEL_REDIS_CLEANUP_INTERVAL_S": "0", "OTEL_REDIS_ALERTS_ENABLED": "false", "LOG_LEVEL": "WARNING"}
    argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
    with run_service(argv, env=env, tmp_path=tmp_path, name="ip-bound") as svc, \
            httpx.Client(base_url=svc.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c


def probes(addresses: list[str]) -> tuple[str, str, str]:
    """An early (admitted) address, one of the IPv6 spray and one of the late IPv4 ones."""
    return addresses[3], addresses[IPS + 1], next(ip for ip in addresses[-500:] if "." in ip)


@pytest.mark.e2e  # about 50 s: the fast suite leaves it to the full run, like its OAuth sibling
def test_ten_thousand_hostile_addresses_are_bounded_and_still_found(bounded_pipeline, r, counters, redis_url,
                                                                  tmp_path: Path):
    rng = random.Random(21)
    addresses = hostile_addresses(rng)
    ts = time.time_ns()
    for i, ip in enumerate(addresses):
        if i % 4 == 3:
            api.log_info("login seen", client_ip=ip, n=i)  # an application log carrying the address
        else:
            emit_request(ts + i, "GET", "/login", 200, ip, route="/login")
    otel_redis.force_flush()
    assert counters.dropped == 0
    assert r.zcard("idx:req:all") + r.zcard("idx:log:all") == N  # every record stored
    assert count(r, "idx:req:ip:*") <= IPS + PREFIXES + 1
    assert count(r, "idx:log:ip:*") <= IPS + PREFIXES + 1
    assert r.zcard(schema.idx_req_ip("2001:db8:aaaa::/48")) > 1000  # the spray: one network key
    with query_service(redis_url, tmp_path) as c:
        for ip in probes(addresses):
            want = {i for i, a in enumerate(addresses) if ipaddress.ip_address(a) == ipaddress.ip_address(ip)}
            for url, params in ((f"/logs/ip/{ip}", {}), ("/logs/search", {"ip": ip})):
                page = c.get(url, params={**params, "limit": 1000})
                assert page.status_code == 200, page.text
                found = {(rec["client_ip"] if rec["kind"] == "request" else rec["attributes"]["client_ip"])
                         for rec in page.json()["records"]}
                assert len(page.json()["records"]) == len(want), (ip, url)
                assert {str(ipaddress.ip_address(a)) for a in found} == {str(ipaddress.ip_address(ip))}


@pytest.mark.e2e
def test_ten_thousand_oauth_client_addresses_are_bounded_and_still_found(bounded_pipeline, r, counters, redis_url,
                                                                         tmp_path: Path):
    """``idx:oauth:ip:*`` is bounded like the other address indexes; /logs/oauth/ip/{ip} reads the
    address's index, its network's and ``_OTHER`` and keeps that address's records only."""
    addresses = hostile_addresses(random.Random(22))
    for i, ip in enumerate(addresses):
        log_oauth_activity("token_issued", "cli-1", None, client_ip=ip, n=i)
    otel_redis.force_flush()
    assert counters.dropped == 0
    assert r.zcard("idx:log:all") == N
    assert count(r, "idx:oauth:ip:*") <= IPS + PREFIXES + 1
    assert r.zcard(schema.idx_oauth_ip("2001:db8:aaaa::/48")) > 1000
    with query_service(redis_url, tmp_path) as c:
        for ip in probes(addresses):
            want = sum(1 for a in addresses if ipaddress.ip_address(a) == ipaddress.ip_address(ip))
            for url in (f"/logs/oauth/ip/{ip}", f"/logs/oauth/ip/{ip}/flows"):
                page = c.get(url, params={"limit": 1000})
                assert page.status_code == 200, page.text
                body = page.json()
                records = body["records"] if "records" in body else [x for f in body["flows"] for x in f["records"]]
                assert len(records) == want, (ip, url)
                assert {str(ipaddress.ip_address(x["attributes"]["client_ip"])) for x in records} == {
                    str(ipaddress.ip_address(ip))}
