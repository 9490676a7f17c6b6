"""POST /sessions/{id}/regenerate: the same service as GraphQL's regenerateReply, in the
REST door's shapes; streamed like a send when asked for events."""

from __future__ import annotations

from typing import Any

import httpx

from db.models import Message
from tests.factories import Account, create_session, read_history, send
from tests.gateway.e2e.sse import MEDIA_TYPE, EventReader, names
from tests.rest.expect import ok, refused
from tests.schema.gql import ok as gql_ok


def regenerate(
    client: httpx.AsyncClient,
    account: Account,
    session_id: str,
    *,
    key: str | None = None,
    user_id: str | None = None,
) -> Any:
    headers = dict(account.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(
        f"/api/v1/sessions/{session_id}/regenerate",
        json={"user_id": user_id or account.user_id},
        headers=headers,
    )


async def test_regenerate_answers_the_new_reply_which_replaces_the_old(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    sent = ok(await send(client, alice, session_id, "hello"))

    data = ok(await regenerate(client, alice, session_id))

    reply = data["ai_message"]
    assert set(reply) == {"message_id", "content", "created_time", "metadata"}
    assert reply["message_id"] != sent["ai_message"]["message_id"]
    assert reply["metadata"]["model_name"] == sent["ai_message"]["metadata"]["model_name"]
    history = await read_history(client, alice, session_id)
    assert history["total"] == 2
    assert history["messages"][1]["message_id"] == reply["message_id"]


async def test_rest_and_graphql_give_the_same_reply(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    ok(await send(client, alice, session_id, "hello"))

    by_rest = ok(await regenerate(client, alice, session_id, key="r1"))["ai_message"]
    by_graphql = await gql_ok(
        client,
        "mutation($i: RegenerateReplyInput!) { regenerateReply(input: $i) { id content } }",
        alice,
        {"i": {"sessionId": session_id, "clientMessageId": "r1"}},
    )

    assert by_graphql["regenerateReply"] == {
        "id": by_rest["message_id"],
        "content": by_rest["content"],
    }


async def test_the_idempotency_key_stores_nothing_twice(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    ok(await send(client, alice, session_id, "hello"))

    first = ok(await regenerate(client, alice, session_id, key="k"))
    again = ok(await regenerate(client, alice, session_id, key="k"))

    assert again == first
    assert await Message.filter(session_id=session_id, type="ai").count() == 2


async def test_errors_in_the_rest_shape(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    session_id = await create_session(client, alice)

    refused(await regenerate(client, alice, session_id), 400, field="session_id")
    ok(await send(client, alice, session_id, "hello", client_message_id="used"))
    refused(await regenerate(client, alice, session_id, key="used"), 400, field="Idempotency-Key")
    refused(await regenerate(client, bob, session_id), 404)
    refused(await regenerate(client, bob, session_id, user_id=alice.user_id), 403)
    assert ok(await regenerate(client, admin, session_id, user_id=alice.user_id))["ai_message"]


async def test_asked_for_events_it_streams_like_a_send(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    sent = ok(await send(client, alice, session_id, "stream it again"))
    headers = {**alice.headers, "Accept": MEDIA_TYPE}
    url = f"/api/v1/sessions/{session_id}/regenerate"

    async with client.stream(
        "POST", url, json={"user_id": alice.user_id}, headers=headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(MEDIA_TYPE)
        events = await EventReader(response).rest()

    assert names(events) == ["user_message", "delta", "ai_message", "done"]
    assert events[0].data["message_id"] == sent["user_message"]["message_id"]
    reply = events[-2].data
    assert "".join(e.data["delta"] for e in events if e.name == "delta") == reply["content"]
    history = await read_history(client, alice, session_id)
    assert history["messages"][1]["message_id"] == reply["message_id"]
