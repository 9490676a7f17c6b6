"""Turns of one session never interleave: concurrent sends, in one process and across two."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.factories import Account, create_session, make_account, make_config, read_history, send
from tests.servers import StartServer, child_env

SENDS = 20
# Typing time makes turns long enough to overlap if serialisation were broken.
SLOW_ECHO = {"chunk_delay_ms": 2}


def assert_serialised(history: Any, sent: list[str], replies: list[httpx.Response]) -> None:
    """Every turn ran alone: question, its answer, next question, ...; nothing lost or doubled."""
    for reply in replies:
        assert reply.status_code == 200, reply.text
    messages = history["messages"]
    assert history["total"] == len(messages) == 2 * len(sent)
    assert [m["type"] for m in messages] == ["user", "ai"] * len(sent)
    questions, answers = messages[0::2], messages[1::2]
    assert sorted(q["content"] for q in questions) == sorted(sent)
    for k, (question, answer) in enumerate(zip(questions, answers, strict=True)):
        assert answer["content"] == "Echo: " + question["content"]
        # The k-th reply saw exactly the 2k turns before it plus its own question.
        assert answer["metadata"]["input_messages"] == 2 * k + 1
    # Each caller got the pair that was stored for its own message.
    stored = {q["message_id"]: a["message_id"] for q, a in zip(questions, answers, strict=True)}
    for text, reply in zip(sent, replies, strict=True):
        data = reply.json()["data"]
        assert stored[data["user_message"]["message_id"]] == data["ai_message"]["message_id"]
        assert data["ai_message"]["content"] == "Echo: " + text


async def slow_session(client: httpx.AsyncClient) -> tuple[Account, str]:
    account = await make_account()
    config = await make_config(parameters=SLOW_ECHO)
    return account, await create_session(client, account, model_config_id=str(config.id))


async def test_concurrent_sends_to_one_session_take_turns(client: httpx.AsyncClient) -> None:
    alice, session_id = await slow_session(client)
    sent = [f"message {n}" for n in range(SENDS)]

    replies = await asyncio.gather(*(send(client, alice, session_id, text) for text in sent))

    assert_serialised(await read_history(client, alice, session_id), sent, list(replies))


async def test_concurrent_retries_with_one_key_store_one_turn(client: httpx.AsyncClient) -> None:
    alice, session_id = await slow_session(client)
    retry = {"headers": {"Idempotency-Key": "same"}}

    replies = await asyncio.gather(
        *(send(client, alice, session_id, "x", **retry) for _ in range(5))
    )

    assert all(reply.status_code == 200 for reply in replies), [r.text for r in replies]
    assert all(reply.json() == replies[0].json() for reply in replies)
    assert (await read_history(client, alice, session_id))["total"] == 2


async def test_concurrent_sends_across_two_server_processes_take_turns(
    client: httpx.AsyncClient, database_url: str, servers: StartServer
) -> None:
    alice, session_id = await slow_session(client)
    env = child_env(DATABASE_URL=database_url, LOG_LEVEL="warning")
    first, second = servers(env=env), servers(env=env)
    await first.wait_ready_async()
    await second.wait_ready_async()
    sent = [f"message {n}" for n in range(SENDS)]

    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=60) as one,
        httpx.AsyncClient(base_url=second.base_url, timeout=60) as two,
    ):
        replies = await asyncio.gather(
            *(send(one if n % 2 else two, alice, session_id, text) for n, text in enumerate(sent))
        )
        history = await read_history(one, alice, session_id)

    assert_serialised(history, sent, list(replies))
