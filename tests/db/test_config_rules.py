"""The rules of a model config, the same for every provider (db.services.config_rules)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from db.errors import Invalid
from db.services.config_rules import (
    BASE_URL_PATTERN,
    SECRET_NAME_PATTERN,
    check_fields,
    looks_secret,
)
from db.services.text import BLANK
from tests.providers.test_openai_options import GOOD_PARAMETERS

GOOD_URLS = [
    "https://api.openai.com/v1",
    "http://127.0.0.1:11434/v1",
    "https://res.openai.azure.com/openai/deployments/gpt4o?api-version=2024-10-21",
    "http://[::1]:8080/v1",
    "http://[2001:db8:0:0:0:0:0:1]/v1",
    "  HTTPS://Example.COM:443/  ",
]


@pytest.mark.parametrize("base_url", GOOD_URLS)
def test_good_configs_pass(base_url: str) -> None:
    fields: dict[str, Any] = {
        "base_url": base_url,
        "api_key_env": " OPENAI_API_KEY ",
        "parameters": GOOD_PARAMETERS,
    }
    check_fields(fields)
    assert fields["base_url"] == base_url.strip() and fields["api_key_env"] == "OPENAI_API_KEY"


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"base_url": "ftp://host/v1"}, "base_url", "http"),
        ({"base_url": "not a url"}, "base_url", "http"),
        ({"base_url": "https:///v1"}, "base_url", "http"),
        ({"base_url": "https://host:99999999/v1"}, "base_url", "Port"),
        ({"base_url": "http://[1]/v1"}, "base_url", "not a valid URL"),  # once a 500
        ({"base_url": "https://me:secret@host/v1"}, "base_url", "credentials"),
        ({"base_url": "https://host/v1#part"}, "base_url", "fragment"),
        ({"base_url": "https://host/v1?api_key=abc"}, "base_url", "secret"),
        ({"base_url": "https://host/v1?a=1&Access-Token=abc"}, "base_url", "secret"),
        ({"base_url": "https://host/v1?api%5Fkey=abc"}, "base_url", "%-escaped"),
        ({"api_key_env": "OPENAI-KEY"}, "api_key_env", "environment variable"),
        ({"api_key_env": "9LIVES"}, "api_key_env", "environment variable"),
        ({"api_key_env": ""}, "api_key_env", "environment variable"),
        ({"parameters": {"model": "other"}}, "parameters", "'model'"),
        ({"parameters": {"messages": []}}, "parameters", "'messages'"),
        ({"parameters": {"stream": True}}, "parameters", "'stream'"),
        ({"parameters": {"temperature": "0.2"}}, "parameters", "temperature must be a number"),
        ({"parameters": {"temperature": True}}, "parameters", "temperature"),
        ({"parameters": {"top_p": None}}, "parameters", "top_p"),
        ({"parameters": {"max_tokens": 0}}, "parameters", "max_tokens"),
        ({"parameters": {"max_tokens": 1.5}}, "parameters", "max_tokens"),
        ({"parameters": {"max_completion_tokens": -1}}, "parameters", "max_completion_tokens"),
        ({"parameters": {"max_history_messages": 0}}, "parameters", "max_history_messages"),
        ({"parameters": {"system_prompt": 3}}, "parameters", "system_prompt"),
        ({"parameters": {"prefix": 3}}, "parameters", "prefix must be a string"),
        ({"parameters": {"chunk_delay_ms": 5001}}, "parameters", "chunk_delay_ms"),
        ({"parameters": {"seed": "7"}}, "parameters", "seed"),
        ({"parameters": {"n": 2}}, "parameters", "n must be 1"),
        ({"parameters": {"stop": ["a", 1]}}, "parameters", "stop"),
        ({"parameters": {"stop": {"a": 1}}}, "parameters", "stop"),
        ({"parameters": {"stream_options": []}}, "parameters", "stream_options"),
        ({"parameters": {"organization": 5}}, "parameters", "organization"),
        ({"parameters": {"project": "a\r\nX-Injected: 1"}}, "parameters", "project"),
        ({"parameters": {"extra_headers": ["X-A"]}}, "parameters", "extra_headers"),
        ({"parameters": {"extra_headers": {"X A": "1"}}}, "parameters", "'X A'"),
        ({"parameters": {"extra_headers": {"X-A": 1}}}, "parameters", "X-A"),
        ({"parameters": {"extra_headers": {"Host": "k"}}}, "parameters", "'Host'"),
        ({"parameters": {"extra_headers": {"x-api-key": "k"}}}, "parameters", "api_key_env"),
        ({"parameters": {"extra_headers": {"Cookie": "k"}}}, "parameters", "Cookie"),
        ({"parameters": {"api_key_header": "bad header"}}, "parameters", "api_key_header"),
        ({"parameters": {"deep": {"list": [{"api_key": "sk"}]}}}, "parameters", "deep.list[0]"),
    ],
)
def test_bad_configs_are_refused_naming_the_field(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(Invalid) as caught:
        check_fields(dict(fields))
    assert caught.value.field == field
    assert reason in caught.value.reason, caught.value.reason


def test_integral_numbers_are_kept_as_integers() -> None:
    fields: dict[str, Any] = {"parameters": {"max_tokens": 20.0, "seed": -3.0, "top_p": 1.0}}
    check_fields(fields)
    assert fields["parameters"] == {"max_tokens": 20, "seed": -3, "top_p": 1.0}
    assert type(fields["parameters"]["max_tokens"]) is int


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "openai_api_key",
        "Authorization",
        "x-authorization-y",
        "access_token",
        "X-Api-Key",
        "key",
        "TOKEN",
        "passwd",
        "userpassword",
        "cookie",
        "credentials",
    ],
)
def test_secret_looking_names(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name", ["max_tokens", "keys", "monkey", "token\n", "my_passwd", "cookies", "tokens"]
)
def test_ordinary_names(name: str) -> None:
    assert not looks_secret(name)


def test_the_patterns_read_alike_in_python_and_in_ecma_262() -> None:
    """No flags, no `$`, no lookbehind: what JSON Schema validators in any language read."""
    for pattern in (SECRET_NAME_PATTERN, BASE_URL_PATTERN):
        outside_classes = re.sub(r"\[(?:\\.|[^\]])*\]", "", pattern)
        assert "$" not in outside_classes.replace(r"\$", "") and "(?<" not in pattern
        assert not re.search(r"\(\?[aiLmsux]", pattern)


def test_blank_is_what_str_strip_removes() -> None:
    """The document's BLANK class is exactly Python's whitespace, which ECMA's `\\s` is not."""
    blank = re.compile(f"[{BLANK}]")
    assert all(bool(blank.fullmatch(chr(code))) == chr(code).isspace() for code in range(0x110000))
