"""An OTLP request to the real receiver: planted secrets appear in no key and no value of Redis."""

from __future__ import annotations


import json

import httpx

from otel_redis.scrub import SCRUBBED_ATTRIBUTE
from tests.redis_dump import dump_all

PLANTED = "PLANTED-s3cr3t-VALUE"


def _kv(key: str, value: dict) -> dict:
    return {"key": key, "value": value}


def test_otlp_attributes_body_and_request_query_are_scrubbed(receiver, store, r):
    record = {
        "timeUnixNano": "1700000000000000000",
        "severityNumber": 9,
        "body": {"stringValue": f"callback ?code={PLANTED}&state=1 Bearer {PLANTED}"},
        "attributes": [
            _kv("password", {"stringValue": PLANTED}),
            _kv("blob_secret", {"bytesValue": "AAEC"}),  # typed bytes under a masked name
            _kv("details", {"arrayValue": {"values": [
                {"kvlistValue": {"values": [_kv("client_secret", {"stringValue": PLANTED})]}}]}}),
            _kv("http.request.method", {"stringValue": "GET"}),
            _kv("http.response.status_code", {"intValue": "200"}),
            _kv("url.path", {"stringValue": "/cb"}),
            _kv("url.query", {"stringValue": f"access_token={PLANTED}&a=1"}),
        ],
    }
    body = {"resourceLogs": [{"resource": {"attributes": [_kv("service.name", {"stringValue": "svc"})]},
                              "scopeLogs": [{"scope": {"name": "s"}, "logRecords": [record]}]}]}
    response = httpx.post(f"http://127.0.0.1:{receiver.http_port}/v1/logs", content=json.dumps(body),
                          headers={"content-type": "application/json"}, timeout=10)
    assert response.status_code == 200, response.text
    everything = dump_all(r)
    assert "svc" in everything
    assert PLANTED not in everything
    assert SCRUBBED_ATTRIBUTE in everything and "attributes.details[0].client_secret" in everything
    assert "access_token=%2A%2A%2A" in everything  # the request's query, masked as in-process requests are
