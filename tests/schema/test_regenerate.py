"""regenerateReply and regenerateReplyStream: the new reply takes the latest reply's place
in the history, the replaced ones stay as variants, retries store nothing twice, and turns
stay serialised with sends."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette

from db.models import Message, UsageRecord
from tests.factories import Account, make_config, read_history
from tests.providers import FlakyProvider
from tests.schema.gql import eventually, fails, new_session, ok, send_gql
from tests.schema.test_message_added import ADDED, added, subscribed
from tests.schema.ws import TransportWS
from tests.servers import LiveServer

REGENERATE = """
mutation($input: RegenerateReplyInput!) {
  regenerateReply(input: $input) { id type content metadata session { id messageCount } }
}"""
STREAM = """
subscription($input: RegenerateReplyInput!) {
  regenerateReplyStream(input: $input) {
    ... on Message { id type content }
    ... on MessageDelta { messageId delta offset end }
  }
}"""
LOGS = "{ logs(first: 100) { edges { node { event actorId details } } } }"


async def regenerate(
    client: httpx.AsyncClient, who: Account, session_id: str, **extra: Any
) -> dict[str, Any]:
    data = await ok(client, REGENERATE, who, {"input": {"sessionId": session_id, **extra}})
    reply: dict[str, Any] = data["regenerateReply"]
    return reply


async def replies_to(question_id: str) -> list[Message]:
    return list(await Message.filter(reply_to_id=question_id).order_by("created_at", "id"))


async def test_the_new_reply_takes_the_place_of_the_old_one(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    first = await send_gql(client, alice, session_id, "hello there")

    again = await regenerate(client, alice, session_id)

    assert again["id"] != first["aiMessage"]["id"]
    assert again["type"] == "AI" and again["content"] == first["aiMessage"]["content"]
    assert again["session"]["messageCount"] == 2
    history = await read_history(client, alice, session_id)
    assert history["total"] == 2
    assert [m["message_id"] for m in history["messages"]] == [
        first["userMessage"]["id"],
        again["id"],
    ]
    variants = await replies_to(first["userMessage"]["id"])
    assert [str(v.id) for v in variants] == [first["aiMessage"]["id"], again["id"]]
    assert [v.seq for v in variants] == [None, 2]


async def test_only_the_latest_turn_is_asked_again(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    await send_gql(client, alice, session_id, "one")
    second = await send_gql(client, alice, session_id, "two")

    again = await regenerate(client, alice, session_id)

    assert again["content"] == second["aiMessage"]["content"]
    history = await read_history(client, alice, session_id)
    assert [m["content"] for m in history["messages"]][2:] == ["two", again["content"]]
    assert history["messages"][3]["message_id"] == again["id"]


async def test_a_question_left_without_reply_is_answered(
    client: httpx.AsyncClient, alice: Account, flaky: FlakyProvider
) -> None:
    config = await make_config(provider="flaky", model_name="flaky")
    session_id = await new_session(client, alice, str(config.id))
    flaky.fail_next()
    await fails(
        client,
        "mutation($i: SendMessageInput!) { sendMessage(input: $i) { aiMessage { id } } }",
        alice,
        {"i": {"sessionId": session_id, "content": "are you there"}},
        code="INTERNAL_SERVER_ERROR",
    )

    again = await regenerate(client, alice, session_id)

    history = await read_history(client, alice, session_id)
    assert history["total"] == 2
    assert history["messages"][1]["message_id"] == again["id"]
    failed = await UsageRecord.filter(session_id=session_id, failed=True).count()
    assert failed == 1


async def test_a_retry_with_the_same_key_stores_nothing_twice(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    sent = await send_gql(client, alice, session_id, "hello")

    once = await regenerate(client, alice, session_id, clientMessageId="again-1")
    twice = await regenerate(client, alice, session_id, clientMessageId="again-1")

    assert twice["id"] == once["id"]
    assert len(await replies_to(sent["userMessage"]["id"])) == 2
    assert await UsageRecord.filter(session_id=session_id).count() == 2


async def test_a_key_used_by_a_sent_message_is_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    await send_gql(client, alice, session_id, "hello", clientMessageId="k1")

    error = await fails(
        client,
        REGENERATE,
        alice,
        {"input": {"sessionId": session_id, "clientMessageId": "k1"}},
        code="BAD_USER_INPUT",
    )

    assert error["extensions"]["field"] == "clientMessageId"


async def test_an_empty_session_has_nothing_to_regenerate(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)

    error = await fails(
        client, REGENERATE, alice, {"input": {"sessionId": session_id}}, code="BAD_USER_INPUT"
    )

    assert error["extensions"]["field"] == "sessionId"
    assert await read_history(client, alice, session_id) == {"messages": [], "total": 0}


async def test_another_users_session_is_not_found_and_an_admin_may(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    session_id = await new_session(client, alice)
    await send_gql(client, alice, session_id, "hello")

    await fails(client, REGENERATE, bob, {"input": {"sessionId": session_id}}, code="NOT_FOUND")
    by_admin = await regenerate(client, admin, session_id)

    history = await read_history(client, alice, session_id)
    assert history["messages"][1]["message_id"] == by_admin["id"]


async def test_regenerating_is_logged_and_counted(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id = await new_session(client, alice)
    sent = await send_gql(client, alice, session_id, "hello")

    again = await regenerate(client, alice, session_id)

    entries = [e["node"] for e in (await ok(client, LOGS, admin))["logs"]["edges"]]
    regenerated = [e for e in entries if e["event"] == "message.regenerated"]
    assert len(regenerated) == 1
    assert regenerated[0]["actorId"] == alice.user_id
    assert regenerated[0]["details"]["message_id"] == again["id"]
    assert regenerated[0]["details"]["replaced_message_id"] == sent["aiMessage"]["id"]
    usage = await UsageRecord.filter(session_id=session_id).order_by("id")
    assert [str(u.message_id) for u in usage] == [sent["aiMessage"]["id"], again["id"]]


async def test_a_regenerate_waits_for_the_running_turn(
    client: httpx.AsyncClient, alice: Account
) -> None:
    config = await make_config(model_name="slow", parameters={"chunk_delay_ms": 30})
    session_id = await new_session(client, alice, str(config.id))
    question = " ".join(f"w{n}" for n in range(20))
    sending = asyncio.create_task(send_gql(client, alice, session_id, question))

    async def question_stored() -> bool:
        return await Message.filter(session_id=session_id).count() >= 1

    await eventually(question_stored)
    again = await regenerate(client, alice, session_id)
    sent = await sending

    # The send's reply was stored first, then replaced by the regenerated one.
    history = await read_history(client, alice, session_id)
    assert [m["message_id"] for m in history["messages"]] == [
        sent["userMessage"]["id"],
        again["id"],
    ]
    variants = await replies_to(sent["userMessage"]["id"])
    assert [str(v.id) for v in variants] == [sent["aiMessage"]["id"], again["id"]]


async def test_the_stream_gives_the_question_pieces_and_the_reply(
    client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    sent = await send_gql(client, alice, session_id, "tell me more")
    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation = await socket.subscribe(STREAM, {"input": {"sessionId": session_id}})
        events = await socket.results(operation)

    shaped = [event["data"]["regenerateReplyStream"] for event in events]
    assert shaped[0]["id"] == sent["userMessage"]["id"]
    deltas = [event for event in shaped[1:-1]]
    assert deltas and all("delta" in event for event in deltas)
    assert "".join(event["delta"] for event in deltas) == shaped[-1]["content"]
    assert shaped[-1]["type"] == "AI" and shaped[-1]["id"] != sent["aiMessage"]["id"]


async def test_cancel_stops_a_regenerated_reply_which_is_stored_as_cancelled(
    client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    config = await make_config(model_name="slow", parameters={"chunk_delay_ms": 50})
    session_id = await new_session(client, alice, str(config.id))
    sent = await send_gql(client, alice, session_id, " ".join(f"w{n}" for n in range(60)))
    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation = await socket.subscribe(STREAM, {"input": {"sessionId": session_id}})
        for _ in range(4):  # the question, then three pieces
            await socket.next_result(operation)
        cancelled = await ok(
            client, "mutation($s: ID!) { cancelReply(sessionId: $s) }", alice, {"s": session_id}
        )
        rest = await socket.results(operation)

    stopped = rest[-1]["data"]["regenerateReplyStream"]
    assert cancelled == {"cancelReply": True}
    history = await read_history(client, alice, session_id)
    assert [m["message_id"] for m in history["messages"]] == [
        sent["userMessage"]["id"],
        stopped["id"],
    ]
    assert history["messages"][1]["metadata"]["finish_reason"] == "cancelled"
    assert len(stopped["content"]) < len(sent["aiMessage"]["content"])


async def test_subscribers_of_the_session_get_the_regenerated_reply(
    app: Starlette, client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    async with TransportWS.connect(live.ws_url, init_payload=alice.headers) as socket:
        operation = await socket.subscribe(ADDED, {"s": session_id})
        await subscribed(app, session_id)
        sent = await send_gql(client, alice, session_id, "hello")
        first = [await added(socket, operation) for _ in range(2)]
        again = await regenerate(client, alice, session_id)
        regenerated = await added(socket, operation)
        await socket.stop(operation)

    assert [m["id"] for m in first] == [sent["userMessage"]["id"], sent["aiMessage"]["id"]]
    assert regenerated["id"] == again["id"]
