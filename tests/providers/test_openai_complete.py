"""Whole (non-streamed) replies from the `openai` provider, against the loopback fake."""

from __future__ import annotations

import asyncio

import pytest

from db.ports import ChatTurn, ModelError, ModelReply, Usage
from tests.providers.conftest import KEY_ENV, MakeClient
from tests.providers.fake_openai import FakeOpenAI, reply, stalled

TURNS = [
    ChatTurn(role="system", content="Be brief."),
    ChatTurn(role="user", content="Hi"),
    ChatTurn(role="assistant", content="Hello!"),
    ChatTurn(role="user", content="How are you?"),
]


async def test_happy_path_with_usage(fake_openai: FakeOpenAI, make_client: MakeClient) -> None:
    fake_openai.script(reply("Fine, thanks.", usage=(31, 4), finish_reason="stop"))
    client = await make_client()

    answer = await client.complete(TURNS)

    assert answer == ModelReply(
        content="Fine, thanks.",
        finish_reason="stop",
        usage=Usage(prompt_tokens=31, completion_tokens=4),
        labels={
            "upstream_model": "gpt-fake-2024-01-01",
            "response_id": "chatcmpl-123",
            "attempts": 1,
        },
    )
    [request] = fake_openai.received
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "gpt-fake"
    assert request.body["messages"] == [
        {"role": turn.role, "content": turn.content} for turn in TURNS
    ]
    assert "stream" not in request.body and "stream_options" not in request.body


async def test_authorization_header_carries_the_key_from_the_environment(
    fake_openai: FakeOpenAI, make_client: MakeClient, api_key: str
) -> None:
    fake_openai.script(reply())
    client = await make_client()
    await client.complete(TURNS)
    assert fake_openai.received[0].headers["Authorization"] == f"Bearer {api_key}"


async def test_no_key_env_sends_no_authorization(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    # Local servers (Ollama, vLLM, llama.cpp) usually need no key.
    fake_openai.script(reply())
    client = await make_client(api_key_env=None)
    await client.complete(TURNS)
    assert "Authorization" not in fake_openai.received[0].headers


async def test_parameters_pass_through_but_gateway_and_provider_ones_do_not(
    fake_openai: FakeOpenAI, make_client: MakeClient, api_key: str
) -> None:
    fake_openai.script(reply())
    parameters = {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["\n\n", "END"],
        "seed": 7,
        "logit_bias": {"50256": -100},  # unknown to us, passed on as given
        "system_prompt": "read by the gateway",
        "max_history_messages": 10,
        "max_history_tokens": 2000,
        "extra_headers": {"X-Trace": "abc"},
        "organization": "org-1",
        "project": "proj-1",
        "api_key_header": "api-key",
        "stream_options": {"include_usage": False},
    }
    client = await make_client(parameters=parameters)

    await client.complete(TURNS)

    [request] = fake_openai.received
    passed = {name: value for name, value in request.body.items() if name not in ("messages",)}
    assert passed == {
        "model": "gpt-fake",
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["\n\n", "END"],
        "seed": 7,
        "logit_bias": {"50256": -100},
    }
    assert request.headers["X-Trace"] == "abc"
    assert request.headers["OpenAI-Organization"] == "org-1"
    assert request.headers["OpenAI-Project"] == "proj-1"
    # Azure-style: the bare key in the named header, no bearer token.
    assert request.headers["api-key"] == api_key
    assert "Authorization" not in request.headers


async def test_base_url_query_is_kept(fake_openai: FakeOpenAI, make_client: MakeClient) -> None:
    fake_openai.script(reply())
    client = await make_client(base_url=f"{fake_openai.base_url}/?api-version=2024-10-21")
    await client.complete(TURNS)
    assert fake_openai.received[0].path == "/v1/chat/completions"


async def test_missing_key_variable_is_named_at_reply_time(
    fake_openai: FakeOpenAI, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    client = await make_client()
    with pytest.raises(ModelError, match=KEY_ENV) as caught:
        await client.complete(TURNS)
    assert caught.value.details["reason"] == "missing_api_key"
    assert fake_openai.received == []


async def test_concurrent_replies_share_one_client(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(stalled(0.05, reply("same")))
    client = await make_client()
    answers = await asyncio.gather(*(client.complete(TURNS) for _ in range(5)))
    assert [answer.content for answer in answers] == ["same"] * 5
