"""How an `openai` config reaches the provider (its rules: tests/db/test_config_rules.py)."""

from __future__ import annotations

from typing import Any

import pytest

from db.errors import Invalid
from db.ports import ChatTurn, ModelError
from gateway.providers import default_registry
from gateway.providers.openai_options import DEFAULT_BASE_URL, request_options
from gateway.settings import load_settings
from tests.providers.conftest import openai_spec
from tests.providers.fake_openai import FakeOpenAI, reply, stalled

GOOD_PARAMETERS: dict[str, Any] = {
    "temperature": 1,
    "top_p": 0.5,
    "presence_penalty": -0.5,
    "frequency_penalty": 0.0,
    "max_tokens": 100,
    "max_completion_tokens": 200,
    "stop": "END",
    "seed": -3,
    "n": 1,
    "stream_options": None,
    "response_format": {"type": "json_object"},
    "extra_headers": {"X-Team": "chat", "HTTP-Referer": "https://example.org"},
    "organization": "org-1",
    "project": "proj-1",
    "api_key_header": "api-key",
    "system_prompt": "Be brief.",
}


def test_unknown_provider_is_refused_by_the_registry() -> None:
    with pytest.raises(Invalid) as caught:
        default_registry().validate(openai_spec("https://host/v1", provider="openia"))
    assert caught.value.field == "provider"


def test_request_options() -> None:
    options = request_options(openai_spec(None, parameters=GOOD_PARAMETERS))
    assert options.url == f"{DEFAULT_BASE_URL}/chat/completions"
    assert options.key_header == "api-key"
    assert options.stream_options is None
    assert options.headers["OpenAI-Organization"] == "org-1"
    assert options.headers["X-Team"] == "chat"
    assert set(options.parameters) == {
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "n",
        "response_format",
    }


def test_trailing_slash_and_query_of_the_base_url() -> None:
    url = request_options(openai_spec("http://h:8000/openai/deployments/d/?api-version=1")).url
    assert url == "http://h:8000/openai/deployments/d/chat/completions?api-version=1"


async def test_default_registry_takes_its_policies_from_the_settings(
    fake_openai: FakeOpenAI, api_key: str
) -> None:
    settings = load_settings(
        _env_file=None,
        provider_connect_timeout=1,
        provider_read_timeout=0.25,
        provider_total_timeout=30,
        provider_max_retries=1,
    )
    registry = default_registry(settings)
    assert set(registry.providers()) == {"echo", "openai"}
    fake_openai.script(stalled(2.0, reply()))

    with pytest.raises(ModelError, match=r"sent nothing for 0\.25 s") as caught:
        async with registry.lease(openai_spec(fake_openai.base_url)) as client:
            await client.complete([ChatTurn(role="user", content="hi")])

    assert caught.value.details["attempts"] == 2
    assert len(fake_openai.received) == 2
    await registry.aclose()
