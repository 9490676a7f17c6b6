"""Leaving a stream mid-reply does not stop the reply: it is stored whole and
`replyStream` picks it up again. Only `cancelReply` stops a reply: what was said is
stored as cancelled, the sender's stream ends with it, and the session is free again."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.factories import Account, make_config, send
from tests.schema.gql import eventually, new_session, ok
from tests.schema.ws import PROTOCOLS, ProtocolClient, TransportWS
from tests.servers import LiveServer

STREAM = """
subscription($input: SendMessageInput!) {
  sendMessageStream(input: $input) {
    ... on Message { id type content metadata }
    ... on MessageDelta { messageId delta offset end }
  }
}"""
RESUME = """
subscription($id: ID!, $after: Int) {
  replyStream(messageId: $id, after: $after) {
    ... on Message { id type content metadata }
    ... on MessageDelta { messageId delta offset end }
  }
}"""
CANCEL = "mutation($id: ID!) { cancelReply(sessionId: $id) }"
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
    """The session's messages once the reply is there (REST, oldest first)."""

    async def both() -> Any:
        url = f"/api/v1/sessions/{session_id}/messages"
        response = await client.get(url, headers=account.headers)
        data = response.json()["data"]
        return data["messages"] if data["total"] >= 2 else None

    return await eventually(both)


def text_of(pieces: list[Any]) -> str:
    """The pieces joined, checking each starts where the one before ended."""
    text = ""
    for piece in pieces:
        assert piece["offset"] == len(text), pieces
        text += piece["delta"]
        assert piece["end"] == len(text), pieces
    return text


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.protocol)
async def test_closing_the_socket_mid_stream_leaves_the_reply_running(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, protocol: Protocol
) -> None:
    session_id = await slow_session(client, alice)

    async with protocol.connect(live.ws_url, headers=alice.headers) as socket:
        _, user_id, pieces = await start_and_read(socket, session_id)
    # The socket is closed; a new one picks the reply up where the pieces stopped.
    reply_id, had = pieces[0]["messageId"], text_of(pieces)
    async with protocol.connect(live.ws_url, headers=alice.headers) as socket:
        resumed = await socket.results(
            await socket.subscribe(RESUME, {"id": reply_id, "after": pieces[-1]["end"]})
        )

    *more, final = [result["data"]["replyStream"] for result in resumed]
    assert more[0]["offset"] == len(had)
    assert had + "".join(piece["delta"] for piece in more) == FULL_REPLY
    assert (final["id"], final["content"]) == (reply_id, FULL_REPLY)
    assert final["metadata"]["finish_reason"] == "stop"
    user, ai = await stored_history(client, alice, session_id)
    assert (user["message_id"], ai["message_id"], ai["content"]) == (user_id, reply_id, FULL_REPLY)


async def test_a_stored_reply_resumes_as_its_message(
    client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    session_id = await slow_session(client, alice)
    reply = (await send(client, alice, session_id, "hi")).json()["data"]["ai_message"]

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        results = await socket.results(
            await socket.subscribe(RESUME, {"id": reply["message_id"], "after": 2})
        )

    assert [result["data"]["replyStream"]["content"] for result in results] == ["Echo: hi"]


async def test_leaving_the_operation_mid_stream_does_not_stop_the_reply(
    client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    session_id = await slow_session(client, alice)

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation, _, _ = await start_and_read(socket, session_id)
        await socket.stop(operation)
        # The same connection sends the next turn, which waits for the first to end.
        again = {"input": {"sessionId": session_id, "content": "again"}}
        results = await socket.results(await socket.subscribe(STREAM, again))

    assert results[-1]["data"]["sendMessageStream"]["content"] == "Echo: again"
    history = (await send(client, alice, session_id, "last")).json()["data"]
    assert history["ai_message"]["metadata"]["input_messages"] == 5
    first_reply = (await stored_history(client, alice, session_id))[1]
    assert (first_reply["content"], first_reply["metadata"]["finish_reason"]) == (
        FULL_REPLY,
        "stop",
    )


async def test_cancel_reply_stops_the_reply_and_ends_the_senders_stream(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, bob: Account
) -> None:
    session_id = await slow_session(client, alice)

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation, user_id, pieces = await start_and_read(socket, session_id)
        as_bob = await client.post(
            "/graphql", json={"query": CANCEL, "variables": {"id": session_id}}, headers=bob.headers
        )
        cancelled = await ok(client, CANCEL, alice, {"id": session_id})
        rest = [result["data"]["sendMessageStream"] for result in await socket.results(operation)]

    assert as_bob.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert cancelled == {"cancelReply": True}
    *more, final = rest
    said = text_of([*pieces, *more])
    assert final["id"] == pieces[0]["messageId"]
    assert (final["content"], final["metadata"]["finish_reason"]) == (said, "cancelled")
    assert FULL_REPLY.startswith(said) and len(said) < len(FULL_REPLY)
    user, ai = await stored_history(client, alice, session_id)
    assert (user["message_id"], ai["content"]) == (user_id, said)
    assert await ok(client, CANCEL, alice, {"id": session_id}) == {"cancelReply": False}
    async with asyncio.timeout(10):  # the turn was released: no wait for its lease
        response = await send(client, alice, session_id, "next")
    reply = response.json()["data"]["ai_message"]
    assert (reply["content"], reply["metadata"]["input_messages"]) == ("Echo: next", 3)


async def test_cancelling_twice_stores_the_reply_once_and_ends_the_stream_with_it(
    client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    """A second stop while the first is storing what was said changes nothing."""
    session_id = await slow_session(client, alice)

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation, _, pieces = await start_and_read(socket, session_id)
        first, second = await asyncio.gather(
            ok(client, CANCEL, alice, {"id": session_id}),
            ok(client, CANCEL, alice, {"id": session_id}),
        )
        rest = [result["data"]["sendMessageStream"] for result in await socket.results(operation)]

    assert first == second == {"cancelReply": True}  # both saw the reply running
    final = rest[-1]
    assert final["metadata"]["finish_reason"] == "cancelled"
    history = await stored_history(client, alice, session_id)
    assert [m["type"] for m in history] == ["user", "ai"]
    assert history[1]["content"] == final["content"]
    assert final["content"].startswith(text_of(pieces))


async def test_cancel_stops_only_the_running_reply_not_a_send_waiting_behind_it(
    client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    """The stop names the turn holding the session: the next send, queued, goes on."""
    session_id = await slow_session(client, alice)

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation, _, _ = await start_and_read(socket, session_id)
        queued = asyncio.create_task(send(client, alice, session_id, "after you"))
        await asyncio.sleep(0.2)  # let it queue (nothing is asserted on time)
        await ok(client, CANCEL, alice, {"id": session_id})
        first = [result["data"]["sendMessageStream"] for result in await socket.results(operation)]
        second = await queued

    assert first[-1]["metadata"]["finish_reason"] == "cancelled"
    assert second.status_code == 200, second.text
    assert second.json()["data"]["ai_message"]["content"] == "Echo: after you"
    history = await stored_history(client, alice, session_id)
    assert [m["type"] for m in history] == ["user", "ai", "user", "ai"]
