"""Retried sends (2.1): the same key and body give the original result and store nothing twice."""

from __future__ import annotations

import httpx

from db.models import Message
from tests.factories import (
    Account,
    create_session,
    make_account,
    make_config,
    read_history,
    send,
)
from tests.providers import FlakyProvider


async def stored_messages(session_id: str) -> int:
    """Counted in the table itself, not trusted to the API's `total`."""
    return await Message.filter(session_id=session_id).count()


async def test_same_idempotency_key_header_returns_the_original_result(
    client: httpx.AsyncClient,
) -> None:
    alice = await make_account()
    session_id = await create_session(client, alice)
    retry = {"headers": {"Idempotency-Key": "k-1"}, "metadata": {"n": 1}}

    first = await send(client, alice, session_id, "hello", **retry)
    second = await send(client, alice, session_id, "hello", **retry)

    assert first.status_code == second.status_code == 200, second.text
    assert second.json() == first.json()
    assert await stored_messages(session_id) == 2


async def test_same_body_client_message_id_returns_the_original_result(
    client: httpx.AsyncClient,
) -> None:
    alice = await make_account()
    session_id = await create_session(client, alice)

    first = await send(client, alice, session_id, "hello", client_message_id="c-1")
    second = await send(client, alice, session_id, "hello", client_message_id="c-1")
    # The header and the body field are one key: either spelling finds the original.
    third = await send(client, alice, session_id, "hello", headers={"Idempotency-Key": "c-1"})

    assert first.status_code == 200, first.text
    assert second.json() == first.json()
    assert third.json() == first.json()
    assert await stored_messages(session_id) == 2


async def test_same_key_with_another_body_is_refused_naming_the_key(
    client: httpx.AsyncClient,
) -> None:
    alice = await make_account()
    session_id = await create_session(client, alice)
    header = {"Idempotency-Key": "k-2"}
    assert (await send(client, alice, session_id, "hello", headers=header)).status_code == 200
    assert (await send(client, alice, session_id, "hi", client_message_id="c-2")).status_code == 200

    other_text = await send(client, alice, session_id, "goodbye", headers=header)
    other_metadata = await send(client, alice, session_id, "hello", headers=header, metadata=[1])
    other_body_key = await send(client, alice, session_id, "bye", client_message_id="c-2")

    for refused in (other_text, other_metadata):
        assert refused.status_code == 400
        assert refused.json()["code"] == 400
        assert refused.json()["data"] is None
        assert "Idempotency-Key" in refused.json()["message"]
    assert other_body_key.status_code == 400
    assert "client_message_id" in other_body_key.json()["message"]
    assert await stored_messages(session_id) == 4


async def test_header_and_body_keys_that_disagree_are_refused(client: httpx.AsyncClient) -> None:
    alice = await make_account()
    session_id = await create_session(client, alice)

    response = await send(
        client, alice, session_id, headers={"Idempotency-Key": "a"}, client_message_id="b"
    )

    assert response.status_code == 400
    assert response.json()["code"] == 400
    assert "client_message_id" in response.json()["message"]
    assert await stored_messages(session_id) == 0


async def failing_session(client: httpx.AsyncClient, account: Account) -> str:
    config = await make_config(provider="flaky", model_name="flaky-test")
    return await create_session(client, account, model_config_id=str(config.id))


async def test_retry_after_a_model_failure_reuses_the_stored_message(
    client: httpx.AsyncClient, flaky: FlakyProvider
) -> None:
    alice = await make_account()
    session_id = await failing_session(client, alice)
    retry = {"headers": {"Idempotency-Key": "k-3"}}
    flaky.fail_next()

    failed = await send(client, alice, session_id, "are you there?", **retry)

    assert failed.status_code == 500
    assert failed.json()["code"] == 500
    assert failed.json()["data"] is None
    assert "AI model failed" in failed.json()["message"]
    stored = (await read_history(client, alice, session_id))["messages"]
    assert [(m["type"], m["content"]) for m in stored] == [("user", "are you there?")]

    retried = await send(client, alice, session_id, "are you there?", **retry)

    assert retried.status_code == 200, retried.text
    data = retried.json()["data"]
    assert data["user_message"]["message_id"] == stored[0]["message_id"]
    assert data["ai_message"]["content"] == "Echo: are you there?"
    after = await read_history(client, alice, session_id)
    assert [m["message_id"] for m in after["messages"]] == [
        stored[0]["message_id"],
        data["ai_message"]["message_id"],
    ]
    assert flaky.calls == 2
    # Answered now: one more retry replays without asking the model again.
    assert (await send(client, alice, session_id, "are you there?", **retry)).json() == (
        retried.json()
    )
    assert flaky.calls == 2


async def test_send_without_a_key_after_a_failure_stores_a_new_message(
    client: httpx.AsyncClient, flaky: FlakyProvider
) -> None:
    alice = await make_account()
    session_id = await failing_session(client, alice)
    flaky.fail_next()
    assert (await send(client, alice, session_id, "ping")).status_code == 500

    again = await send(client, alice, session_id, "ping")

    assert again.status_code == 200, again.text
    messages = (await read_history(client, alice, session_id))["messages"]
    assert [(m["type"], m["content"]) for m in messages] == [
        ("user", "ping"),
        ("user", "ping"),
        ("ai", "Echo: ping"),
    ]
    assert again.json()["data"]["user_message"]["message_id"] == messages[1]["message_id"]
