"""masking.py: secrets in headers, query strings, URLs and OAuth details are masked, names kept."""

from __future__ import annotations

import pytest

from otel_redis.masking import MASK, MAX_DEPTH, Masker

M = Masker()


@pytest.mark.parametrize("name", ["Authorization", "cookie", "X-Api-Key", "my-apikey", "X-Session-Token", "x-amz-security-token"])
def test_secret_headers_are_masked_whatever_their_case(name):
    assert M.header(name, "v") == MASK


@pytest.mark.parametrize("name", ["Accept", "User-Agent", "X-Request-Id", "Content-Type"])
def test_other_headers_are_kept(name):
    assert M.header(name, "v") == "v"


def test_query_masks_secret_parameters_and_keeps_order_and_encoding():
    assert M.query("a=1&code=xyz&b=%20x&state=s&refresh_token=r") == \
        "a=1&code=%2A%2A%2A&b=%20x&state=%2A%2A%2A&refresh_token=%2A%2A%2A"
    assert M.query("page=2&q=hello+world") == "page=2&q=hello+world"  # unchanged, byte for byte
    assert M.query("") == ""


def test_an_encoded_parameter_name_is_recognised():
    assert M.query("client%5Fsecret=s") == "client%5Fsecret=%2A%2A%2A"


def test_suffixes_mark_a_parameter_secret():
    assert M.is_secret_param("github_token") and M.is_secret_param("app_secret") and M.is_secret_param("db_password")
    assert not M.is_secret_param("user") and not M.is_secret_param("session_id")


def test_url_masks_the_query_the_fragment_and_the_password():
    url = "https://bob:hunter2@example.com/cb?code=abc&x=1#access_token=t&token_type=bearer"
    assert M.url(url) == "https://bob:%2A%2A%2A@example.com/cb?code=%2A%2A%2A&x=1#access_token=%2A%2A%2A&token_type=bearer"
    assert M.url("https://example.com/docs#section") == "https://example.com/docs#section"
    assert M.url("https://user@example.com/") == "https://user@example.com/"  # no password to hide


def test_added_names_extend_the_built_in_ones():
    masker = Masker(headers=["X-Tenant"], params=["otp"])
    assert masker.header("x-tenant", "t") == MASK and masker.query("otp=1") == "otp=%2A%2A%2A"
    assert masker.header("authorization", "a") == MASK  # the defaults stay
    assert M.header("x-tenant", "t") == "t"


def test_mapping_masks_nested_secrets_and_copies():
    data = {"grant_type": "authorization_code", "code": "c", "nested": [{"client_secret": "s", "scope": "read"}],
            "x_api_key": "k"}
    masked = M.mapping(data)
    assert masked == {"grant_type": "authorization_code", "code": MASK, "nested": [{"client_secret": MASK, "scope": "read"}],
                      "x_api_key": MASK}
    assert data["code"] == "c"  # the input is not changed


def test_too_deep_a_value_is_masked_whole_never_kept_in_clear():
    deep: dict = {"leaf": "secret-looking"}
    for _ in range(MAX_DEPTH + 2):
        deep = {"d": deep}
    out = M.mapping(deep)
    node = out
    while isinstance(node, dict):
        node = node["d"]
    assert node == MASK
