"""The model input: the session's history as chat turns, trimmed to the config's budget,
with its system prompt first; what the upstream server receives is what is checked.

On PostgreSQL the statement that takes the session also stores the question and reads
the history; when it had to wait for the session's row, what was stored meanwhile is
still in the input, and a retry key stored meanwhile is still a retry."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from db.pg_events import connect_arguments
from tests.conftest import BACKEND
from tests.factories import Account, send
from tests.providers.fake_openai import FakeOpenAI, reply
from tests.providers.test_openai_rest import openai_session

WAIT_SECONDS = 10


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


async def test_one_message_of_history_is_the_question_alone(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, api_key: str
) -> None:
    alice, session_id, _ = await openai_session(client, fake_openai, max_history_messages=1)
    fake_openai.script(reply("ok"))

    await converse(client, alice, session_id, ["one", "two"])

    assert sent_messages(fake_openai) == [{"role": "user", "content": "two"}]


@pytest.fixture
async def row_holder(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another writer: a connection of its own that can hold a session's row."""
    if BACKEND != "postgres":
        pytest.skip("a statement waiting for a row lock of PostgreSQL")
    connection = await asyncpg.connect(**connect_arguments(database_url))
    try:
        yield connection
    finally:
        await connection.close()


async def send_while_row_held(
    holder: asyncpg.Connection, writes: list[tuple[str, list[Any]]], sending: Any
) -> httpx.Response:
    """Run `writes` in a transaction of `holder` that holds the session's row until the
    request's statement waits for it, then commit, and give the request's answer."""
    async with holder.transaction():
        for statement, arguments in writes:
            await holder.execute(statement, *arguments)
        task = asyncio.ensure_future(sending)
        async with asyncio.timeout(WAIT_SECONDS):
            while not await holder.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ):
                if task.done():
                    break  # it did not wait: its answer (or failure) says why
                await asyncio.sleep(0.01)
    return await task


_APPEND = (
    "WITH s AS (UPDATE chat_sessions SET last_seq = last_seq + 1 WHERE id = $1"
    " RETURNING last_seq) INSERT INTO messages (id, session_id, seq, type, content,"
    " created_at, client_message_id, request_digest)"
    " SELECT $2, $1, s.last_seq, $3, $4, now(), $5, $6 FROM s"
)


async def test_a_turn_that_waited_for_the_session_is_asked_over_what_was_stored_meanwhile(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, api_key: str, row_holder: asyncpg.Connection
) -> None:
    alice, session_id, _ = await openai_session(client, fake_openai)
    fake_openai.script(reply("answer"))
    await converse(client, alice, session_id, ["one"])
    meanwhile = [
        (_APPEND, [uuid.UUID(session_id), uuid.uuid4(), "ai", "stored meanwhile", None, None])
    ]

    response = await send_while_row_held(
        row_holder, meanwhile, send(client, alice, session_id, "two")
    )

    assert response.status_code == 200, response.text
    assert sent_messages(fake_openai) == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "answer"},
        {"role": "assistant", "content": "stored meanwhile"},
        {"role": "user", "content": "two"},
    ]
    history = await client.get(f"/api/v1/sessions/{session_id}/messages", headers=alice.headers)
    assert [item["content"] for item in history.json()["data"]["messages"]] == [
        "one",
        "answer",
        "stored meanwhile",
        "two",
        "answer",
    ]


async def test_a_retry_key_stored_while_the_turn_waited_is_still_a_retry(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, api_key: str, row_holder: asyncpg.Connection
) -> None:
    alice, session_id, _ = await openai_session(client, fake_openai)
    fake_openai.script(reply("answer"))
    # Another attempt stored a different question under the key meanwhile.
    meanwhile = [
        (_APPEND, [uuid.UUID(session_id), uuid.uuid4(), "user", "other", "k1", "other digest"])
    ]

    response = await send_while_row_held(
        row_holder,
        meanwhile,
        send(client, alice, session_id, "mine", headers={"Idempotency-Key": "k1"}),
    )

    assert response.status_code == 400, response.text
    assert "already used for a different message" in response.json()["message"]
    assert fake_openai.received == []
    history = await client.get(f"/api/v1/sessions/{session_id}/messages", headers=alice.headers)
    assert [item["content"] for item in history.json()["data"]["messages"]] == ["other"]
