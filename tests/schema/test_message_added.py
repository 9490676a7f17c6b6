"""messageAdded: every message stored in a session reaches its subscribers, whichever door
stored it (REST, GraphQL over HTTP, a stream on another connection)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db.events import session_topic
from tests.factories import Account, send
from tests.schema.gql import eventually, new_session, send_gql
from tests.schema.ws import PROTOCOLS, ProtocolClient, TransportWS
from tests.servers import LiveServer

ADDED = """
subscription($s: ID!) {
  messageAdded(sessionId: $s) { id type content metadata session { id } }
}"""
STREAM = """
subscription($input: SendMessageInput!) {
  sendMessageStream(input: $input) { __typename ... on Message { id } }
}"""
Protocol = type[ProtocolClient]


async def subscribed(app: Starlette, session_id: str, count: int = 1) -> None:
    """Wait until the server has joined `count` subscribers to the session's topic."""
    broker = app.state.runtime.events

    async def joined() -> bool:
        return bool(broker.subscriber_count(session_topic(session_id)) == count)

    await eventually(joined)


async def added(socket: ProtocolClient, operation: str) -> dict[str, Any]:
    result = await socket.next_result(operation)
    assert "errors" not in result, result
    message: dict[str, Any] = result["data"]["messageAdded"]
    return message


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.protocol)
async def test_messages_sent_through_rest_and_graphql_arrive(
    app: Starlette,
    client: httpx.AsyncClient,
    live: LiveServer,
    alice: Account,
    protocol: Protocol,
) -> None:
    session_id = await new_session(client, alice)

    async with protocol.connect(live.ws_url, init_payload=alice.headers) as socket:
        operation = await socket.subscribe(ADDED, {"s": session_id})
        await subscribed(app, session_id)
        rest = await send(client, alice, session_id, "through REST", metadata="plain")
        assert rest.status_code == 200, rest.text
        from_rest = [await added(socket, operation) for _ in range(2)]
        graphql = await send_gql(client, alice, session_id, "through GraphQL")
        from_graphql = [await added(socket, operation) for _ in range(2)]
        await socket.stop(operation)
        await subscribed(app, session_id, 0)

    answer = rest.json()["data"]
    assert [(m["id"], m["type"], m["content"]) for m in from_rest] == [
        (answer["user_message"]["message_id"], "USER", "through REST"),
        (answer["ai_message"]["message_id"], "AI", "Echo: through REST"),
    ]
    assert from_rest[0]["metadata"] == "plain"
    assert from_rest[1]["metadata"] == answer["ai_message"]["metadata"]
    assert [(m["id"], m["type"]) for m in from_graphql] == [
        (graphql["userMessage"]["id"], "USER"),
        (graphql["aiMessage"]["id"], "AI"),
    ]
    assert all(m["session"] == {"id": session_id} for m in from_rest + from_graphql)


async def test_a_stream_on_another_connection_arrives(
    app: Starlette, client: httpx.AsyncClient, live: LiveServer, alice: Account, admin: Account
) -> None:
    session_id = await new_session(client, alice)
    stream_input = {"input": {"sessionId": session_id, "content": "streamed"}}

    async with (
        TransportWS.connect(live.ws_url, headers=admin.headers) as watcher,
        TransportWS.connect(live.ws_url, headers=alice.headers) as sender,
    ):
        watching = await watcher.subscribe(ADDED, {"s": session_id})
        await subscribed(app, session_id)
        streamed = await sender.results(await sender.subscribe(STREAM, stream_input))
        seen = [await added(watcher, watching) for _ in range(2)]

    events = [result["data"]["sendMessageStream"] for result in streamed]
    stored = [event["id"] for event in events if event["__typename"] == "Message"]
    assert len(events) > len(stored) == 2  # deltas came between the two messages
    assert [m["id"] for m in seen] == stored
    assert [m["type"] for m in seen] == ["USER", "AI"]


async def test_another_users_session_is_not_found(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, bob: Account
) -> None:
    session_id = await new_session(client, alice)

    async with TransportWS.connect(live.ws_url, headers=bob.headers) as socket:
        errors = await socket.operation_errors(await socket.subscribe(ADDED, {"s": session_id}))

    assert [(e["extensions"]["code"], e["message"]) for e in errors] == [
        ("NOT_FOUND", "session not found")
    ]
