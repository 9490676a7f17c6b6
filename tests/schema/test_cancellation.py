"""Leaving a stream mid-reply: the user message stays, the partial reply is stored as
cancelled, and the session's turn is free for the next send."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.factories import Account, make_config, send
from tests.schema.gql import eventually, new_session
from tests.schema.ws import PROTOCOLS, ProtocolClient, TransportWS
from tests.servers import LiveServer

STREAM = """
subscription($input: SendMessageInput!) {
  sendMessageStream(input: $input) {
    ... on Message { id type content }
    ... on MessageDelta { messageId delta }
  }
}"""
# 60 words at 50 ms a piece: the reply takes seconds, we leave after three pieces.
QUESTION = " ".join(f"word{n}" for n in range(60))
FULL_REPLY = f"Echo: {QUESTION}"
Protocol = type[ProtocolClient]


async def slow_session(client: httpx.AsyncClient, account: Account) -> str:
    config = await make_config(model_name="slow", parameters={"chunk_delay_ms": 50})
    return await new_session(client, account, str(config.id))


async def start_and_read(socket: ProtocolClient, session_id: str) -> tuple[str, str, list[Any]]:
    """Start a stream, read the user message and three pieces: (operation, user id, pieces)."""
    operation = await socket.subscribe(
        STREAM, {"input": {"sessionId": session_id, "content": QUESTION}}
    )
    user = (await socket.next_result(operation))["data"]["sendMessageStream"]
    assert user["type"] == "USER"
    pieces = [(await socket.next_result(operation))["data"]["sendMessageStream"] for _ in range(3)]
    return operation, user["id"], pieces


async def stored_history(client: httpx.AsyncClient, account: Account, session_id: str) -> Any:
    """The session's messages once the partial reply is there (REST, oldest first)."""

    async def both() -> Any:
        url = f"/api/v1/sessions/{session_id}/messages"
        response = await client.get(url, headers=account.headers)
        data = response.json()["data"]
        return data["messages"] if data["total"] >= 2 else None

    return await eventually(both)


def check_partial(history: Any, user_id: str, pieces: list[Any]) -> None:
    user, ai = history
    assert (user["message_id"], user["type"], user["content"]) == (user_id, "user", QUESTION)
    assert ai["type"] == "ai"
    assert {piece["messageId"] for piece in pieces} == {ai["message_id"]}
    assert ai["metadata"]["finish_reason"] == "cancelled"
    assert ai["content"].startswith("".join(piece["delta"] for piece in pieces))
    assert FULL_REPLY.startswith(ai["content"]) and len(ai["content"]) < len(FULL_REPLY)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.protocol)
async def test_closing_the_socket_mid_stream(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, protocol: Protocol
) -> None:
    session_id = await slow_session(client, alice)

    async with protocol.connect(live.ws_url, headers=alice.headers) as socket:
        _, user_id, pieces = await start_and_read(socket, session_id)
    # The socket is closed: the server notices on its own.

    check_partial(await stored_history(client, alice, session_id), user_id, pieces)
    async with asyncio.timeout(10):  # the turn was released: no wait for its lease
        response = await send(client, alice, session_id, "next")
    assert response.status_code == 200, response.text
    reply = response.json()["data"]["ai_message"]
    assert (reply["content"], reply["metadata"]["input_messages"]) == ("Echo: next", 3)


async def test_completing_the_operation_mid_stream(
    client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    session_id = await slow_session(client, alice)

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation, user_id, pieces = await start_and_read(socket, session_id)
        await socket.stop(operation)
        check_partial(await stored_history(client, alice, session_id), user_id, pieces)
        # The same connection streams the next turn to its end.
        again = {"input": {"sessionId": session_id, "content": "again"}}
        results = await socket.results(await socket.subscribe(STREAM, again))

    assert results[-1]["data"]["sendMessageStream"]["content"] == "Echo: again"
