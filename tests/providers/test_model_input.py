"""The model input: the session's history as chat turns, trimmed to the config's budget,
with its system prompt first; what the upstream server receives is what is checked."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Account, send
from tests.providers.fake_openai import FakeOpenAI, reply
from tests.providers.test_openai_rest import openai_session


async def converse(
    client: httpx.AsyncClient, alice: Account, session_id: str, questions: list[str]
) -> None:
    for question in questions:
        response = await send(client, alice, session_id, question)
        assert response.status_code == 200, response.text


def sent_messages(fake_openai: FakeOpenAI) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = fake_openai.received[-1].body["messages"]
    return messages


async def test_the_whole_history_in_order_with_roles(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, api_key: str
) -> None:
    alice, session_id, _ = await openai_session(client, fake_openai)
    fake_openai.script(reply("answer"))

    await converse(client, alice, session_id, ["one", "two", "three"])

    assert sent_messages(fake_openai) == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "three"},
    ]


async def test_max_history_messages_keeps_the_newest_and_the_system_prompt(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, api_key: str
) -> None:
    alice, session_id, _ = await openai_session(
        client, fake_openai, system_prompt="Be brief.", max_history_messages=3
    )
    fake_openai.script(reply("answer"))

    await converse(client, alice, session_id, ["one", "two", "three", "four"])

    assert sent_messages(fake_openai) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "three"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "four"},
    ]


async def test_the_token_budget_drops_old_long_messages(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, api_key: str
) -> None:
    # About four characters a token: 400 characters cost 100 tokens, "short" costs 2.
    alice, session_id, _ = await openai_session(client, fake_openai, max_history_tokens=120)
    fake_openai.script(reply("ok"))

    await converse(client, alice, session_id, ["x" * 400, "y" * 400, "short"])

    assert sent_messages(fake_openai) == [
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "y" * 400},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "short"},
    ]


async def test_the_question_is_sent_even_alone_over_budget(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, api_key: str
) -> None:
    alice, session_id, _ = await openai_session(client, fake_openai, max_history_tokens=100)
    fake_openai.script(reply("ok"))

    await converse(client, alice, session_id, ["earlier", "z" * 2000])

    assert sent_messages(fake_openai) == [{"role": "user", "content": "z" * 2000}]
